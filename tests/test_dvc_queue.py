"""Sweeps through DVC's experiment queue: two queued smoke experiments of the baseline stage,
run by `dvc queue start -j 2`, each ending with its own metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import copy_repository

pytestmark = pytest.mark.slow


def _dvc(work: Path, env: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(["dvc", *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def test_queued_sweep_runs_every_experiment(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    copy_repository(work)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "SPIKEBENCH_TRACKING": "off",
           "MPLCONFIGDIR": str(work / ".mplconfig")}
    for lr in ("0.01", "0.003"):
        _dvc(work, env, "exp", "run", "--queue", "-S", "profile=smoke", "-S", f"baseline.lr={lr}", "-S", "baseline.epochs=3", "baseline")
    _dvc(work, env, "queue", "start", "-j", "2", timeout=900)  # returns when its workers close its output pipe
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = _dvc(work, env, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    _dvc(work, env, "queue", "stop")
    assert status.count("Success") == 2, status
    shown = json.loads(_dvc(work, env, "exp", "show", "--json").stdout)
    runs = [exp for commit in shown for exp in (commit.get("experiments") or [])]
    accuracies = {}
    for experiment in runs:
        rev = experiment["revs"][0]
        lr = rev["data"]["params"]["params.yaml"]["data"]["baseline"]["lr"]
        # each experiment is a git commit (refs/exps) holding its own results file
        committed = subprocess.run(["git", "show", f"{rev['rev']}:results/baseline.json"], cwd=work, capture_output=True, text=True, check=True)
        accuracies[lr] = json.loads(committed.stdout)["rows"][0]["accuracy"]
        # the experiment's flat metrics are what `dvc exp show` displays: the same accuracy, in percent
        assert rev["data"]["metrics"]["metrics/baseline.json"]["data"]["accuracy"] == round(accuracies[lr] * 100, 2)
    assert set(accuracies) == {0.01, 0.003}
    assert all(0.5 < a <= 1.0 for a in accuracies.values()), accuracies
    # what changed between the experiments, and nothing else, in a table a terminal can hold
    table = _dvc(work, env, "exp", "show", "--only-changed", "--csv").stdout.splitlines()
    assert "metrics/baseline.json:accuracy" in table[0] and "baseline.lr" in table[0]
    assert len(table[0].split(",")) <= 40, table[0]
