"""MLflow tracking against a real sqlite backend, and the UI serving it."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from spikebench.errors import SpikebenchError
from spikebench.results import RowContext
from spikebench.snn_training import SnnEpochStats
from spikebench.tracking import (
    EXPERIMENT,
    EXPERIMENT_KIND,
    REGISTERED_ALIAS,
    REGISTERED_MODEL,
    child_run,
    headline_metrics,
    log_snn_epoch,
    primary_row,
    stage_run,
    ui_server,
)


@pytest.fixture(autouse=True)
def _scratch_directory(monkeypatch, tmp_path):
    """Stage runs write reports/runs/<stage>.json relative to the working directory: keep them out of the checkout."""
    monkeypatch.chdir(tmp_path)


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
        with child_run("step-1", {"timesteps": 4, "reset": "zero"}, tags={"step": "temporal"}) as child:
            child.log_metrics({"accuracy": 0.6})
        run_id = run.run_id
    frame = runs(tracking_on).set_index("run_id")
    row = frame.loc[run_id]
    assert row["status"] == "FINISHED"
    assert row["tags.method"] == "ann" and row["tags.split_hash"] == "s1" and row["tags.dvc_stage"] == "unit"
    assert row["tags.git_commit"] and row["params.a.b"] == "1"
    assert row["metrics.val_accuracy"] == 0.7 and row["metrics.stage_seconds"] >= 0
    (child,) = [c for _, c in frame[frame["tags.mlflow.parentRunId"] == run_id].iterrows()]
    # sweep settings are params (the compare view and parallel coordinates read params), the stage's tags are inherited
    assert child["params.timesteps"] == "4" and child["params.reset"] == "zero" and child["tags.step"] == "temporal"
    assert {k: child[f"tags.{k}"] for k in ("method", "library", "dataset", "split_hash", "dvc_stage")} == {
        "method": "ann", "library": "torch", "dataset": "digits", "split_hash": "s1", "dvc_stage": "unit"}


def test_child_run_may_override_an_inherited_tag_and_logs_nothing_outside_a_stage(tracking_on):
    with child_run("orphan", {"x": 1}) as orphan:
        assert orphan.run is None
    with stage_run("parity", method="conversion", library="all", dataset="digits", split_hash="s1") as run:
        with child_run("parity-norse", {"library": "norse"}, tags={"library": "norse"}):
            pass
    child = runs(tracking_on).set_index("run_id")
    child = child[child["tags.mlflow.parentRunId"] == run.run_id].iloc[0]
    assert child["tags.library"] == "norse" and child["params.library"] == "norse" and child["tags.method"] == "conversion"


def test_experiment_opens_on_runs_and_is_described(tracking_on):
    import mlflow

    with stage_run("kind", method="ann", library="torch", dataset="digits", split_hash="s1"):
        pass
    tags = mlflow.get_experiment_by_name(EXPERIMENT).tags
    assert tags["mlflow.experimentKind"] == EXPERIMENT_KIND == "custom_model_development"
    assert "test_accuracy" in tags["mlflow.note.content"]


def test_split_is_the_runs_dataset_input(tracking_on):
    import mlflow

    with stage_run("split", method="ann", library="torch", dataset="digits", split_hash="0123abcd") as run:
        pass
    with stage_run("synth", method="hardware", library="gate", dataset="-", split_hash="-") as unsplit:
        pass
    (entry,) = mlflow.get_run(run.run_id).inputs.dataset_inputs
    assert (entry.dataset.name, entry.dataset.digest) == ("digits", "0123abcd")
    assert not mlflow.get_run(unsplit.run_id).inputs.dataset_inputs


def result_row(library="spikebench", headline=True, model_path="", accuracy=0.9, timesteps=4, energy_j=2.5e-6, hw_j=None):
    context = RowContext("digits", "s1", 0)
    return context.row("st_pruning", library, "cnn", timesteps=timesteps, accuracy=accuracy, test_images=100, ann_accuracy=0.95,
                       macs_per_image=0.0, params=(10, 10), weight_bits=5, headline=headline, model_path=model_path,
                       mappable=bool(model_path), energy_per_image_j=energy_j, hw_energy_per_image_j=hw_j)


def test_primary_row_is_the_exported_headline_row_of_the_stage_library():
    temporal = result_row(accuracy=0.9059, timesteps=4)                              # fp32 at the final T
    exported = result_row(accuracy=0.9090, model_path="models/st_pruning_snn.pt")   # the 5-bit model the hardware gets
    other = result_row(library="snntorch", accuracy=0.5, model_path="m.pt")
    sweep = result_row(headline=False, accuracy=0.99)
    assert primary_row([sweep, temporal, other, exported], "spikebench") is exported
    assert primary_row([sweep, temporal], "spikebench") is temporal          # no exported row: the first headline row
    assert primary_row([sweep], "spikebench") is sweep                      # no headline row at all (hardware rows)
    assert primary_row([other], "spikebench") is other                      # none of the stage's library
    assert primary_row([], "spikebench") is None


def test_headline_metrics_names_and_units():
    metrics = headline_metrics(result_row(energy_j=2.5e-6, hw_j=3.0e-5))
    assert metrics["test_accuracy"] == pytest.approx(0.9) and metrics["timesteps"] == 4
    assert metrics["energy_per_image_uj"] == pytest.approx(2.5) and metrics["hw_energy_per_image_uj"] == pytest.approx(30.0)
    assert {"sops_per_image", "spikes_per_image", "macs_per_image", "test_images", "weight_bits"} <= set(metrics)
    assert "hw_energy_per_image_uj" not in headline_metrics(result_row())
    assert not any(name.endswith("_j") for name in metrics)


def test_log_headline_puts_the_same_names_on_every_stage_run(tracking_on):
    with stage_run("st_pruning", method="st_pruning", library="spikebench", dataset="digits", split_hash="s1") as run:
        logged = run.log_headline([result_row(accuracy=0.9059), result_row(accuracy=0.9090, model_path="models/x.pt")])
    row = runs(tracking_on).set_index("run_id").loc[run.run_id]
    assert logged["test_accuracy"] == pytest.approx(0.909) and row["metrics.test_accuracy"] == pytest.approx(0.909)
    assert row["metrics.energy_per_image_uj"] == pytest.approx(2.5) and row["metrics.timesteps"] == 4
    assert "models/x.pt" in row["tags.headline_row"]


def test_tracking_off_logs_nothing_and_fails_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEBENCH_TRACKING", "off")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    with stage_run("off", method="ann", library="torch", dataset="digits", split_hash="s1") as run:
        with child_run("c", {"bits": 4}) as child:
            child.log_metrics({"a": 1.0})
        assert run.log_headline([result_row()])["test_accuracy"] == pytest.approx(0.9)  # computed, not logged
        assert run.log_snn_model("missing.pt", None) is None and run.register_selected("missing.pt", None) == ""
        assert run.log_torch_model(None, None) is None
    assert not (tmp_path / "never.db").exists()


@pytest.mark.slow
def test_registered_snn_predicts_like_the_engine(tracking_on, tmp_path):
    """An SNN logged as a pyfunc (signature, input example) and registered loads and predicts the engine's classes."""
    import mlflow
    import torch

    from spikebench.spiking import SpikingNetwork, save_snn, simulate

    torch.manual_seed(0)
    layers = [{"type": "conv", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
              {"type": "flatten"}, {"type": "linear", "in_features": 32, "out_features": 3, "bias": True}]
    net = SpikingNetwork(layers, [0.5, None]).eval()
    checkpoint = tmp_path / "snn.pt"
    save_snn(checkpoint, net, method="conversion", timesteps=6, input_shape=[1, 4, 4], num_classes=3)
    x = torch.rand(12, 1, 4, 4) * 3
    with stage_run("nir", method="conversion", library="snntorch", dataset="digits", split_hash="s1") as run:
        version = run.register_selected(checkpoint, x[:2], tags={"method": "conversion"})
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{REGISTERED_ALIAS}")
    expected = simulate(net, x, 6).predictions().numpy()
    assert (model.predict(x.numpy()) == expected).all()
    assert model.metadata.signature.params.to_dict()[0]["default"] == 6
    assert mlflow.MlflowClient().get_model_version(REGISTERED_MODEL, version).tags["method"] == "conversion"


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
