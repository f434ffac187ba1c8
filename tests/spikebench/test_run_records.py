"""reports/runs/<stage>.json: every finished stage records which MLflow run produced its outputs."""

from __future__ import annotations

import json

import pytest

from spikebench.tracking import stage_run

TAGS = {"method": "ann", "library": "torch", "dataset": "digits", "split_hash": "abc"}


def test_a_finished_stage_records_its_run(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIKEBENCH_TRACKING", "on")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with stage_run("baseline", **TAGS) as run:
        run_id = run.run_id
    record = json.loads((tmp_path / "reports/runs/baseline.json").read_text())
    assert record["run_id"] == run_id and record["stage"] == "baseline" and record["stage_seconds"] >= 0
    assert mlflow.get_run(run_id).info.status == "FINISHED"


def test_tracking_off_still_records_the_stage_without_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with stage_run("prepare", **TAGS):
        pass
    record = json.loads((tmp_path / "reports/runs/prepare.json").read_text())
    assert record["run_id"] is None and record["git_commit"]


def test_a_failed_or_silent_stage_leaves_no_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError), stage_run("conversion", **TAGS):
        raise RuntimeError("boom")
    with stage_run("rmp", **TAGS, enabled=False):  # a non-zero torchrun rank
        pass
    assert not (tmp_path / "reports/runs").exists()
