"""MLflow tracking against a real sqlite backend, and the UI serving it."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from spikebench.errors import SpikebenchError
from spikebench.tracking import EXPERIMENT, child_run, stage_run, ui_server


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracking_on(monkeypatch, store):
    monkeypatch.setenv("SPIKEBENCH_TRACKING", "on")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return store


def runs(store: str):
    import mlflow

    mlflow.set_tracking_uri(store)
    return mlflow.search_runs(experiment_names=[EXPERIMENT])


def test_stage_run_records_tags_params_metrics_and_children(tracking_on):
    with stage_run("unit", method="ann", library="torch", dataset="digits", split_hash="s1", params={"a": {"b": 1}}) as run:
        run.log_metrics({"val_accuracy": 0.5}, step=1)
        run.log_metrics({"val_accuracy": 0.7}, step=2)
        with child_run("step-1", tags={"timesteps": 4}) as child:
            child.log_metrics({"accuracy": 0.6})
        run_id = run.run_id
    frame = runs(tracking_on).set_index("run_id")
    row = frame.loc[run_id]
    assert row["status"] == "FINISHED"
    assert row["tags.method"] == "ann" and row["tags.split_hash"] == "s1" and row["tags.dvc_stage"] == "unit"
    assert row["tags.git_commit"] and row["params.a.b"] == "1"
    assert row["metrics.val_accuracy"] == 0.7 and row["metrics.stage_seconds"] >= 0
    children = frame[frame["tags.mlflow.parentRunId"] == run_id]
    assert len(children) == 1 and children.iloc[0]["tags.timesteps"] == "4"


def test_failing_stage_is_recorded_as_failed(tracking_on):
    with pytest.raises(RuntimeError):
        with stage_run("broken", method="ann", library="torch", dataset="digits", split_hash="s1") as run:
            run_id = run.run_id
            raise RuntimeError("diverged")
    row = runs(tracking_on).set_index("run_id").loc[run_id]
    assert row["status"] == "FAILED" and "diverged" in row["tags.error"]


def test_unreachable_backend_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEBENCH_TRACKING", "on")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(SpikebenchError, match="MLFLOW_TRACKING_URI=http://127.0.0.1:9: MLflow backend unreachable"):
        with stage_run("x", method="ann", library="torch", dataset="d", split_hash="s"):
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_ui_serves_the_runs(tracking_on):
    import mlflow

    with stage_run("served", method="ann", library="torch", dataset="digits", split_hash="s1") as run:
        run_id = run.run_id
    experiment_id = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    with ui_server(tracking_on, free_port()) as url:
        body = json.dumps({"experiment_ids": [experiment_id], "max_results": 100}).encode()
        request = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=body, headers={"Content-Type": "application/json"})
        found = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert run_id in {r["info"]["run_id"] for r in found.get("runs", [])}
    with pytest.raises(OSError):  # exactly that server is gone
        urllib.request.urlopen(f"{url}/health", timeout=2)
