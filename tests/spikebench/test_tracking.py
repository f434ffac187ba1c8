"""MLflow tracking against a real sqlite backend, and the UI serving it."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from spikebench.errors import SpikebenchError
from spikebench.snn_training import SnnEpochStats
from spikebench.tracking import EXPERIMENT, child_run, log_snn_epoch, stage_run, ui_server


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


@pytest.mark.slow
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


class _Recorder:
    def __init__(self) -> None:
        self.logged: list[tuple[dict, int | None]] = []

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.logged.append((metrics, step))


def test_snn_epoch_log_names_metrics_continues_steps_and_leaves_out_the_readout_leak(capsys):
    run = _Recorder()
    stats = SnnEpochStats(epoch=2, timesteps=4, train_loss=0.5, train_accuracy=0.8, val_accuracy=0.75, seconds=1.0,
                          thresholds=[1.2, 0.9], leaks=[0.95, 1.0, 1.0])
    log_snn_epoch(run, label="irregular SNN", prefix="snn_", offset=3)(stats)
    ((metrics, step),) = run.logged
    assert step == 5  # epochs continue after the 3 logged before
    assert metrics == {"snn_train_loss": 0.5, "snn_train_accuracy": 0.8, "snn_val_accuracy": 0.75, "snn_epoch_seconds": 1.0,
                       "threshold_0": 1.2, "threshold_1": 0.9, "leak_0": 0.95, "leak_1": 1.0}
    assert capsys.readouterr().out == "  irregular SNN T=4 epoch 2: loss 0.5000 val 0.7500 (1.0s)\n"
