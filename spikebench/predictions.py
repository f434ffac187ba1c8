"""Per-image predictions: the class a result row predicted for each test image it evaluated.

Every result row with an accuracy has one file, `reports/predictions/<stage>/<row id>.npz`,
holding the test-split indices of the images it evaluated (int32), the predicted classes
(int8) and the split hash. The leaderboard computes accuracies, confidence intervals and
paired tests against the ANN from these files, never from copied numbers.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikebench.errors import SpikebenchError
from spikebench.io import atomic_write_bytes


@dataclass(frozen=True)
class Predictions:
    """Predicted classes of a row on the test images `indices` (positions in the test split)."""

    indices: np.ndarray  # (n,) int32
    classes: np.ndarray  # (n,) int8

    @classmethod
    def of(cls, classes: torch.Tensor | np.ndarray, indices: torch.Tensor | np.ndarray | None = None) -> Predictions:
        """From predicted classes of images `indices` (default: the first len(classes) images of the split)."""
        classes = np.asarray(classes.cpu() if isinstance(classes, torch.Tensor) else classes).reshape(-1)
        if indices is None:
            indices = np.arange(len(classes))
        indices = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices).reshape(-1)
        if len(indices) != len(classes):
            raise SpikebenchError(f"predictions: {len(classes)} classes for {len(indices)} image indices")
        if len(classes) and (classes.min() < 0 or classes.max() > np.iinfo(np.int8).max):
            raise SpikebenchError(f"predictions: classes must be in [0, 127], got [{classes.min()}, {classes.max()}]")
        return cls(indices.astype(np.int32), classes.astype(np.int8))

    def __len__(self) -> int:
        return len(self.classes)

    def correct(self, labels: np.ndarray) -> np.ndarray:
        """Bool per image: the prediction equals the label (`labels` indexed by test-split position)."""
        return self.classes == np.asarray(labels)[self.indices]

    def save(self, path: Path, split_hash: str) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, indices=self.indices, classes=self.classes, split_hash=np.array(split_hash))
        atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: str | Path, *, images: int, split_hash: str, row_source: str) -> Predictions:
    """The predictions file of a row from `row_source`, checked against the row's image count and split."""
    path = Path(path)
    try:
        with np.load(path) as blob:
            found = Predictions(blob["indices"].astype(np.int32), blob["classes"].astype(np.int8))
            found_split = str(blob["split_hash"])
    except FileNotFoundError:
        raise SpikebenchError(f"{row_source}: its predictions file {path} is missing; re-run the stage that wrote the row") from None
    except (OSError, KeyError, ValueError) as err:
        raise SpikebenchError(f"{row_source}: its predictions file {path} is unreadable ({err}); re-run the stage") from None
    if len(found) != images:
        raise SpikebenchError(f"{row_source}: the row is over {images:,} test images but its predictions file {path} holds "
                              f"{len(found):,}; re-run the stage that wrote both")
    if found_split != split_hash:
        raise SpikebenchError(f"{row_source}: the row is on split {split_hash} but its predictions file {path} on {found_split}; "
                              "re-run the stage that wrote both")
    return found


def row_file_name(*parts: object) -> str:
    """A file name from a row's identifying parts: lower-case words joined by '_', no path characters."""
    text = "_".join(str(p) for p in parts if p not in ("", None))
    return re.sub(r"[^a-z0-9.=-]+", "_", text.lower()).strip("_")[:150]
