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

METHODS = ("ann", "conversion", "rmp", "stdp", "st_pruning", "attention_pruning", "hardware")
LIBRARIES = ("spikebench", "snntorch", "norse", "spikingjelly", "brian2", "sklearn", "rtl", "gate", "torch")
VERSIONED_PACKAGES = ("torch", "numpy", "snntorch", "norse", "spikingjelly", "brian2", "scikit-learn", "spikebench")


@dataclass
class ResultRow:
    """One measured configuration of one method on one dataset split.

    Energies use the 45 nm op model (E_MAC = 4.6 pJ, E_AC = 0.9 pJ); an ANN row carries
    its MACs and energy so every SNN row can be compared with it. `timesteps` is 0 for
    non-spiking rows.
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
    git_commit: str = ""
    mlflow_run_id: str = ""
    mlflow_experiment_id: str = ""
    library_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SpikebenchError(f"result row: unknown method {self.method!r}; one of {', '.join(METHODS)}")
        if self.library not in LIBRARIES:
            raise SpikebenchError(f"result row: unknown library {self.library!r}; one of {', '.join(LIBRARIES)}")
        if not 0.0 <= self.accuracy <= 1.0:
            raise SpikebenchError(f"result row: accuracy {self.accuracy} outside [0, 1]")
        if not self.git_commit:
            self.git_commit = git_commit()
        if not self.library_versions:
            self.library_versions = library_versions()


@functools.cache
def git_commit() -> str:
    """HEAD of the repository, with `+dirty` when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True).stdout
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


def write_rows(path: str | Path, rows: list[ResultRow]) -> None:
    atomic_write_json(path, {"rows": [dataclasses.asdict(r) for r in rows]})


def read_rows(path: str | Path) -> list[ResultRow]:
    path = Path(path)
    try:
        blob = json.loads(path.read_text())
        return [ResultRow(**row) for row in blob["rows"]]
    except FileNotFoundError:
        raise SpikebenchError(f"{path}: results file missing; run its stage (dvc repro)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise SpikebenchError(f"{path}: not a results file with the row schema ({err}); re-run its stage") from None


def rows_frame(paths: list[str | Path]) -> pd.DataFrame:
    """All rows of the given results files as one DataFrame."""
    frames = [pd.DataFrame([dataclasses.asdict(r) for r in read_rows(p)]) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=[f.name for f in dataclasses.fields(ResultRow)])
    return pd.concat(frames, ignore_index=True)
