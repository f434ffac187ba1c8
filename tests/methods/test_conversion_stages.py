"""The conversion, rmp and parity stages end to end on the smoke profile (digits) in a scratch directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from baselines.models import ArchConfig
from spikebench.data import load_dataset, load_prepared, make_splits, write_prepared
from spikebench.io import save_checkpoint
from spikebench.results import read_rows
from spikebench.spiking import load_snn
from tests.predictions_check import assert_rows_match_their_predictions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory, digits_cnn, digits_data):
    """A working directory with smoke params, prepared digits splits and the digits CNN as models/ann.pt."""
    root = tmp_path_factory.mktemp("stages")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "smoke"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    raw = load_dataset("digits")
    manifest = write_prepared(root / "data/prepared", raw, make_splits(raw, 0.1, 0.2, 0), 0)
    assert manifest["split_hash"] == digits_data.split_hash
    widths = (digits_cnn[0].out_channels, digits_cnn[3].out_channels, digits_cnn[7].out_features)  # the fixture's cnn widths
    config = ArchConfig("cnn", digits_data.input_shape, digits_data.num_classes, channels=widths)
    meta = {**config.to_meta(), "dataset": "digits", "split_hash": digits_data.split_hash, "test_accuracy": 0.0}
    save_checkpoint(root / "models/ann.pt", digits_cnn.state_dict(), meta)
    return root


def digits_test(root: Path):
    return load_prepared(root / "data/prepared").test[1]


def run_stage(monkeypatch, directory: Path, module) -> None:
    monkeypatch.chdir(directory)
    module.main()


@pytest.mark.slow
def test_conversion_rmp_parity_stages(stage_dir, monkeypatch):
    from methods import conversion, parity, rmp

    run_stage(monkeypatch, stage_dir, conversion)
    rows = read_rows(stage_dir / "results/conversion.json")
    main = {r.timesteps: r for r in rows if r.extra["config"] == "main"}
    assert sorted(main) == [1, 2, 4, 8, 16]
    assert main[16].accuracy >= main[16].ann_accuracy - 0.08
    assert main[16].synops_per_image > main[4].synops_per_image > 0 and main[16].energy_per_image_j > 0
    # the T=hardware_timesteps row points the hardware at the saved network; only the main T=16 row is a headline row
    assert main[16].model_path == "models/conversion_snn.pt" and main[16].mappable is True
    assert [r.timesteps for r in rows if r.mappable] == [16] and all(not r.model_path for r in rows if not r.mappable)
    assert [r.timesteps for r in rows if r.headline] == [16]
    assert all(r.test_images == len(digits_test(stage_dir)) for r in main.values())
    sweep_rows = [r for r in rows if r.extra["config"] == "sweep"]
    sweep = {(r.extra["reset"], r.extra["percentile"]) for r in sweep_rows}
    assert sweep == {(reset, p) for reset in ("subtract", "zero") for p in (99.9, 100.0)}
    assert {r.test_images for r in sweep_rows} == {60}
    for key in ("leaderboard", "test_images", "mappable", "model_path"):
        assert not any(key in r.extra for r in rows), f"{key} belongs in a typed field"
    net, meta = load_snn(stage_dir / "models/conversion_snn.pt")
    assert meta["timesteps"] == 16 and meta["reset"] == "subtract" and meta["input_shape"] == [1, 8, 8] and meta["num_classes"] == 10
    assert (stage_dir / "reports/conversion_accuracy_vs_T.png").stat().st_size > 0
    labels = digits_test(stage_dir)
    assert_rows_match_their_predictions(stage_dir, rows, labels)
    # the main configuration runs every test image to T_max (smoke T_max 16 <= 64); the sweep's images are its first
    main_images = np.load(stage_dir / main[16].predictions_file)["indices"]
    assert sorted(main_images) == list(range(len(labels)))
    sweep_images = np.load(stage_dir / sweep_rows[0].predictions_file)["indices"]
    assert np.array_equal(main_images[:60], sweep_images)

    run_stage(monkeypatch, stage_dir, rmp)
    rmp_rows = read_rows(stage_dir / "results/rmp.json")
    assert {r.extra["threshold_scale"] for r in rmp_rows} == {1.0, 0.8, 0.6}
    assert [(r.extra["threshold_scale"], r.timesteps) for r in rmp_rows if r.mappable] == [(0.8, 16)]
    assert all(r.model_path == "models/rmp_snn.pt" for r in rmp_rows if r.mappable)
    # the main scale over the whole test split, the other scales on the fixed subset
    assert {r.test_images for r in rmp_rows if r.extra["threshold_scale"] == 0.8} == {len(labels)}
    assert {r.test_images for r in rmp_rows if r.extra["threshold_scale"] != 0.8} == {60}
    assert_rows_match_their_predictions(stage_dir, rmp_rows, labels)
    rmp_main = np.load(stage_dir / next(r for r in rmp_rows if r.mappable).predictions_file)["indices"]
    rmp_subset = np.load(stage_dir / next(r for r in rmp_rows if r.extra["threshold_scale"] == 1.0).predictions_file)["indices"]
    assert sorted(rmp_main) == list(range(len(labels))) and np.array_equal(rmp_main[:60], rmp_subset)  # the subset first
    assert np.array_equal(np.sort(rmp_subset), np.sort(sweep_images))  # conversion sweep and rmp subset share their images
    latency = json.loads((stage_dir / "reports/rmp_latency.json").read_text())
    assert latency["images"] == 60 and latency["headline"] == "hard_reset_unscaled"
    assert {"hard_reset_unscaled", "hard_reset_same_thresholds", "percentile_conversion"} <= set(latency["baselines"])
    # the percentile baseline is the strongest reset-to-zero conversion of the sweep, on the images both stages share
    zero = {p: sum(r.accuracy for r in rows if r.extra.get("reset") == "zero" and r.extra["percentile"] == p) for p in (99.9, 100.0)}
    assert latency["baselines"]["percentile_conversion"]["baseline"].startswith(f"conversion reset=zero p{max(zero, key=zero.get):g}")
    assert all(len(b["comparisons"]) == 4 for b in latency["baselines"].values())
    main_row = next(r for r in rmp_rows if r.extra["config"] == "main")
    assert len(main_row.extra["latency_factors"]["hard_reset_unscaled"]) == 4
    _, rmp_meta = load_snn(stage_dir / "models/rmp_snn.pt")
    assert rmp_meta["reset"] == "subtract" and all(t > 0 for t in rmp_meta["thresholds"][:-1])

    run_stage(monkeypatch, stage_dir, parity)
    report = json.loads((stage_dir / "reports/parity.json").read_text())
    for library in ("snntorch", "spikingjelly", "norse"):
        assert report["libraries"][library]["identical_predictions"]["16"] >= 0.99
    assert report["brian2"]["differing_counts"] == [0]
    parity_rows = read_rows(stage_dir / "results/parity.json")
    assert {r.library for r in parity_rows if r.headline} == {"snntorch", "norse", "spikingjelly"}
    assert {r.timesteps for r in parity_rows if r.headline} == {16}
    assert {r.test_images for r in parity_rows if r.library == "norse"} == {30}
    assert {r.test_images for r in parity_rows if r.library != "norse"} == {60}
    assert_rows_match_their_predictions(stage_dir, parity_rows, labels)


def test_conversion_stage_without_a_baseline_fails_in_one_line(stage_dir, tmp_path, monkeypatch, capsys):
    from methods import conversion

    shutil.copytree(stage_dir / "data", tmp_path / "data")
    shutil.copy(stage_dir / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        conversion.main()
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: models/ann.pt: model file not found") and "\n" not in error
