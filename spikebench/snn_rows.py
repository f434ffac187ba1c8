"""Result rows of a converted SNN evaluated at every T (the conversion-style stages).

One `TimestepEvaluation` (a single simulation read at T = 1, 2, 4, ...) gives one row per
evaluated T, built through `RowContext.row`: the accuracy over the images that reached T
(`test_images`), the per-image predictions it is computed from (by test-split position), the
ANN's accuracy on the same images, the op counts and energy at T.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import torch
from torch import nn

from spikebench.convert import TimestepEvaluation
from spikebench.energy import count_params
from spikebench.results import ResultRow, RowContext
from spikebench.spiking import SpikingNetwork
from spikebench.training import accuracy

HEADLINE_TIMESTEPS = (32, 64)  # with the run's T_max: the T a main configuration shows in the leaderboard


def ann_accuracy_on(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: set[int]) -> dict[int, float]:
    """The ANN's accuracy on the first `n` images of (x, y), for each n in `sizes`: the `ann_accuracy`
    of the SNN rows measured on those same images."""
    return {n: accuracy(model, (x[:n], y[:n])) for n in sizes}


def headline_timesteps(evaluation: TimestepEvaluation, t_max: int) -> set[int]:
    """The evaluated T of a main configuration that enter the leaderboard's headline table."""
    return {t for t in (*HEADLINE_TIMESTEPS, t_max) if t in evaluation.timesteps}


def snn_rows(context: RowContext, method: str, net: SpikingNetwork, evaluation: TimestepEvaluation, arch: str,
             ann_accuracy: dict[int, float], *, extra: dict, headline: Collection[int] = (),
             model_path: str | Path = "", exported_timesteps: int | None = None) -> list[ResultRow]:
    """One row per evaluated T; `ann_accuracy[n]` is the ANN on the first n images (those the row is over).

    The row at `exported_timesteps` is the mappable one pointing at `model_path` (the saved network).
    Each row carries `evaluation.predictions_at(T)`: the images that reached T, as in its accuracy.
    """
    params = count_params(net)
    rows = []
    for t in evaluation.timesteps:
        metrics, images = evaluation.metrics[t], evaluation.images[t]
        exported = bool(model_path) and t == exported_timesteps
        rows.append(context.row(
            method, "spikebench", arch, timesteps=t, accuracy=evaluation.accuracy[t], test_images=images,
            ann_accuracy=ann_accuracy[images], ops=metrics, params=params, weight_bits=32, headline=t in headline,
            mappable=exported, model_path=str(model_path) if exported else "", extra={**extra, **metrics.as_extra()},
            predictions=evaluation.predictions_at(t),
        ))
    return rows


def log_curve(run, evaluation: TimestepEvaluation, prefix: str = "", synops: bool = False) -> None:
    """Log the accuracy (and SOPs) at every evaluated T as MLflow metrics stepped by T."""
    for t in evaluation.timesteps:
        metrics = {f"{prefix}accuracy": evaluation.accuracy[t]}
        if synops:
            metrics[f"{prefix}synops"] = evaluation.metrics[t].synops
        run.log_metrics(metrics, step=t)

