"""The leaderboard's plots: accuracy vs T per series, accuracy vs energy with the Pareto front."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leaderboard.tables import config_label
from spikebench.plots import plt, save
from spikebench.results import METHODS


def _series_label(row: pd.Series) -> str:
    label = f"{row.method}/{row.library}"
    config = config_label(row)
    return f"{label} ({config})" if config else label


def plot_accuracy_vs_timesteps(frame: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    spiking = frame[frame.timesteps > 0]
    labels = pd.Series([_series_label(r) for _, r in spiking.iterrows()], index=spiking.index, dtype=str)
    for label, group in spiking.groupby(labels, sort=True):
        group = group.sort_values("timesteps")
        ax.plot(group.timesteps, group.accuracy * 100, marker="o", markersize=3, label=label)
    for _, row in frame[frame.method == "ann"].iterrows():
        ax.axhline(row.accuracy * 100, color="black", linestyle="--", linewidth=1, label=f"ANN {row.dataset}")
    ax.set(xscale="log", xlabel="timesteps T", ylabel="test accuracy (%)", title="Accuracy vs timesteps")
    if len(spiking):
        ax.set_xscale("log", base=2)
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3)
    save(fig, path)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Rows not beaten by another row with both lower energy and higher accuracy."""
    ordered = points.sort_values(["energy_per_image_j", "accuracy"], ascending=[True, False])
    best, keep = -1.0, []
    for index, row in ordered.iterrows():
        if row.accuracy > best:
            keep.append(index)
            best = row.accuracy
    return ordered.loc[keep]


def plot_accuracy_vs_energy(frame: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    points = frame[(frame.energy_per_image_j > 0) & (frame.library != "gate")]
    gate = frame[frame.hw_energy_per_image_j.notna()]  # measured at 180 nm: drawn apart, with its 45 nm-scaled energy
    for method in [m for m in METHODS if m in set(points.method)]:
        group = points[points.method == method]
        ax.scatter(group.energy_per_image_j * 1e6, group.accuracy * 100, s=14, label=method)
    if len(points):
        front = pareto_front(points)
        ax.plot(front.energy_per_image_j * 1e6, front.accuracy * 100, color="grey", linewidth=1, label="Pareto front")
    for i, (_, row) in enumerate(gate.iterrows()):
        scaled = (row.extra or {}).get("energy_per_image_j_45nm", float("nan")) * 1e6
        ax.plot([row.hw_energy_per_image_j * 1e6, scaled], [row.accuracy * 100] * 2, color="black", linestyle=":", linewidth=1)
        ax.scatter([row.hw_energy_per_image_j * 1e6], [row.accuracy * 100], marker="*", s=60, facecolors="none", edgecolors="black",
                   label=None if i else "hardware, gate level (180 nm measured)")
        ax.scatter([scaled], [row.accuracy * 100], marker="*", s=80, color="black", label=None if i else "hardware, gate level (scaled to 45 nm)")
    ax.set(xscale="log", xlabel="energy per image (µJ, 45 nm op model)", ylabel="test accuracy (%)", title="Accuracy vs energy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, path)




def timesteps_data(frame: pd.DataFrame) -> pd.DataFrame:
    """Long-format accuracy vs T, one series per method/library/configuration (DVC plots data)."""
    spiking = frame[frame.timesteps > 0]
    data = pd.DataFrame({"series": [_series_label(r) for _, r in spiking.iterrows()], "timesteps": spiking.timesteps,
                         "accuracy": (spiking.accuracy * 100).round(3)})
    return data.sort_values(["series", "timesteps"])


def energy_data(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy vs op-model energy of every row with an energy (DVC plots data)."""
    points = frame[frame.energy_per_image_j > 0]
    data = pd.DataFrame({"method": points.method, "series": [_series_label(r) for _, r in points.iterrows()],
                         "energy_uj": (points.energy_per_image_j * 1e6).round(6), "accuracy": (points.accuracy * 100).round(3)})
    return data.sort_values(["method", "energy_uj"])
