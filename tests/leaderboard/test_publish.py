"""Leaderboard rendering from result rows and their per-image predictions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from leaderboard.evaluation import Labels, evaluate_rows, headline_rows, pooled_rows
from leaderboard.figures import pareto_front
from leaderboard.publish import build
from leaderboard.tables import rmp_latency_table, seeds_table
from spikebench.errors import SpikebenchError
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, rows_frame, write_rows

N = 200
LABELS = np.arange(N) % 10


def answers(wrong: list[int] | range, indices: np.ndarray | None = None) -> Predictions:
    """Predictions right on every image of `indices` (default all) but those in `wrong`."""
    indices = np.arange(N) if indices is None else indices
    classes = LABELS[indices].copy()
    for i, index in enumerate(indices):
        if index in set(wrong):
            classes[i] = (classes[i] + 1) % 10
    return Predictions.of(classes, indices)


def row(method: str, predictions: Predictions, energy: float, **kw) -> ResultRow:
    correct = predictions.correct(LABELS)
    base = dict(
        method=method, library="spikebench" if method != "ann" else "torch", dataset="digits", split_hash="s1", arch="cnn",
        timesteps=kw.pop("timesteps", 0 if method == "ann" else 8), accuracy=float(correct.mean()), ann_accuracy=0.95,
        spikes_per_image=10.0, synops_per_image=100.0, macs_per_image=1000.0, energy_per_image_j=energy, params=1000,
        nonzero_params=kw.pop("nonzero", 1000), weight_bits=32, seed=kw.pop("seed", 0), test_images=len(predictions),
        stage=kw.pop("stage", "baseline" if method == "ann" else method), predictions=predictions,
    )
    base.update(kw)
    return ResultRow(**base)


def render(tmp_path, results: list[str], rule: str = "min_energy_within_gap", gap: float = 0.02) -> tuple[str, pd.DataFrame]:
    md_path, plots, runs = tmp_path / "LEADERBOARD.md", tmp_path / "plots", tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    (runs / "baseline.json").write_text(json.dumps({"stage": "baseline", "run_id": "abcdef1234567890", "experiment_id": "1"}))
    headline = build(results, [Labels("digits", "s1", LABELS)], rule, gap, out_md=md_path, plot_dir=plots,
                     prior_art=tmp_path / "no_prior_art.yaml", runs_dir=runs)
    return md_path.read_text(), headline


def headline_lines(text: str) -> list[str]:
    table = text.split("## digits")[1].split("### digits: detail")[0]
    return [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")]


def test_headline_table_pairs_each_row_with_the_ann_on_the_same_images(tmp_path):
    results = tmp_path / "results" / "a.json"
    write_rows(results, [
        row("ann", answers(range(10)), 4e-6),                                   # wrong on images 0-9: 95.0%
        row("conversion", answers([0, 1, 50, 51, 52, 53, 54, 55]), 2e-6, timesteps=32, extra={"config": "main"}),
        row("conversion", answers(range(40)), 1e-6, timesteps=8, extra={"config": "main"}),  # 80%: beyond the 2 pp gap
        row("conversion", answers([], np.arange(20)), 1e-9, timesteps=4, extra={"config": "main"}),  # 100% on 20 images: a subset
        row("rmp", answers(range(10)), 3e-6, timesteps=16, extra={"config": "main"}, nonzero=250),
    ])
    text, headline = render(tmp_path, [str(results)])
    lines = headline_lines(text)
    assert [line.split("|")[1].strip() for line in lines] == ["ann", "conversion", "rmp"]  # fixed method order, one row each
    conversion = lines[1]
    # conversion T=32: right on 0-9 but 2 of them (only_row = 8), wrong on 50-55 where the ANN is right (only_ann = 6)
    assert "| 32 |" in conversion and "96.00% [" in conversion  # 192/200
    assert "| +1.00 |" in conversion  # (8 - 6) / 200 in pp, on the same images
    p = 2 * sum(math.comb(14, k) for k in range(7)) / 2**14  # exact McNemar: 2 P(X <= 6 | n = 14)
    assert f"| {p:.3f} |" in conversion
    assert "| 1.000 |" in lines[2] and "| +0.00 |" in lines[2]  # rmp: the same images wrong as the ANN: no discordant pair
    assert "4.0×" in lines[2]  # compression: 1000 ANN params / 250 non-zero
    assert "100.00%" not in "\n".join(lines)  # the 20-image subset row never enters the headline table
    detail = text.split("### digits: detail")[1]
    subset = next(line for line in detail.splitlines() if "| 20 |" in line)
    # the subset is images 0-19, where the ANN is wrong on 0-9: its ANN accuracy is 50%, not the ANN's 95% on the whole split
    assert "100.00% [" in subset and "| 50.00% |" in subset and "| +50.00 |" in subset and "| 0.002 |" in subset
    assert list(headline.method) == ["ann", "conversion", "rmp"]
    assert "http://127.0.0.1:5000/#/experiments/1/runs/abcdef1234567890" in lines[0] and "[record](../reports/runs/baseline.json)" in lines[0]
    assert "make ui" in text
    csv = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert csv[0].startswith("dataset,method,library") and len(csv) == 1 + 3
    for name in ("accuracy_vs_T.png", "accuracy_vs_energy.png", "accuracy_vs_T_sweeps.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000


def test_seeds_are_pooled_with_their_spread(tmp_path):
    results = tmp_path / "results" / "s.json"
    write_rows(results, [
        row("ann", answers(range(10)), 4e-6),
        row("st_pruning", answers(range(10)), 1e-6, timesteps=4, seed=0),
        row("st_pruning", answers(range(20)), 1e-6, timesteps=4, seed=1),
        row("st_pruning", answers(range(30)), 1e-6, timesteps=4, seed=2),
    ])
    text, headline = render(tmp_path, [str(results)], gap=0.2)
    line = next(line for line in headline_lines(text) if line.startswith("| st_pruning"))
    assert "90.00% [" in line  # pooled: 540 of 600 images
    assert "90.00 ± 5.00 (3 seeds)" in line  # per-seed 95, 90, 85
    assert int(headline[headline.method == "st_pruning"].images.iloc[0]) == 600


def test_seeds_table_lists_every_seed_of_a_method_that_prunes_to_other_widths(tmp_path):
    results = tmp_path / "results" / "s.json"
    write_rows(results, [
        row("ann", answers(range(10)), 4e-6),
        row("st_pruning", answers(range(10)), 1e-6, timesteps=4, seed=0, arch="cnn 15-37-44"),
        row("st_pruning", answers(range(20)), 1e-6, timesteps=4, seed=1, arch="cnn 15-36-45"),
        row("st_pruning", answers(range(30)), 1e-6, timesteps=4, seed=2, arch="cnn 14-37-44"),
    ])
    frame = evaluate_rows(rows_frame([results]), [Labels("digits", "s1", LABELS)])
    table = seeds_table(frame, headline_rows(pooled_rows(frame), "min_energy_within_gap", 0.2))
    line = next(line for line in table.splitlines() if line.startswith("| st_pruning"))
    # each seed's own accuracy beside the spread computed from them (95, 90, 85), whatever widths it pruned to
    assert "| cnn 15-37-44 |" in line and "| 95.00% | 90.00% | 85.00% | 90.00 ± 5.00 | 90.00% [" in line


def test_hardware_row_shows_golden_accuracy_and_checked_images(tmp_path):
    results = tmp_path / "results" / "h.json"
    model = "models/st_pruning_snn.pt"
    write_rows(results, [
        row("ann", answers(range(10)), 4e-6),
        row("hardware", answers(range(12), np.arange(50)), 1e-6, library="rtl", timesteps=4, headline=False, model_path=model,
            stage="rtl_sim"),
        row("hardware", answers(range(12)), 1e-6, library="gate", timesteps=4, model_path=model, stage="power",
            hw_energy_per_image_j=3.8e-3, hw_node="180 nm (OSU 0.18 um)", hw_clock_mhz=50.0, extra={"gate_images": 16}),
    ])
    text, _ = render(tmp_path, [str(results)], rule="max_accuracy")
    line = next(line for line in headline_lines(text) if line.startswith("| hardware"))
    assert "94.00% [" in line and "| 50 / 16 |" in line and "3,800.0 (180 nm)" in line


def test_bad_predictions_fail_with_one_line_naming_both_files(tmp_path):
    results = tmp_path / "results" / "b.json"
    write_rows(results, [row("ann", answers(range(10)), 4e-6), row("rmp", answers(range(10)), 3e-6, timesteps=16)])
    blob = json.loads(results.read_text())
    predictions = blob["rows"][1]["predictions_file"]
    short = answers(range(10), np.arange(100))
    short.save(tmp_path / "short.npz", "s1")
    blob["rows"][1]["predictions_file"] = str(tmp_path / "short.npz")
    results.write_text(json.dumps(blob))
    with pytest.raises(SpikebenchError) as err:
        render(tmp_path, [str(results)])
    message = str(err.value)
    assert "\n" not in message and str(results) in message and "short.npz" in message and "100" in message
    answers(range(10)).save(tmp_path / "other_split.npz", "s2")
    blob["rows"][1]["predictions_file"] = str(tmp_path / "other_split.npz")
    results.write_text(json.dumps(blob))
    with pytest.raises(SpikebenchError, match="other_split.npz.*s2"):
        render(tmp_path, [str(results)])
    blob["rows"][1]["predictions_file"] = ""
    results.write_text(json.dumps(blob))
    with pytest.raises(SpikebenchError, match="no predictions file"):
        render(tmp_path, [str(results)])
    assert predictions.endswith(".npz")


def test_pareto_front_keeps_only_undominated_points():
    points = pd.DataFrame({"energy_per_image_j": [1, 2, 3, 4], "accuracy": [0.5, 0.4, 0.9, 0.8]})
    front = pareto_front(points)
    assert list(front.accuracy) == [0.5, 0.9]


def test_rmp_latency_table_marks_lower_bounds_and_unreached_targets(tmp_path):
    factors = {"baselines": {"hard_reset_unscaled": "hard reset, unscaled"}, "headline": "hard_reset_unscaled", "images": 500,
               "hard_reset_unscaled": [
                   {"target_accuracy": 0.9, "rmp_timesteps": 10, "baseline_timesteps": 25, "factor": 2.5},
                   {"target_accuracy": 0.92, "rmp_timesteps": 20, "baseline_timesteps": None, "factor": 257 / 20},
                   {"target_accuracy": 0.95, "rmp_timesteps": None, "baseline_timesteps": None, "factor": None}]}
    write_rows(tmp_path / "r.json", [row("ann", answers([]), 4e-6), row("rmp", answers([]), 1e-6, extra={"config": "main", "latency_factors": factors})])
    table = rmp_latency_table(rows_frame([str(tmp_path / "r.json")]))
    lines = [line for line in table.splitlines() if line.startswith("| hard reset")]
    assert lines[0].endswith("| 90.0% | 10 | 25 | 2.50× |")
    assert lines[1].endswith("| ≥ 12.85× |")  # the baseline never reached 92%: a lower bound
    assert "RMP does not reach it" in lines[2]
    assert "500 test images" in table
