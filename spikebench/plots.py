"""Matplotlib helpers and the plots stages share (headless backend, atomic PNG writes)."""

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
    """Loss and accuracy per epoch of a training run, and the same numbers beside the PNG as CSV (for `dvc plots`)."""
    from spikebench.io import atomic_write_text

    epochs = [h.epoch for h in history]
    lines = ["epoch,train_loss,train_accuracy,val_accuracy"]
    lines += [f"{h.epoch},{h.train_loss:.6f},{h.train_accuracy:.6f},{h.val_accuracy:.6f}" for h in history]
    atomic_write_text(Path(path).with_suffix(".csv"), "\n".join(lines) + "\n")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h.train_loss for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="train loss", title=title)
    right.plot(epochs, [h.train_accuracy for h in history], marker="o", label="train")
    right.plot(epochs, [h.val_accuracy for h in history], marker="o", label="val")
    right.set(xlabel="epoch", ylabel="accuracy")
    right.legend()
    save(fig, path)


def plot_accuracy_vs_timesteps(curves: dict[str, Any], ann: float, path: str | Path, title: str) -> None:
    """Accuracy against T (log2 axis) of several `TimestepEvaluation`s, with the ANN as a line.

    Solid lines for reset-by-subtraction / RMP curves, dashed for the others.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, evaluation in curves.items():
        ts = evaluation.timesteps
        style = "-" if "subtract" in label or "rmp" in label else "--"
        ax.plot(ts, [evaluation.accuracy[t] * 100 for t in ts], style, marker="o", markersize=3, label=label)
    ax.axhline(ann * 100, color="black", linewidth=1, linestyle=":", label="ANN")
    ax.set(xscale="log", xlabel="timesteps T", ylabel="test accuracy (%)", title=title)
    ax.set_xscale("log", base=2)
    ax.set_ylim(max(0.0, ann * 100 - 40), min(100.0, ann * 100 + 3))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save(fig, path)


def plot_stdp_convergence(logs: list[Any], threshold: float, path: str | Path) -> None:
    """C = mean w(1-w) against training images, one line per STDP layer (`LayerTrainingLog`s)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for log in logs:
        images, values = zip(*log.curve, strict=True)
        ax.plot(images, values, marker=".", label=f"conv{log.layer} ({log.stopped_by})")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="stop")
    ax.set(xlabel="training images", ylabel="C = mean w(1-w)", title="STDP convergence per layer")
    ax.legend()
    save(fig, path)


def plot_stdp_kernels(weight: Any, path: str | Path) -> None:
    """First-layer features: ON minus OFF weights of each map (white: ON-centre preferred)."""
    maps = (weight[:, 0] - weight[:, 1]).numpy()
    cols = min(10, len(maps))
    rows = (len(maps) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, kernel in zip(axes.flat, maps, strict=False):
        ax.imshow(kernel, cmap="gray", vmin=-1, vmax=1)
    fig.suptitle("conv1 kernels learned by STDP (ON - OFF)")
    save(fig, path)


def plot_stdp_accuracy(results: dict[str, float], path: str | Path) -> None:
    """Test accuracy per STDP readout configuration (the random-weight control in grey)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = list(results)
    ax.bar(labels, [results[k] * 100 for k in labels], color=["tab:blue" if "random" not in k else "tab:grey" for k in labels])
    for i, k in enumerate(labels):
        ax.text(i, results[k] * 100 + 0.5, f"{results[k] * 100:.1f}", ha="center", fontsize=8)
    ax.set(ylabel="test accuracy (%)", title="STDP features + linear SVM", ylim=(0, 100))
    save(fig, path)
