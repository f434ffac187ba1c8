"""MLflow tracking: one run per stage, tagged so runs can be compared in the UI.

Default backend is `sqlite:///<repo>/mlflow.db` with artifacts in `<repo>/mlartifacts`;
`MLFLOW_TRACKING_URI` overrides it. A stage that raises ends its run as FAILED with the
error recorded. Tracking can be switched off with `SPIKEBENCH_TRACKING=off`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spikebench.errors import SpikebenchError
from spikebench.results import git_commit

EXPERIMENT = "spikebench"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def tracking_enabled() -> bool:
    return os.environ.get("SPIKEBENCH_TRACKING", "on").lower() not in ("off", "0", "false")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value


class StageRun:
    """Handle on the active run: metrics with steps, artifacts, nested child runs."""

    def __init__(self, run: Any | None) -> None:
        self.run = run

    @property
    def run_id(self) -> str:
        return self.run.info.run_id if self.run else ""

    @property
    def experiment_id(self) -> str:
        return self.run.info.experiment_id if self.run else ""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.run:
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params: dict[str, Any]) -> None:
        if self.run:
            import mlflow

            flat: dict[str, Any] = {}
            _flatten("", params, flat)
            mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        if self.run:
            import mlflow

            mlflow.log_artifact(str(path), artifact_path=folder)

    def set_tags(self, tags: dict[str, Any]) -> None:
        if self.run:
            import mlflow

            mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_snn_epoch(run: StageRun, *, label: str = "", prefix: str = "", offset: int = 0) -> Callable[[Any], None]:
    """The `on_epoch` callback of SNN training (`SnnEpochStats`): loss, accuracies, epoch time and
    every layer's threshold and leak (the read-out's leak left out) to `run` at step offset + epoch,
    and one line to stdout. `prefix` names the metrics apart from others in the same run."""

    def log(stats: Any) -> None:
        metrics = {f"{prefix}train_loss": stats.train_loss, f"{prefix}train_accuracy": stats.train_accuracy,
                   f"{prefix}val_accuracy": stats.val_accuracy, f"{prefix}epoch_seconds": stats.seconds}
        metrics.update({f"threshold_{k}": v for k, v in enumerate(stats.thresholds)})
        metrics.update({f"leak_{k}": v for k, v in enumerate(stats.leaks[:-1])})
        run.log_metrics(metrics, step=offset + stats.epoch)
        print(f"  {label + ' ' if label else ''}T={stats.timesteps} epoch {stats.epoch}: loss {stats.train_loss:.4f} "
              f"val {stats.val_accuracy:.4f} ({stats.seconds:.1f}s)")

    return log


def _connect() -> None:
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            artifacts = None
            if uri.startswith("sqlite:///"):
                artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    except Exception as err:  # mlflow raises many types for a bad backend
        raise SpikebenchError(
            f"MLFLOW_TRACKING_URI={uri}: MLflow backend unreachable ({type(err).__name__}); fix the URI or set SPIKEBENCH_TRACKING=off"
        ) from None
    mlflow.set_experiment(EXPERIMENT)


@contextlib.contextmanager
def stage_run(
    stage: str, *, method: str, library: str, dataset: str, split_hash: str, params: Any = None, enabled: bool = True
) -> Iterator[StageRun]:
    """Open the MLflow run of one pipeline stage; mark it FAILED if the body raises.

    `enabled=False` (e.g. on non-zero torchrun ranks) yields a handle that logs nothing.
    """
    if not (enabled and tracking_enabled()):
        yield StageRun(None)
        return
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    _connect()
    started = time.perf_counter()
    run = mlflow.start_run(run_name=stage)
    handle = StageRun(run)
    handle.set_tags(
        {
            "method": method,
            "library": library,
            "dataset": dataset,
            "split_hash": split_hash,
            "git_commit": git_commit(),
            "dvc_stage": stage,
        }
    )
    if params is not None:
        handle.log_params(params)
    try:
        yield handle
    except BaseException as err:
        handle.set_tags({"error": f"{type(err).__name__}: {err}"[:5000]})
        handle.log_metrics({"stage_seconds": time.perf_counter() - started})
        mlflow.end_run(status="FAILED")
        raise
    handle.log_metrics({"stage_seconds": time.perf_counter() - started})
    mlflow.end_run(status="FINISHED")


@contextlib.contextmanager
def child_run(name: str, tags: dict[str, Any] | None = None) -> Iterator[StageRun]:
    """A nested run inside the active stage run (e.g. one per sweep step)."""
    if not tracking_enabled():
        yield StageRun(None)
        return
    import mlflow

    run = mlflow.start_run(run_name=name, nested=True)
    handle = StageRun(run)
    if tags:
        handle.set_tags(tags)
    try:
        yield handle
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


@contextlib.contextmanager
def ui_server(store: str, port: int, host: str = "127.0.0.1", timeout: float = 90) -> Iterator[str]:
    """Run `mlflow ui` on loopback for the duration of the block; yields its base URL.

    Started with `exec` so the PID held is the server's own; on exit the server and the
    workers it started (its process group) are stopped, nothing else.
    """
    import signal
    import subprocess
    import sys
    import urllib.request

    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = f'exec "{mlflow_bin}" ui --host {host} --port {port} --backend-store-uri "{store}" --workers 1'
    server = subprocess.Popen(["bash", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://{host}:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SpikebenchError(f"mlflow ui on {url} did not start (exit {server.poll()})") from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
