"""The one schema for every row of `results/*.json`.

Each stage writes `results/<stage>.json` as `{"rows": [row, ...]}` (a DVC metric), so
the leaderboard is a single `pandas.concat` and `dvc metrics diff` compares runs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spikebench.errors import SpikebenchError
from spikebench.io import atomic_write_json
from spikebench.paths import PREDICTIONS_DIR
from spikebench.predictions import Predictions, row_file_name

METHODS = ("ann", "conversion", "rmp", "stdp", "st_pruning", "attention_pruning", "hardware")
LIBRARIES = ("spikebench", "snntorch", "norse", "spikingjelly", "brian2", "sklearn", "rtl", "gate", "torch")
VERSIONED_PACKAGES = ("torch", "numpy", "snntorch", "norse", "spikingjelly", "brian2", "scikit-learn", "spikebench")


# the `extra` keys that name a row's configuration (file names of its predictions, the leaderboard's config column)
CONFIG_KEYS = ("config", "step", "reset", "percentile", "threshold_scale", "mode", "density", "attention", "bits", "pooling", "control")

ENERGY_MODEL = "op_45nm"  # what `energy_per_image_j` means in every row: spikebench.energy's op model


@dataclass
class ResultRow:
    """One measured configuration of one method on one dataset split.

    `energy_per_image_j` is the 45 nm op model in every row (E_MAC = 4.6 pJ,
    E_AC = 0.9 pJ, memory ignored; `energy_model` names it); a hardware measurement goes
    in the `hw_*` fields, never in that column. `params` / `nonzero_params` count the
    weights and biases of the synaptic layers (`spikebench.energy.count_params`).
    `timesteps` is 0 for non-spiking rows; `test_images` is how many test images the
    accuracy is over. The typed fields after `seed` are what other stages depend on:
    `headline` (shown in the leaderboard's main table), `mappable` and `model_path`
    (a model the hardware stages can load).
    """

    method: str
    library: str
    dataset: str
    split_hash: str
    arch: str
    timesteps: int
    accuracy: float
    ann_accuracy: float | None
    spikes_per_image: float
    synops_per_image: float
    macs_per_image: float
    energy_per_image_j: float
    params: int
    nonzero_params: int
    weight_bits: int
    seed: int
    test_images: int
    headline: bool = True
    mappable: bool = False
    model_path: str = ""
    energy_model: str = ENERGY_MODEL
    hw_energy_per_image_j: float | None = None  # measured on our accelerator (see hw_node)
    hw_node: str = ""                            # process node of the hw_* figures, e.g. "180 nm (OSU 0.18 um)"
    hw_cycles_per_image: float | None = None
    hw_clock_mhz: float | None = None            # the nominal clock hw_* latencies are given at (hardware.clock_mhz)
    stage: str = ""                              # the DVC stage that wrote the row; its MLflow run is in reports/runs/<stage>.json
    predictions_file: str = ""                   # reports/predictions/<results name>/<row>.npz (spikebench.predictions)
    git_commit: str = ""
    library_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # in memory only: the class predicted for each evaluated test image; write_rows saves it as `predictions_file`
    predictions: Predictions | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SpikebenchError(f"result row: unknown method {self.method!r}; one of {', '.join(METHODS)}")
        if self.library not in LIBRARIES:
            raise SpikebenchError(f"result row: unknown library {self.library!r}; one of {', '.join(LIBRARIES)}")
        if not 0.0 <= self.accuracy <= 1.0:
            raise SpikebenchError(f"result row: accuracy {self.accuracy} outside [0, 1]")
        if self.test_images < 1:
            raise SpikebenchError(f"result row: test_images must be >= 1, got {self.test_images}")
        if self.predictions is not None and len(self.predictions) != self.test_images:
            raise SpikebenchError(f"result row {self.method}/{self.library}: {len(self.predictions):,} predictions for "
                                  f"test_images={self.test_images:,}")
        if self.mappable and not self.model_path:
            raise SpikebenchError("result row: a mappable row needs its model_path")
        if not self.git_commit:
            self.git_commit = git_commit()
        if not self.library_versions:
            self.library_versions = library_versions()


@dataclass(frozen=True)
class RowContext:
    """What every row of one stage run shares: the split, the seed and the stage.

    `row(...)` fills these in, so a stage writes only what it measured. Rows carry no MLflow
    run id or timing: other stages depend on results files, and a value that changes from
    run to run would re-run them for nothing. The stage's run is in reports/runs/<stage>.json.
    """

    dataset: str
    split_hash: str
    seed: int
    stage: str = ""

    @classmethod
    def of(cls, data: Any, seed: int, run: Any = None) -> RowContext:
        """From a `SplitData` (or anything with dataset/split_hash) and a `StageRun` (or None)."""
        return cls(data.dataset, data.split_hash, seed, getattr(run, "stage", ""))

    def row(self, method: str, library: str, arch: str, *, timesteps: int, accuracy: float, test_images: int,
            ann_accuracy: float | None, ops: Any = None, params: tuple[int, int], weight_bits: int, **fields: Any) -> ResultRow:
        """One row; `ops` is a `SpikingMetrics`-like object (spikes, synops, macs, energy_j) or None for MAC-only rows.

        Pass `predictions=` (a `Predictions` of the `test_images` evaluated) with every measured accuracy.

        `fields` are the remaining typed fields (headline, mappable, model_path, macs_per_image for
        ANN rows, extra, ...).
        """
        if ops is not None:
            fields = {"spikes_per_image": ops.spikes, "synops_per_image": ops.synops, "macs_per_image": ops.macs,
                      "energy_per_image_j": ops.energy_j, **fields}
        else:
            from spikebench.energy import energy_joules

            macs = float(fields.pop("macs_per_image", 0.0))
            fields = {"spikes_per_image": 0.0, "synops_per_image": 0.0, "macs_per_image": macs,
                      "energy_per_image_j": energy_joules(macs, 0), **fields}
        return ResultRow(method=method, library=library, dataset=self.dataset, split_hash=self.split_hash, arch=arch,
                         timesteps=timesteps, accuracy=accuracy, ann_accuracy=ann_accuracy, params=params[0], nonzero_params=params[1],
                         weight_bits=weight_bits, seed=self.seed, test_images=test_images, stage=self.stage, **fields)


# What the pipeline itself rewrites while it runs: a change there does not make the code dirty.
PIPELINE_OUTPUTS = ("dvc.lock", "results", "reports", "metrics", "leaderboard/LEADERBOARD.md", "leaderboard/leaderboard.csv",
                    "leaderboard/plots", "hardware/selected.json")


@functools.cache
def git_commit() -> str:
    """HEAD of the repository, with `+dirty` when tracked files other than pipeline outputs differ from it."""
    excluded = [f":(exclude){path}" for path in PIPELINE_OUTPUTS]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


@functools.cache
def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def row_dict(row: ResultRow) -> dict[str, Any]:
    """The row as stored in results/*.json (the in-memory predictions are in their own file)."""
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name != "predictions"}


def predictions_dir(results_path: str | Path) -> Path:
    """reports/predictions/<name>/ beside the repository's results/<name>.json."""
    results_path = Path(results_path)
    return results_path.parent.parent / PREDICTIONS_DIR / results_path.stem


def row_name(row: ResultRow) -> str:
    """What tells a row apart from the others of its stage, as a file name."""
    config = [f"{k}={row.extra[k]}" for k in CONFIG_KEYS if k in row.extra]
    return row_file_name(row.method, row.library, row.arch, *config, f"T{row.timesteps}", f"seed{row.seed}")


def write_predictions(results_path: str | Path, rows: list[ResultRow]) -> None:
    """Save each row's in-memory predictions as reports/predictions/<name>/<row>.npz and record the file in the row;
    files of earlier runs that no row names any more are removed."""
    directory, written = predictions_dir(results_path), set()
    directory.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if row.predictions is None:
            continue
        name, suffix = row_name(row), 1
        while f"{name}.npz" in written:  # two rows that differ only outside the config keys
            suffix += 1
            name = f"{row_name(row)}-{suffix}"
        row.predictions.save(directory / f"{name}.npz", row.split_hash)
        row.predictions_file = str(directory / f"{name}.npz")
        written.add(f"{name}.npz")
    for stale in directory.glob("*.npz"):
        if stale.name not in written:
            stale.unlink()
    # the folder is never empty (git keeps no empty folder, and DVC tracks it as an output)
    atomic_write_json(directory / "index.json", {"results": Path(results_path).name, "files": sorted(written)})


def write_rows(path: str | Path, rows: list[ResultRow]) -> None:
    """The rows to `path` (results/<name>.json), their predictions to reports/predictions/<name>/ and their
    headline numbers to metrics/<name>.json (DVC metrics)."""
    write_predictions(path, rows)
    atomic_write_json(path, {"rows": [row_dict(r) for r in rows]})
    atomic_write_json(metrics_path(path), headline_metrics(rows))


def metrics_path(results_path: str | Path) -> Path:
    """metrics/<name>.json beside the repository's results/<name>.json (same parent of `results/`)."""
    results_path = Path(results_path)
    return results_path.parent.parent / "metrics" / results_path.name


def primary_row(rows: list[ResultRow]) -> ResultRow | None:
    """The row a stage is summarised by: its exported (mappable) headline row, else its first headline row."""
    headline = [r for r in rows if r.headline] or rows
    exported = [r for r in headline if r.mappable]
    return (exported or headline or [None])[0]


def headline_metrics(rows: list[ResultRow]) -> dict[str, float | int]:
    """A flat, short summary of a stage's primary row for `dvc metrics show/diff` and `dvc exp show`.

    accuracy in percent, T, SOPs per image, energy per image in µJ (45 nm op model),
    hw_energy_uj where the accelerator measured one, compression where the method prunes.
    No timings and no run ids: metrics change only when results do.
    """
    row = primary_row(rows)
    if row is None:
        return {}
    out: dict[str, float | int] = {"accuracy": round(row.accuracy * 100, 2), "test_images": row.test_images}
    if row.timesteps:
        out |= {"T": row.timesteps, "sops": round(row.synops_per_image)}
    out["energy_uj"] = round(row.energy_per_image_j * 1e6, 4)
    if row.hw_energy_per_image_j is not None:
        out["hw_energy_uj"] = round(row.hw_energy_per_image_j * 1e6, 3)
    if "compression" in row.extra:
        out["compression"] = row.extra["compression"]
    return out


def read_rows(path: str | Path) -> list[ResultRow]:
    path = Path(path)
    try:
        blob = json.loads(path.read_text())
        return [ResultRow(**row) for row in blob["rows"]]
    except FileNotFoundError:
        raise SpikebenchError(f"{path}: results file missing; run its stage (dvc repro)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise SpikebenchError(f"{path}: not a results file with the row schema ({err}); re-run its stage") from None


@dataclass(frozen=True)
class Reference:
    """The unpruned baseline ANN's row: what every SNN row is compared with."""

    accuracy: float
    energy_j: float
    params: int
    arch: str


def load_reference(path: str | Path, dataset: str, split_hash: str) -> Reference:
    """The ANN row of `path` (results/baseline.json) for this dataset, checked against the split."""
    from spikebench.data import check_split_hash

    rows = [r for r in read_rows(path) if r.method == "ann" and r.dataset == dataset]
    if not rows:
        raise SpikebenchError(f"{path}: no ANN row for {dataset}; run the baseline stage (dvc repro baseline)")
    check_split_hash(split_hash, rows[0].split_hash, str(path))
    return Reference(rows[0].accuracy, rows[0].energy_per_image_j, rows[0].params, rows[0].arch)


def rows_frame(paths: list[str | Path]) -> pd.DataFrame:
    """All rows of the given results files as one DataFrame."""
    frames = [pd.DataFrame([{**row_dict(r), "results_file": str(p)} for r in read_rows(p)]) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=[*(f.name for f in dataclasses.fields(ResultRow) if f.name != "predictions"), "results_file"])
    return pd.concat(frames, ignore_index=True)
