"""MLflow tracking: one run per stage, tagged so runs can be compared in the UI.

Default backend is `sqlite:///<repo>/mlflow.db` with artifacts in `<repo>/mlartifacts`;
`MLFLOW_TRACKING_URI` overrides it. A stage that raises ends its run as FAILED with the
error recorded. Tracking can be switched off with `SPIKEBENCH_TRACKING=off`.

What every run carries, so the runs table, compare view and filters work across methods:

- tags `method`, `library`, `dataset`, `split_hash`, `dvc_stage`, `git_commit` on every stage
  run and on its child runs (a child may override `library`, e.g. parity's per-library runs);
- on a stage run that measured a model, the same headline metrics (`StageRun.log_headline`,
  from the stage's primary result row): `test_accuracy`, `timesteps`, `sops_per_image`,
  `spikes_per_image`, `macs_per_image`, `energy_per_image_uj` (45 nm op model, µJ), `test_images`,
  `weight_bits`, and `hw_energy_per_image_uj` where the row has a hardware measurement;
- a child run's sweep settings (reset, percentile, threshold scale, bits, T, ...) as params;
- the prepared split as a dataset input (name = dataset, digest = split hash);
- models logged as MLflow models (`spikebench.mlflow_models`); the selected one registered
  as `REGISTERED_MODEL` with the alias `selected`.
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
EXPERIMENT_KIND = "custom_model_development"  # mlflow 3's `mlflow.experimentKind`: the UI opens on runs, not GenAI
DESCRIPTION = ("spikebench: one run per DVC stage (`tags.dvc_stage`), sweep steps as child runs. Compare methods on "
               "`test_accuracy`, `timesteps`, `sops_per_image` and `energy_per_image_uj` (45 nm op model); filter with "
               "`tags.method = 'conversion'`. The results/*.json rows are the pipeline's record; each names its run.")
REGISTERED_MODEL = "spikebench-selected"  # the model the select stage put in silicon
REGISTERED_ALIAS = "selected"
RUN_TAGS = ("method", "library", "dataset", "split_hash", "dvc_stage", "git_commit")
_stage: StageRun | None = None  # the open stage run, whose tags its child runs inherit


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

    def __init__(self, run: Any | None, stage: str = "") -> None:
        self.run = run
        self.stage = stage
        self.tags: dict[str, str] = {}  # the tags set through this handle (child runs inherit RUN_TAGS)

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
            self.tags.update({k: str(v) for k, v in tags.items()})

    def log_headline(self, rows: list[Any]) -> dict[str, float]:
        """Log the headline metrics of the stage's primary row (see `primary_row`) and tag which row
        that is; every stage that writes result rows calls this once. Returns the metrics."""
        row = primary_row(rows, self.tags.get("library"))
        if row is None:
            return {}
        metrics = headline_metrics(row)
        self.log_metrics(metrics)
        self.set_tags({"headline_row": f"{row.library} {row.arch} T={row.timesteps} {row.weight_bits}-bit"
                                       + (f" {row.model_path}" if row.model_path else "")})
        return metrics

    def log_snn_model(self, checkpoint: str | Path, images: Any) -> Any:
        """The SNN checkpoint as an MLflow pyfunc classifier (signature, input example `images`); its ModelInfo."""
        if not self.run:
            return None
        from spikebench.mlflow_models import log_snn

        return log_snn(checkpoint, images)

    def log_torch_model(self, model: Any, images: Any) -> Any:
        """A torch classifier via `mlflow.pytorch.log_model` (signature, input example `images`); its ModelInfo."""
        if not self.run:
            return None
        from spikebench.mlflow_models import log_ann

        return log_ann(model, images)

    def register_selected(self, checkpoint: str | Path, images: Any, tags: dict[str, Any] | None = None) -> str:
        """Log the selected SNN in this run and register it as `REGISTERED_MODEL` (alias `selected`);
        the new version's number, or "" when tracking is off."""
        info = self.log_snn_model(checkpoint, images)
        if info is None:
            return ""
        import mlflow

        version = mlflow.register_model(info.model_uri, REGISTERED_MODEL, tags={k: str(v) for k, v in (tags or {}).items()})
        client = mlflow.MlflowClient()
        client.update_registered_model(REGISTERED_MODEL, description="The SNN the select stage chose for the hardware flow "
                                       "(hardware/selected.json). Predicts classes of images (N, C, H, W) in [0, 1].")
        client.set_registered_model_alias(REGISTERED_MODEL, REGISTERED_ALIAS, version.version)
        self.set_tags({"registered_model": f"{REGISTERED_MODEL}/{version.version}"})
        return str(version.version)


def primary_row(rows: list[Any], library: str | None = None) -> Any | None:
    """The row a stage run's headline metrics come from: among the rows of the stage's own library
    (all rows if none), the headline rows (all rows if none); of those the exported one (mappable or
    with a model), else the first."""
    own = [r for r in rows if r.library == library] or list(rows)
    pool = [r for r in own if r.headline] or own
    return next((r for r in pool if r.mappable or r.model_path), pool[0]) if pool else None


def headline_metrics(row: Any) -> dict[str, float]:
    """One result row as the metric names every stage run shares (energies in µJ)."""
    metrics = {"test_accuracy": row.accuracy, "timesteps": row.timesteps, "sops_per_image": row.synops_per_image,
               "spikes_per_image": row.spikes_per_image, "macs_per_image": row.macs_per_image,
               "energy_per_image_uj": row.energy_per_image_j * 1e6, "test_images": row.test_images, "weight_bits": row.weight_bits}
    if row.hw_energy_per_image_j is not None:
        metrics["hw_energy_per_image_uj"] = row.hw_energy_per_image_j * 1e6
    return {k: float(v) for k, v in metrics.items()}


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
    _describe(mlflow.set_experiment(EXPERIMENT))


def _describe(experiment: Any) -> None:
    """Mark the experiment as model development (the UI opens on its runs) and describe it, once."""
    import mlflow

    client = mlflow.MlflowClient()
    if experiment.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND:
        client.set_experiment_tag(experiment.experiment_id, "mlflow.experimentKind", EXPERIMENT_KIND)
    if not experiment.tags.get("mlflow.note.content"):
        client.set_experiment_tag(experiment.experiment_id, "mlflow.note.content", DESCRIPTION)


def _log_split(dataset: str, split_hash: str) -> None:
    """The prepared split as the run's dataset input (skipped for runs not tied to one split)."""
    if dataset in ("", "-") or split_hash in ("", "-") or "," in dataset + split_hash:
        return
    import warnings

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from spikebench.paths import PREPARED_DIR

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": two local-file source classes, both fine
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str((Path.cwd() / PREPARED_DIR).resolve()))
    mlflow.log_input(MetaDataset(source, name=dataset, digest=split_hash), context="split")


@contextlib.contextmanager
def stage_run(
    stage: str, *, method: str, library: str, dataset: str, split_hash: str, params: Any = None, enabled: bool = True
) -> Iterator[StageRun]:
    """Open the MLflow run of one pipeline stage; mark it FAILED if the body raises.

    `enabled=False` (e.g. on non-zero torchrun ranks) yields a handle that logs nothing.
    On success the run's record (run id, experiment, git commit, seconds) is written to
    reports/runs/<stage>.json, which the leaderboard links rows to.
    """
    global _stage
    if not enabled:
        yield StageRun(None, stage)
        return
    if not tracking_enabled():
        started = time.perf_counter()
        yield StageRun(None, stage)
        write_run_record(stage, None, time.perf_counter() - started)
        return
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    _connect()
    started = time.perf_counter()
    parent = os.environ.get("SPIKEBENCH_PARENT_STAGE", "")  # a stage run again by another (the `seeds` stage)
    handle = StageRun(mlflow.start_run(run_name=f"{stage} ({parent})" if parent else stage), stage)
    handle.set_tags({"method": method, "library": library, "dataset": dataset, "split_hash": split_hash,
                     "git_commit": git_commit(), "dvc_stage": stage, **({"parent_stage": parent} if parent else {})})
    if params is not None:
        handle.log_params(params)
    _log_split(dataset, split_hash)
    _stage = handle
    try:
        yield handle
    except BaseException as err:
        handle.set_tags({"error": f"{type(err).__name__}: {err}"[:5000]})
        handle.log_metrics({"stage_seconds": time.perf_counter() - started})
        mlflow.end_run(status="FAILED")
        raise
    finally:
        _stage = None
    handle.log_metrics({"stage_seconds": time.perf_counter() - started})
    mlflow.end_run(status="FINISHED")
    write_run_record(stage, handle.run, time.perf_counter() - started)


def write_run_record(stage: str, run: Any | None, seconds: float) -> None:
    """reports/runs/<stage>.json: which MLflow run produced the stage's outputs (null ids when tracking is off)."""
    from spikebench.io import atomic_write_json
    from spikebench.paths import RUNS_DIR

    atomic_write_json(RUNS_DIR / f"{stage}.json", {
        "stage": stage, "run_id": run.info.run_id if run else None, "experiment_id": run.info.experiment_id if run else None,
        "git_commit": git_commit(), "stage_seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


@contextlib.contextmanager
def child_run(name: str, params: dict[str, Any] | None = None, *, tags: dict[str, Any] | None = None) -> Iterator[StageRun]:
    """A nested run inside the open stage run (e.g. one per sweep step): `params` are its settings
    (reset, percentile, bits, T, ...), logged as MLflow params so the compare view lines runs up;
    it inherits the stage run's `RUN_TAGS`, then gets `tags`. Logs nothing outside a stage run."""
    if not tracking_enabled() or _stage is None or _stage.run is None:
        yield StageRun(None)
        return
    import mlflow

    handle = StageRun(mlflow.start_run(run_name=name, nested=True))
    handle.set_tags({**{k: v for k, v in _stage.tags.items() if k in RUN_TAGS}, **(tags or {})})
    if params:
        handle.log_params(params)
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
