"""The leaderboard's plots, drawn from the evaluated rows (`leaderboard.evaluation`).

- accuracy vs energy: one labelled marker per headline row with its 95% interval, the ANN as a
  reference line, the Pareto front of the headline rows, and the gate-level hardware energy
  beside the op-model point of the same model;
- accuracy vs T: one line per headline row's configuration;
- accuracy vs T, every configuration: one panel per method (sweeps, subsets, re-runs).

Legends sit outside the axes and no axes draws more than `MAX_SERIES` series.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leaderboard.evaluation import config_key
from spikebench.plots import plt, save
from spikebench.results import METHODS

MAX_SERIES = 8
COLOURS = dict(zip(METHODS, plt.get_cmap("tab10").colors, strict=False))


def _label(row: pd.Series, with_method: bool = True) -> str:
    config = config_key(row)
    library = "" if row.library in ("spikebench", "torch") else f" [{row.library}]"
    text = f"{row.method}{library}" if with_method else (row.library if library else "")
    return f"{text} ({config})" if config and text else (config or text or row.method)


def pareto_front(points: pd.DataFrame, energy: str = "energy_per_image_j", accuracy: str = "accuracy") -> pd.DataFrame:
    """Rows not beaten by another row with both lower energy and higher accuracy."""
    ordered = points.sort_values([energy, accuracy], ascending=[True, False])
    best, keep = -1.0, []
    for index, row in ordered.iterrows():
        if row[accuracy] > best:
            keep.append(index)
            best = row[accuracy]
    return ordered.loc[keep]


def _outside_legend(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def plot_accuracy_vs_energy(headline: pd.DataFrame, path: Path) -> None:
    """Headline rows: accuracy (with its interval) against energy per image, op model and gate level."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    spiking = headline[headline.method != "ann"]
    for _, row in headline[headline.method == "ann"].iterrows():
        ax.axhline(row.acc * 100, color="black", linestyle="--", linewidth=1, label=f"ANN ({row.acc * 100:.2f}%)")
    # labels of nearby points are staggered above and below them, so that none covers another
    for rank, (_, row) in enumerate(spiking.sort_values("energy_per_image_j").iterrows()):
        colour = COLOURS.get(row.method, "grey")
        x, y = row.energy_per_image_j * 1e6, row.acc * 100
        ax.errorbar([x], [y], yerr=[[y - row.ci_low * 100], [row.ci_high * 100 - y]], fmt="o", color=colour, capsize=3,
                    markersize=5, label=f"{row.method}, T={row.timesteps} (op model)")
        ax.annotate(row.method, (x, y), xytext=(6, (10, -14, 22, -26)[rank % 4]), textcoords="offset points", fontsize=7,
                    color=colour, arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.5},
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    if len(spiking):
        front = pareto_front(spiking, accuracy="acc")
        ax.plot(front.energy_per_image_j * 1e6, front.acc * 100, color="grey", linewidth=1, zorder=0, label="Pareto front (op model)")
    measured = spiking[spiking.hw_energy_per_image_j.notna()]
    for i, (_, row) in enumerate(measured.iterrows()):
        x_op, x_hw, y = row.energy_per_image_j * 1e6, row.hw_energy_per_image_j * 1e6, row.acc * 100
        ax.plot([x_op, x_hw], [y, y], color="black", linestyle=":", linewidth=1)
        ax.scatter([x_hw], [y], marker="*", s=110, color="black", zorder=3,
                   label=None if i else f"same model on our accelerator (gate level, {row.hw_node.split(' (')[0] or 'measured'})")
        ax.annotate(f"{x_hw:,.0f} µJ", (x_hw, y), xytext=(-10, -12), textcoords="offset points", fontsize=7)
    ax.set(xscale="log", xlabel="energy per image (µJ; op model at 45 nm, or measured where marked ★)", ylabel="test accuracy (%)",
           title="Headline rows: accuracy (95% interval, whole test split) vs energy")
    ax.grid(alpha=0.3, which="both")
    _outside_legend(ax)
    save(fig, path)


def _series(frame: pd.DataFrame) -> pd.core.groupby.DataFrameGroupBy:
    keys = frame.assign(series=[_label(r) for _, r in frame.iterrows()])
    return keys.groupby("series", sort=False)


def plot_accuracy_vs_timesteps(pooled: pd.DataFrame, headline: pd.DataFrame, path: Path) -> None:
    """One line per headline row's configuration: its accuracy at every T it was measured on the same images."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    drawn = 0
    for _, chosen in headline[headline.timesteps > 0].iterrows():
        same = pooled[(pooled.dataset == chosen.dataset) & (pooled.method == chosen.method) & (pooled.library == chosen.library)
                      & (pooled.arch == chosen.arch) & (pooled.images == chosen.images)]
        same = same[[config_key(r) == config_key(chosen) for _, r in same.iterrows()]].sort_values("timesteps")
        if drawn >= MAX_SERIES:
            break
        drawn += 1
        ax.errorbar(same.timesteps, same.acc * 100, yerr=[(same.acc - same.ci_low) * 100, (same.ci_high - same.acc) * 100],
                    marker="o", markersize=3, capsize=2, color=COLOURS.get(chosen.method, "grey"), label=_label(chosen))
    for _, row in headline[headline.method == "ann"].iterrows():
        ax.axhline(row.acc * 100, color="black", linestyle="--", linewidth=1, label=f"ANN ({row.acc * 100:.2f}%)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="timesteps T", ylabel="test accuracy (%)", title="Each method's headline configuration vs T (whole test split)")
    ax.grid(alpha=0.3)
    _outside_legend(ax)
    save(fig, path)


def plot_sweeps(pooled: pd.DataFrame, path: Path) -> None:
    """Small multiples: one panel per method, one line per configuration (library re-runs included) measured at
    several T; at most MAX_SERIES per panel (those measured on the most images)."""
    spiking = pooled[pooled.timesteps > 0]
    methods = [m for m in METHODS if m in set(spiking.method)]
    columns = 2
    rows = max(1, (len(methods) + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(15, 3.4 * rows), squeeze=False)
    for ax, method in zip(axes.flat, methods, strict=False):
        series = sorted(_series(spiking[spiking.method == method]), key=lambda item: (-item[1].images.max(), item[0]))
        for _, group in series[:MAX_SERIES]:
            group = group.sort_values("timesteps")
            images = int(group.images.min())
            ax.plot(group.timesteps, group.acc * 100, marker="o", markersize=3, label=f"{_label(group.iloc[0], False)}; {images:,} img")
        ax.set_xscale("log", base=2)
        hidden = f" ({len(series) - MAX_SERIES} more in the tables)" if len(series) > MAX_SERIES else ""
        ax.set(title=f"{method}{hidden}", xlabel="T", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle("Accuracy vs T of every configuration (each line: its own test images)")
    fig.tight_layout()
    save(fig, path)


def timesteps_data(pooled: pd.DataFrame) -> pd.DataFrame:
    """Long-format accuracy vs T, one series per method/library/configuration (DVC plots data)."""
    spiking = pooled[pooled.timesteps > 0]
    data = pd.DataFrame({"series": [_label(r) for _, r in spiking.iterrows()], "timesteps": spiking.timesteps,
                         "images": spiking.images, "accuracy": (spiking.acc * 100).round(3)})
    return data.sort_values(["series", "timesteps"])


def energy_data(headline: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, interval and op-model / gate-level energy of the headline rows (DVC plots data)."""
    return pd.DataFrame({"method": headline.method, "series": [_label(r) for _, r in headline.iterrows()],
                         "energy_uj": (headline.energy_per_image_j * 1e6).round(6),
                         "hw_energy_uj": (headline.hw_energy_per_image_j * 1e6).round(3), "accuracy": (headline.acc * 100).round(3),
                         "ci_low": (headline.ci_low * 100).round(3), "ci_high": (headline.ci_high * 100).round(3)}
                        ).sort_values(["method", "energy_uj"])
