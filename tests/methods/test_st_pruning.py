"""Stage `st_pruning` on the smoke profile (digits) and its parameter validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from methods import st_pruning
from methods.st_pruning import StPruningParams
from spikebench import paths
from spikebench.errors import ParamsError
from spikebench.io import load_checkpoint, save_checkpoint
from spikebench.params import load_section
from spikebench.results import read_rows
from spikebench.snn_training import evaluate_snn
from spikebench.spiking import load_snn
from tests.predictions_check import assert_rows_match_their_predictions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stage_run(stage_inputs):
    """The stage's inputs (prepared digits, trained cnn, baseline row) in a scratch directory, then one run."""
    work = stage_inputs("st_pruning")
    params = (REPO / "params.yaml").read_text().replace("\nprofile: default", "\nprofile: smoke", 1)
    (work / "params.yaml").write_text(params)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        st_pruning.main()
    return work, read_rows(work / "results/st_pruning.json")


@pytest.mark.slow
def test_every_step_writes_its_rows(stage_run, digits_data):
    _, rows = stage_run
    steps = [(r.extra["step"], r.timesteps, r.weight_bits) for r in rows]
    assert steps == [("spatial", 0, 32), ("conversion", 8, 32), ("temporal", 8, 32), ("temporal", 4, 32), ("temporal", 2, 32),
                     ("quantization", 2, 8), ("quantization", 2, 4)]
    ann = read_rows(stage_run[0] / "results/baseline.json")[0]
    for row in rows[1:]:
        assert row.spikes_per_image > 0 and row.synops_per_image > row.spikes_per_image
        assert row.extra["energy_ratio_vs_ann"] == pytest.approx(ann.energy_per_image_j / row.energy_per_image_j, rel=1e-2)
    # headline rows: the float SNN at the final T and the exported quantised one
    assert [r.headline for r in rows] == [False, False, False, False, True, False, True]
    assert all(r.test_images == len(digits_data.test[1]) for r in rows)  # every accuracy is over the whole test split
    # every row (slim ANN, converted, temporal, quantised) saved the class it predicted for every test image
    assert_rows_match_their_predictions(stage_run[0], rows, digits_data.test[1])
    # resumable states exist only until the stage succeeds: a rerun after a code change must train afresh
    assert not list((stage_run[0] / "checkpoints").glob("st_pruning-*"))


@pytest.mark.slow
def test_spatial_pruning_shrinks_the_network_and_reports_compression(stage_run):
    _, rows = stage_run
    spatial = rows[0]
    before, after = spatial.extra["channels_before"], spatial.extra["channels_after"]
    assert before == [16, 32, 64]
    assert all(1 <= a < b for a, b in zip(after, before, strict=True))
    baseline_params = 16 * 9 + 16 + 16 * 32 * 9 + 32 + 32 * 4 * 64 + 64 + 64 * 10 + 10
    assert spatial.params < baseline_params
    assert spatial.extra["compression"] == pytest.approx(baseline_params / spatial.params, rel=1e-2)
    assert all(r.params == spatial.params for r in rows[1:])  # every SNN is the slim network


@pytest.mark.slow
def test_hybrid_training_beats_plain_conversion_at_low_t(stage_run):
    _, rows = stage_run
    trained = {r.timesteps: r.accuracy for r in rows if r.extra["step"] == "temporal"}
    assert trained[2] > 0.5  # 10 classes: far above chance at T=2 after surrogate-gradient training


@pytest.mark.slow
def test_exported_model_follows_the_checkpoint_contract_with_integer_weights(stage_run):
    work, rows = stage_run
    exported = [r for r in rows if r.model_path]
    assert len(exported) == 1
    row = exported[0]
    assert row.mappable is True and row.extra["bits"] == 4 and row.weight_bits == 4
    assert not any(r.mappable for r in rows if r is not row)
    net, meta = load_snn(work / row.model_path)
    assert meta["kind"] == "snn" and meta["method"] == "st_pruning" and meta["weight_bits"] == 4
    assert meta["timesteps"] == 2 and meta["leaks"] == [1.0] * 4 and meta["thresholds"][-1] is None
    assert len(meta["weight_scales"]) == 4
    json.dumps(meta)  # JSON-able
    for index, scale in zip(net.synaptic, meta["weight_scales"], strict=True):
        ints = net.layers[index].weight.double() / scale
        assert (ints - ints.round()).abs().max() < 1e-3  # the hardware's own acceptance test
        assert ints.round().abs().max() <= 7
    from spikebench.data import load_prepared

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        data = load_prepared()
    assert evaluate_snn(net, data.test, meta["timesteps"]) == pytest.approx(row.accuracy)


@pytest.mark.slow
def test_plots_are_written(stage_run):
    work, _ = stage_run
    for path in (paths.ST_PRUNING_CHANNELS_PLOT, paths.ST_PRUNING_TIMESTEPS_PLOT, paths.ST_PRUNING_BITS_PLOT):
        assert (work / path).stat().st_size > 1000


def _section(**overrides) -> StPruningParams:
    """The repository's default-profile section with `overrides` applied."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    return load_section(StPruningParams, "st_pruning", raw={**raw, "profile": "default", "st_pruning": {**raw["st_pruning"], **overrides}})[1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variance_fraction": 0.0}, "st_pruning.variance_fraction must be > 0.0"),
        ({"variance_fraction": 1.2}, "st_pruning.variance_fraction must be <= 1.0"),
        ({"timesteps": []}, "st_pruning.timesteps must not be empty"),
        ({"timesteps": [4, 8, 16]}, "st_pruning.timesteps \\[4, 8, 16\\] must be strictly decreasing"),
        ({"timesteps": [8, 8, 4]}, "st_pruning.timesteps \\[8, 8, 4\\] must be strictly decreasing"),
        ({"bits": [8, 1], "export_bits": 8}, "st_pruning.bits must be >= 2, got 1"),
        ({"bits": []}, "st_pruning.bits must not be empty"),
        ({"export_bits": 6}, "st_pruning.export_bits 6 must be one of bits"),
        ({"final_timesteps": 3}, "st_pruning.final_timesteps 3 must be one of timesteps"),
        ({"pca_source": "membrane"}, "st_pruning.pca_source must be one of snn, ann"),
    ],
)
def test_bad_parameters_give_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(ParamsError, match=message) as caught:
        _section(**overrides)
    assert "\n" not in str(caught.value)


def test_default_and_smoke_profiles_of_the_repository_are_valid():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for profile in ("default", "smoke"):
        _, params = load_section(StPruningParams, "st_pruning", raw={**raw, "profile": profile})
        assert params.final_t in params.timesteps


def test_stage_cli_reports_a_bad_schedule_on_one_line(tmp_path, monkeypatch, capsys):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["st_pruning"]["timesteps"] = [2, 4]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        st_pruning.main()
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: params.yaml: st_pruning.timesteps [2, 4] must be strictly decreasing") and "\n" not in err
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_an_ann_from_another_split_is_refused_before_any_output(stage_run, tmp_path, monkeypatch, capsys):
    work, _ = stage_run
    for name in ("data", "models"):
        shutil.copytree(work / name, tmp_path / name)
    shutil.copytree(work / "results", tmp_path / "results", ignore=shutil.ignore_patterns("st_pruning.json"))
    shutil.copy(work / "params.yaml", tmp_path / "params.yaml")
    state, meta = load_checkpoint(tmp_path / "models/ann.pt")
    save_checkpoint(tmp_path / "models/ann.pt", state, {**meta, "split_hash": "0123456789abcdef"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        st_pruning.main()
    assert "models/ann.pt was made from split 0123456789abcdef" in capsys.readouterr().err
    assert not (tmp_path / "results/st_pruning.json").exists()
