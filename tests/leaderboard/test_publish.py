"""Leaderboard rendering from result rows."""

from __future__ import annotations

import json

import pandas as pd

from leaderboard.figures import pareto_front
from leaderboard.publish import build
from leaderboard.tables import rmp_latency_table
from spikebench.results import ResultRow, rows_frame, write_rows


def row(method: str, accuracy: float, energy: float, **kw) -> ResultRow:
    base = dict(
        method=method, library="spikebench" if method != "ann" else "torch", dataset=kw.pop("dataset", "digits"),
        split_hash="s1", arch="cnn", timesteps=kw.pop("timesteps", 0 if method == "ann" else 8), accuracy=accuracy,
        ann_accuracy=0.95, spikes_per_image=10.0, synops_per_image=100.0, macs_per_image=1000.0,
        energy_per_image_j=energy, params=1000, nonzero_params=kw.pop("nonzero", 1000), weight_bits=32, seed=0,
        test_images=kw.pop("test_images", 500), stage=kw.pop("stage", "baseline" if method == "ann" else method),
    )
    base.update(kw)
    return ResultRow(**base)


def test_tables_per_dataset_sorted_with_delta_links_and_plots(tmp_path):
    write_rows(tmp_path / "a.json", [
        row("ann", 0.95, 4e-6),
        row("conversion", 0.90, 1e-6, timesteps=4, extra={"reset": "zero"}),
        row("conversion", 0.94, 2e-6, timesteps=32, nonzero=250, extra={"reset": "subtract"}),
        row("conversion", 0.10, 1e-9, timesteps=1, headline=False),
        row("ann", 0.80, 5e-6, dataset="mnist_like"),
    ])
    md_path, plots, runs = tmp_path / "LEADERBOARD.md", tmp_path / "plots", tmp_path / "runs"
    runs.mkdir()
    (runs / "baseline.json").write_text(json.dumps({"stage": "baseline", "run_id": "abcdef1234567890", "experiment_id": "1"}))
    build([str(tmp_path / "a.json")], md_path, plots, tmp_path / "no_prior_art.yaml", runs)
    text = md_path.read_text()
    digits_table = text.split("## digits")[1].split("## mnist_like")[0]
    lines = [line for line in digits_table.splitlines() if line.startswith("| ann") or line.startswith("| conversion")]
    assert [line.split("|")[6].strip() for line in lines] == ["95.00%", "94.00%", "90.00%"]  # sorted by accuracy
    assert "| -1.00 |" in lines[1] and "| -5.00 |" in lines[2]  # Δ vs ANN in pp
    assert "4.0×" in lines[1]  # compression: 1000 ANN params / 250 non-zero
    assert "10.00%" not in digits_table  # sweep row kept out of the table
    assert "http://127.0.0.1:5000/#/experiments/1/runs/abcdef1234567890" in lines[0]  # the stage's recorded run
    assert "[record](../reports/runs/baseline.json)" in lines[0]  # and its committed record
    assert lines[1].rstrip().endswith("| – |")  # conversion has no run record: no link
    csv = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert csv[0].startswith("dataset,method,library") and len(csv) == 1 + 4  # the headline rows of both datasets
    series = (plots / "accuracy_vs_T.csv").read_text().splitlines()
    assert series[0] == "series,timesteps,accuracy" and len(series) == 1 + 3
    assert "## mnist_like" in text and "(published)" in text
    assert "| 500 |" in lines[0]  # the number of test images each accuracy is over
    assert (plots / "accuracy_vs_T.png").stat().st_size > 1000 and (plots / "accuracy_vs_energy.png").stat().st_size > 1000


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
    write_rows(tmp_path / "r.json", [row("ann", 0.95, 4e-6), row("rmp", 0.93, 1e-6, extra={"config": "main", "latency_factors": factors})])
    table = rmp_latency_table(rows_frame([str(tmp_path / "r.json")]))
    lines = [line for line in table.splitlines() if line.startswith("| hard reset")]
    assert lines[0].endswith("| 90.0% | 10 | 25 | 2.50× |")
    assert lines[1].endswith("| ≥ 12.85× |")  # the baseline never reached 92%: a lower bound
    assert "RMP does not reach it" in lines[2]
    assert "500 test images" in table
