"""Stage times from the run records: stages that ran here, stages DVC skipped, stages never run."""

from __future__ import annotations

import json

from spikebench.timings import stage_times


def test_skipped_stages_are_listed_as_such(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("SPIKEBENCH_TRACKING", "on")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    client = MlflowClient(store)  # its own experiment: no global MLflow state from other tests
    local_id = client.create_run(client.create_experiment("timings")).info.run_id
    (tmp_path / "dvc.yaml").write_text("stages:\n  prepare: {cmd: x}\n  baseline: {cmd: y}\n  publish: {cmd: z}\n")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "prepare.json").write_text(json.dumps({"run_id": local_id, "stage_seconds": 2.0}))
    (runs / "baseline.json").write_text(json.dumps({"run_id": "f" * 32, "stage_seconds": 190.0, "finished": "2026-12-01T10:00:00Z"}))
    times = {t.stage: t for t in stage_times(tmp_path / "dvc.yaml", runs)}
    assert (times["prepare"].status, times["prepare"].seconds) == ("ran", 2.0)
    assert (times["baseline"].status, times["baseline"].seconds) == ("skipped", 190.0)  # a committed record from elsewhere
    assert times["publish"].status == "no record" and times["publish"].seconds is None
