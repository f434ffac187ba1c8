"""Small matplotlib helpers shared by stages (headless backend, atomic PNG writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from spikebench.io import atomic_savefig  # noqa: E402


def save(fig: Any, path: str | Path) -> None:
    atomic_savefig(fig, path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_training_curve(history: list[Any], path: str | Path, title: str) -> None:
    """Loss and accuracy per epoch of a training run."""
    epochs = [h.epoch for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h.train_loss for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="train loss", title=title)
    right.plot(epochs, [h.train_accuracy for h in history], marker="o", label="train")
    right.plot(epochs, [h.val_accuracy for h in history], marker="o", label="val")
    right.set(xlabel="epoch", ylabel="accuracy")
    right.legend()
    save(fig, path)
