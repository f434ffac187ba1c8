"""Atomic file output and model checkpoints.

Every output is written to a temporary file in the same directory and renamed into
place, so an interrupted stage never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from spikebench.errors import ModelError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (umask applied)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON with sorted keys and a trailing newline, so diffs stay readable."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_savefig(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (the format follows the file suffix)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buffer.getvalue())


def save_checkpoint(path: str | os.PathLike, state_dict: dict, meta: dict) -> None:
    """Save a state dict plus JSON-able metadata in one file loadable with weights_only."""
    import io

    buffer = io.BytesIO()
    torch.save({"state_dict": state_dict, "meta": meta}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """Load a checkpoint written by `save_checkpoint` (weights only, no pickled code)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found; run the stage that writes it (dvc repro)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise ModelError(f"{path}: not a readable spikebench checkpoint ({type(err).__name__}); re-run its stage") from None
    if not isinstance(blob, dict) or "state_dict" not in blob or "meta" not in blob:
        raise ModelError(f"{path}: not a spikebench checkpoint (no state_dict/meta); re-run its stage")
    return blob["state_dict"], blob["meta"]
