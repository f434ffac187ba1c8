"""Resumable training: the whole state of a training loop in one checkpoint file.

Weights, optimizer, learning-rate schedule, the seeded batch-order generator, the
per-epoch history and any loop-specific state (e.g. sparsity masks) are saved (atomically) after every epoch; a rerun after an
interruption loads them and continues with the next epoch, so it ends with the same
weights as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from spikebench.errors import ModelError
from spikebench.io import load_checkpoint, save_checkpoint


class Stateful(Protocol):
    """Loop state beyond weights and optimizer (e.g. sparsity masks) that a resumed run needs."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def save_training_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator, history: list[dict],
                        extra: Stateful | None = None) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state()}
    if extra is not None:
        state["extra"] = extra.state_dict()
    save_checkpoint(path, state, {"scheduler": scheduler.state_dict(), "history": history})


def load_training_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator,
                        extra: Stateful | None = None) -> list[dict]:
    """Restore a state saved by `save_training_state` in place; returns the epochs' history so far."""
    state, meta = load_checkpoint(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(meta["scheduler"])
    generator.set_state(state["generator"])
    if extra is not None:
        if "extra" not in state:
            raise ModelError(f"{path}: a training state without the loop's extra state (e.g. masks); delete it to start afresh")
        extra.load_state_dict(state["extra"])
    return list(meta["history"])


def resume_directory(stage: str, *keys: object, inputs: Iterable[str | Path] = ()) -> Path:
    """checkpoints/<stage>-<hash>: a run's resumable states, keyed by what determines them
    (params, split hash, seed, and the contents of the `inputs` files it starts from, e.g. the
    ANN), so a changed configuration or a retrained input never resumes a stale state."""
    contents = [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in inputs]
    digest = hashlib.sha256(json.dumps([str(k) for k in keys] + contents, sort_keys=True).encode()).hexdigest()[:12]
    return Path("checkpoints") / f"{stage}-{digest}"


def discard_resume_directory(path: Path) -> None:
    """Delete a finished run's states. They exist to resume an interrupted run; kept, they would
    let a rerun after a code change reload old weights instead of training with the new code."""
    shutil.rmtree(path, ignore_errors=True)
