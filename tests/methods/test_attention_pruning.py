"""Stage `attention_pruning` on digits (a trimmed smoke profile) and its parameter validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from methods import attention_pruning
from methods.attention_pruning import AttentionPruningParams
from spikebench import paths
from spikebench.data import load_prepared
from spikebench.errors import ParamsError
from spikebench.params import load_section
from spikebench.results import read_rows
from spikebench.snn_training import evaluate_snn
from spikebench.spiking import load_snn
from tests.predictions_check import assert_rows_match_their_predictions

REPO = Path(__file__).resolve().parents[2]
# the smoke profile, trimmed further so the whole stage runs in seconds
FAST = {"ann_epochs": 1, "ann_batch_size": 64, "update_interval": 3, "timesteps": [3, 2], "snn_epochs": 2, "step_epochs": 1,
        "batch_size": 64, "train_subset": 0, "val_subset": 100, "calibration_size": 128}


def _params_file(work: Path, **overrides) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profile"] = "smoke"
    raw["attention_pruning"]["smoke"] = {**raw["attention_pruning"].get("smoke", {}), **FAST, **overrides}
    (work / "params.yaml").write_text(yaml.safe_dump(raw))


@pytest.fixture(scope="module")
def stage(stage_inputs):
    """The stage's inputs (prepared digits, trained cnn, baseline row) in a scratch directory, then one run."""
    work = stage_inputs("attention_pruning")
    _params_file(work)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        attention_pruning.main()
    return work, read_rows(work / "results/attention_pruning.json"), read_rows(work / "results/baseline.json")[0]


def _snn(rows, mode: str, attention: bool = True, library: str = "spikebench"):
    return [r for r in rows if r.extra["step"] == "snn" and r.extra["mode"] == mode and r.extra["attention"] == attention and r.library == library]


@pytest.mark.slow
def test_finished_stage_leaves_no_resumable_state(stage):
    assert not list((stage[0] / "checkpoints").glob("attention_pruning-*"))


@pytest.mark.slow
def test_rows_per_mode_density_and_timesteps(stage, digits_data):
    _, rows, _ = stage
    keys = [(r.library, r.extra["step"], r.extra["mode"], r.extra["density"], r.extra["attention"], r.timesteps) for r in rows]
    assert keys == [
        ("torch", "sparse_ann", "irregular", 0.2, True, 0), ("spikebench", "snn", "irregular", 0.2, True, 3),
        ("spikebench", "snn", "irregular", 0.2, True, 2),
        ("torch", "sparse_ann", "structured", 0.48, True, 0), ("spikebench", "snn", "structured", 0.48, True, 3),
        ("spikebench", "snn", "structured", 0.48, True, 2),
        ("torch", "sparse_ann", "irregular", 0.2, False, 0), ("spikebench", "snn", "irregular", 0.2, False, 3),
        ("spikebench", "snn", "irregular", 0.2, False, 2),
        ("snntorch", "snn", "irregular", 0.2, True, 2),
    ]
    # the headline rows: each mode's guided SNN at the final T, and the same SNN in snntorch
    assert [r.headline for r in rows] == [False, False, True, False, False, True, False, False, False, True]
    assert all(r.test_images == len(digits_data.test[1]) for r in rows)  # test_images: 0 = the whole test split
    # sparse ANNs, SNNs, the ablation and the snntorch re-run: each saved its class for every test image
    assert_rows_match_their_predictions(stage[0], rows, digits_data.test[1])
    for row in rows:
        if row.extra["step"] == "snn":
            assert row.spikes_per_image > 0 and row.synops_per_image > row.spikes_per_image and row.energy_per_image_j > 0
            assert row.accuracy > 0.5  # 10 classes: far above chance after DIET-SNN training at T <= 3


@pytest.mark.slow
def test_compression_counts_non_zero_synaptic_parameters_and_the_mask_stays_fixed(stage):
    _, rows, ann = stage
    for row in rows:
        assert row.params == ann.params
        assert row.extra["compression"] == pytest.approx(ann.params / row.nonzero_params, rel=1e-3)
    for mode, attention in (("irregular", True), ("structured", True), ("irregular", False)):
        sparse_ann = next(r for r in rows if r.extra["step"] == "sparse_ann" and r.extra["mode"] == mode and r.extra["attention"] == attention)
        assert all(r.nonzero_params == sparse_ann.nonzero_params for r in _snn(rows, mode, attention))  # SNN training keeps the mask
    irregular = _snn(rows, "irregular")[0]
    assert irregular.extra["weight_density"] == pytest.approx(0.2, abs=0.005)
    assert irregular.extra["compression"] > 4
    structured = _snn(rows, "structured")[0]
    assert structured.extra["active_channels"] == [8, 15, 31, 10]  # round(0.48 x channels); every class kept
    assert structured.extra["compression"] > 3


@pytest.mark.slow
def test_thresholds_and_leaks_are_learnt_per_layer(stage):
    _, rows, _ = stage
    for row in _snn(rows, "irregular") + _snn(rows, "structured"):
        thresholds, leaks = row.extra["thresholds"], row.extra["leaks"]
        assert len(thresholds) == 3 and len(leaks) == 4
        assert all(t > 0 for t in thresholds) and any(abs(t - 1.0) > 1e-3 for t in thresholds)  # moved from the converted 1.0
        assert all(0.0 <= v <= 1.0 for v in leaks) and leaks[-1] == 1.0  # the read-out layer integrates without leak


@pytest.mark.slow
def test_exported_model_follows_the_checkpoint_contract(stage):
    work, rows, _ = stage
    exported = [r for r in rows if r.model_path]
    assert len(exported) == 1
    row = exported[0]
    assert (row.library, row.extra["mode"], row.timesteps) == ("spikebench", "irregular", 2)
    net, meta = load_snn(work / row.model_path)
    json.dumps(meta)
    assert meta["kind"] == "snn" and meta["method"] == "attention_pruning" and meta["timesteps"] == 2 and meta["weight_bits"] == 32
    assert meta["input"] == "analog" and meta["output"] == "membrane" and meta["reset"] == "subtract"
    assert meta["thresholds"][:-1] == pytest.approx(row.extra["thresholds"], abs=1e-4) and meta["thresholds"][-1] is None
    assert row.mappable == all(v == 1.0 for v in meta["leaks"])  # the accelerator is integrate-and-fire only
    nonzero = sum(int((net.layers[i].weight != 0).sum()) + int((net.layers[i].bias != 0).sum()) for i in net.synaptic)
    assert nonzero == row.nonzero_params
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        data = load_prepared()
    assert evaluate_snn(net, data.test, meta["timesteps"]) == pytest.approx(row.accuracy)


@pytest.mark.slow
def test_snntorch_runs_the_same_network_with_the_same_predictions(stage):
    _, rows, _ = stage
    (other,) = [r for r in rows if r.library == "snntorch"]
    engine = next(r for r in rows if r.model_path)
    assert other.extra["prediction_agreement"] >= 0.999
    assert other.accuracy == pytest.approx(engine.accuracy, abs=0.003)
    assert other.spikes_per_image == pytest.approx(engine.spikes_per_image, rel=0.01)
    assert other.extra["thresholds"] == engine.extra["thresholds"] and other.extra["leaks"] == engine.extra["leaks"]


@pytest.mark.slow
def test_the_ablation_without_attention_is_reported_beside_the_guided_model(stage):
    work, rows, _ = stage
    for guided, ablated in zip(_snn(rows, "irregular"), _snn(rows, "irregular", attention=False), strict=True):
        assert guided.timesteps == ablated.timesteps
        assert guided.extra["spikes_without_attention"] == pytest.approx(ablated.spikes_per_image, abs=0.1)
    for path in (paths.ATTENTION_ACCURACY_PLOT, paths.ATTENTION_NEURONS_PLOT):
        assert (work / path).stat().st_size > 1000


def _section(**overrides) -> AttentionPruningParams:
    """The repository's default-profile section with `overrides` applied."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**raw["attention_pruning"], **overrides}
    return load_section(AttentionPruningParams, "attention_pruning", raw={**raw, "profile": "default", "attention_pruning": section})[1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"irregular_densities": [0.0]}, "attention_pruning.irregular_densities must be > 0.0, got 0.0"),
        ({"irregular_densities": [1.5]}, "attention_pruning.irregular_densities must be <= 1.0, got 1.5"),
        ({"structured_densities": [-0.2]}, "attention_pruning.structured_densities must be > 0.0"),
        ({"structured_densities": []}, "attention_pruning.structured_densities must not be empty while attention_pruning.modes lists structured"),
        ({"modes": ["irregular", "irregular"]}, "lists a mode twice"),
        ({"modes": ["channel"]}, "attention_pruning.modes must be one of irregular, structured"),
        ({"timesteps": [3, 5]}, "attention_pruning.timesteps \\[3, 5\\] must be strictly decreasing"),
        ({"attention_weight": -1.0}, "attention_pruning.attention_weight must be >= 0.0"),
    ],
)
def test_bad_parameters_give_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(ParamsError, match=message) as caught:
        _section(**overrides)
    assert "\n" not in str(caught.value)


def test_default_and_smoke_profiles_of_the_repository_are_valid():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for profile in ("default", "smoke"):
        _, params = load_section(AttentionPruningParams, "attention_pruning", raw={**raw, "profile": profile})
        assert "irregular" in params.modes and params.timesteps[0] <= 5


def test_stage_cli_refuses_a_density_outside_0_1_before_any_output(tmp_path, monkeypatch, capsys):
    _params_file(tmp_path, irregular_densities=[0.0])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        attention_pruning.main()
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: params.yaml: attention_pruning.irregular_densities must be > 0.0, got 0.0"
    assert not (tmp_path / "results").exists() and not (tmp_path / "models").exists()
