"""What a DVC user reaches for first, on the smoke pipeline (the session's `smoke_run`):
`dvc metrics show` fits a terminal and has every method's accuracy, `dvc plots show` renders,
and a repro in a copy without the local caches re-runs only what it must."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RESULTS_STAGES = {"baseline", "conversion", "rmp", "st_pruning", "attention_pruning", "stdp"}


def dvc(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "SPIKEBENCH_TRACKING": "off",
           "MPLCONFIGDIR": str(work / ".mplconfig"), "COLUMNS": "200"}
    result = subprocess.run(["dvc", *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def test_metrics_show_fits_a_terminal_with_every_methods_accuracy(smoke_run):
    work, _, _ = smoke_run
    table = dvc(work, "metrics", "show", "--json").stdout
    import json

    metrics = json.loads(table)
    files = next(iter(metrics.values()))["data"]
    by_stage = {Path(path).stem: body["data"] for path, body in files.items()}
    assert RESULTS_STAGES <= set(by_stage)
    assert all(0 < by_stage[s]["accuracy"] <= 100 for s in RESULTS_STAGES)
    columns = {key for data in by_stage.values() for key in data}
    assert len(columns) + 2 <= 40, sorted(columns)  # + Revision and Path
    text = dvc(work, "metrics", "show").stdout
    assert max(len(line) for line in text.splitlines()) < 200


def test_plots_show_renders_accuracy_vs_timesteps(smoke_run, tmp_path):
    work, _, _ = smoke_run
    out = tmp_path / "plots"
    dvc(work, "plots", "show", "--json", "-o", str(out))
    html = dvc(work, "plots", "show", "-o", str(out)).stdout
    page = (out / "index.html").read_text()
    assert "accuracy_vs_T" in page and "accuracy_vs_energy" in page and "baseline_training" in page, html
    series = (work / "leaderboard" / "plots" / "accuracy_vs_T.csv").read_text()
    assert series.startswith("series,timesteps,images,accuracy") and series.count("\n") > 5


def test_upstream_stages_that_rerun_with_the_same_results_rerun_nothing_downstream(smoke_run, tmp_path):
    """The baseline and conversion stages re-run (forced: new MLflow runs, new timings, new run records);
    their results come back with the same content, so no stage downstream re-runs: no file another
    stage depends on holds a run id or a timing. (A clone without the DVC cache is the same case: its
    cached outputs are re-made, identical, and only those stages run.)"""
    work, _, _ = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(work, copy, symlinks=True)  # a private copy: the shared store and outputs stay as they are
    before = {p: (copy / p).read_bytes() for p in ("models/ann.pt", "results/baseline.json", "results/conversion.json")}
    record = (copy / "reports/runs/baseline.json").read_text()
    forced = dvc(copy, "repro", "-f", "-s", "baseline", "conversion").stdout
    assert set(re.findall(r"Running stage '([a-z_]+)'", forced)) == {"baseline", "conversion"}
    assert (copy / "reports/runs/baseline.json").read_text() != record  # a new run was recorded
    assert all((copy / p).read_bytes() == content for p, content in before.items())  # the same results, byte for byte
    again = dvc(copy, "repro").stdout
    assert "Running stage" not in again and "up to date" in again
