"""The `ann_rtl` stage on the smoke profile (digits) in a scratch copy of the repository:
both ANNs (baseline and st_pruning's slim ANN) through quantisation, export and Verilator on
the whole digits test split, bit-exact, with rows a reader can use; bad parameters stop it
with one line before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_repository

pytestmark = pytest.mark.slow  # trains the smoke ANN, builds and runs Verilator


def _run(work: Path, module: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPIKEBENCH_TRACKING": "off", "MPLCONFIGDIR": str(work / ".mplconfig"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", module], cwd=work, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke_copy(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("ann_stage")
    copy_repository(work)
    params = (work / "params.yaml").read_text()
    (work / "params.yaml").write_text(params.replace("\nprofile: default", "\nprofile: smoke", 1))
    for module in ("baselines.prepare", "baselines.baseline"):
        done = _run(work, module)
        assert done.returncode == 0, done.stderr[-2000:]
    return work


def test_stage_runs_both_anns_bit_exact(smoke_copy: Path) -> None:
    done = _run(smoke_copy, "hardware.ann_rtl")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = json.loads((smoke_copy / "results/hardware_ann.json").read_text())["rows"]
    report = json.loads((smoke_copy / "reports/hardware_ann.json").read_text())
    assert [r["extra"]["config"] for r in rows] == ["baseline", "st_pruning"]
    for row in rows:
        extra = row["extra"]
        assert row["method"] == "ann" and row["library"] == "rtl"
        assert row["test_images"] == report[extra["config"]]["images"] > 300  # the whole digits test split
        assert extra["mismatches"] == 0 and extra["int_float_gap_pp"] <= 2.0
        assert abs(extra["macs_issued_per_image"] + extra["macs_skipped_per_image"] - row["macs_per_image"]) < 1e-6
        assert row["hw_cycles_per_image"] == report[extra["config"]]["cycles_per_image"]
        assert extra["memory_energy_per_image_j_180nm"] > 0
    assert rows[1]["macs_per_image"] < rows[0]["macs_per_image"]  # the pruned ANN is smaller
    assert "bit-exact" in done.stdout


def test_bad_parameters_stop_the_stage_in_one_line(smoke_copy: Path) -> None:
    params = (smoke_copy / "params.yaml").read_text()
    (smoke_copy / "params.yaml").write_text(params.replace("  weight_bits: 5           # per-layer", "  weight_bits: 1           # per-layer", 1))
    try:
        done = _run(smoke_copy, "hardware.ann_rtl")
    finally:
        (smoke_copy / "params.yaml").write_text(params)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ann_hw.weight_bits" in lines[0], done.stderr
