"""Every row's accuracy, 95% interval and paired Δ against the ANN, recomputed from its predictions.

`evaluate_rows` joins the result rows with their prediction files and the test labels; the
tables and plots read only the columns it adds, never a row's copied `accuracy`.
`headline_rows` picks one row per method by the rule in params.yaml (`leaderboard.headline`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leaderboard.statistics import mcnemar_exact, paired_comparison, wilson_interval
from spikebench.errors import SpikebenchError
from spikebench.params import constraint
from spikebench.predictions import Predictions, load_predictions
from spikebench.results import CONFIG_KEYS

# Libraries whose rows re-run another method's model (parity checks), never a method's own result.
RERUN_LIBRARIES = ("snntorch", "norse", "spikingjelly", "brian2")
HEADLINE_RULES = ("min_energy_within_gap", "max_accuracy")


@dataclass(frozen=True)
class LeaderboardParams:
    """params.yaml `leaderboard`: the publish stage's section (also read by experiments/seeds_report.py)."""

    results: list[str] = constraint(nonempty=True)
    headline_rule: str = constraint(choices=HEADLINE_RULES)  # how the headline table picks one row per method
    headline_gap: float = constraint(min=0.0, max=1.0)       # accuracy below the ANN allowed, as a fraction


def describe_rule(rule: str, gap: float) -> str:
    if rule == "max_accuracy":
        return "each method's most accurate headline candidate"
    return f"each method's lowest-energy (op model) headline candidate within {gap * 100:g} pp of the ANN, else its most accurate"




def config_key(row: pd.Series) -> str:
    """The configuration a row measures, without T and seed (rows that differ only in seed are one configuration)."""
    extra = row["extra"] or {}
    return ", ".join(f"{k}={extra[k]}" for k in CONFIG_KEYS if k in extra)


def _row_source(row: pd.Series) -> str:
    return f"{row.results_file} (row {row.method}/{row.library}, {config_key(row) or 'no config'}, T={row.timesteps})"


def load_row_predictions(row: pd.Series) -> Predictions:
    if not row.predictions_file:
        raise SpikebenchError(f"{_row_source(row)}: the row has no predictions file; re-run the stage that wrote it")
    return load_predictions(row.predictions_file, images=int(row.test_images), split_hash=row.split_hash, row_source=_row_source(row))


@dataclass(frozen=True)
class Labels:
    """The test labels of one dataset split, by position in the split."""

    dataset: str
    split_hash: str
    labels: np.ndarray


def _ann_predictions(frame: pd.DataFrame, predictions: dict[int, Predictions], dataset: str) -> dict[int, Predictions]:
    """seed -> the ANN's predictions on the whole split (the baseline of that seed)."""
    anns = frame[(frame.method == "ann") & (frame.dataset == dataset)]
    return {int(row.seed): predictions[index] for index, row in anns.iterrows()}


def evaluate_rows(frame: pd.DataFrame, labels: list[Labels]) -> pd.DataFrame:
    """`frame` with correct, images, acc, ci_low, ci_high, ann_acc_same, delta_pp, p_value, only_row, only_ann.

    Δ and p compare each row with the ANN of the same seed (else the first seed's ANN) on exactly
    the images the row evaluated (exact McNemar test on the discordant images).
    """
    by_split = {(lab.dataset, lab.split_hash): lab.labels for lab in labels}
    predictions: dict[int, Predictions] = {}
    for index, row in frame.iterrows():
        if (row.dataset, row.split_hash) not in by_split:
            raise SpikebenchError(f"{_row_source(row)}: split {row.split_hash} of {row.dataset} is not the prepared split "
                                  f"({', '.join(f'{d} {h}' for d, h in by_split) or 'none'}); re-run the pipeline on one split")
        predictions[index] = load_row_predictions(row)
    anns_by_dataset = {dataset: _ann_predictions(frame, predictions, dataset) for dataset in frame.dataset.unique()}
    out = []
    for index, row in frame.iterrows():
        truth = by_split[(row.dataset, row.split_hash)]
        found = predictions[index]
        correct = found.correct(truth)
        interval = wilson_interval(int(correct.sum()), len(correct))
        values = {"correct": int(correct.sum()), "images": len(correct), "acc": float(correct.mean()),
                  "ci_low": interval.low, "ci_high": interval.high, "ann_acc_same": np.nan, "delta_pp": np.nan,
                  "p_value": np.nan, "only_row": np.nan, "only_ann": np.nan}
        anns = anns_by_dataset[row.dataset]
        ann = anns.get(int(row.seed)) or (next(iter(anns.values())) if anns else None)
        if ann is not None and row.method != "ann":
            ann_correct = _on_images(ann, found.indices, truth, _row_source(row))
            paired = paired_comparison(correct, ann_correct)
            values |= {"ann_acc_same": float(ann_correct.mean()), "delta_pp": paired.delta * 100, "p_value": paired.p_value,
                       "only_row": paired.only_a, "only_ann": paired.only_b}
        out.append(values)
    return pd.concat([frame, pd.DataFrame(out, index=frame.index)], axis=1)


def _on_images(ann: Predictions, indices: np.ndarray, truth: np.ndarray, source: str) -> np.ndarray:
    """The ANN's correctness on the images `indices`, in that order."""
    position = np.full(len(truth), -1, dtype=np.int64)
    position[ann.indices] = np.arange(len(ann.indices))
    where = position[indices]
    if (where < 0).any():
        raise SpikebenchError(f"{source}: {int((where < 0).sum())} of its images have no ANN prediction; re-run the baseline stage")
    return ann.classes[where] == truth[indices]


def is_own_result(frame: pd.DataFrame) -> pd.Series:
    """Rows that are a method's own result (not a re-run of its model in another library)."""
    return ~frame.library.isin(RERUN_LIBRARIES)


def seed_groups(frame: pd.DataFrame) -> pd.core.groupby.DataFrameGroupBy:
    """Rows that measure one configuration at one T, over seeds. The architecture is not part of the key: a
    seed may prune to other widths (st_pruning). Rows of one seed that the config keys do not tell apart stay
    separate configurations (`occurrence`, in the order the stage wrote them), so a seed is never counted twice."""
    keys = ["dataset", "method", "library", "config", "timesteps"]
    frame = frame.assign(config=[config_key(r) for _, r in frame.iterrows()])
    frame = frame.assign(occurrence=frame.groupby([*keys, "seed"], sort=False).cumcount())
    return frame.groupby([*keys, "occurrence"], sort=False)


def pooled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and T: the first seed's fields, accuracy and interval pooled over every seed's
    images, and `seed_mean`, `seed_sd`, `seeds` (the spread of the per-seed accuracies)."""
    rows = []
    for _, group in seed_groups(frame):
        first = group.sort_values("seed").iloc[0].copy()
        correct, images = int(group.correct.sum()), int(group.images.sum())
        interval = wilson_interval(correct, images)
        first["acc"], first["ci_low"], first["ci_high"], first["images"] = correct / images, interval.low, interval.high, images
        first["seeds"] = len(group)
        first["seed_mean"] = float(group.acc.mean())
        first["seed_sd"] = float(group.acc.std(ddof=1)) if len(group) > 1 else np.nan
        if group.delta_pp.notna().all() and len(group) > 1:  # the paired Δ of the pooled images
            only_row, only_ann = int(group.only_row.sum()), int(group.only_ann.sum())
            first["delta_pp"] = (only_row - only_ann) / images * 100
            first["p_value"] = mcnemar_exact(only_row, only_ann)
            first["ann_acc_same"] = float((group.ann_acc_same * group.images).sum() / images)
        rows.append(first)
    return pd.DataFrame(rows)


def headline_rows(pooled: pd.DataFrame, rule: str, gap: float) -> pd.DataFrame:
    """One row per method (and own library) and dataset of `pooled` (`pooled_rows`): among the rows the stages flagged as headline
    candidates on the whole test split, the lowest op-model energy within `gap` of the ANN
    (`min_energy_within_gap`; the most accurate if none is) or the most accurate (`max_accuracy`)."""
    if rule not in HEADLINE_RULES:
        raise SpikebenchError(f"params.yaml: leaderboard.headline.rule {rule!r} must be one of {', '.join(HEADLINE_RULES)}")
    chosen = []
    for _, group in pooled.groupby("dataset", sort=True):
        whole = int(group.test_images.max())  # the whole test split: the most images any row of one seed was scored on
        ann = float(group[group.method == "ann"].acc.max()) if (group.method == "ann").any() else np.nan
        candidates = group[group.headline.astype(bool) & is_own_result(group) & (group.test_images >= whole)]
        for _, method_rows in candidates.groupby(["method", "library"], sort=False):
            if rule == "min_energy_within_gap" and method_rows.method.iloc[0] != "ann":
                close = method_rows[method_rows.acc >= ann - gap]
                if len(close):
                    chosen.append(close.sort_values(["energy_per_image_j", "acc"], ascending=[True, False]).iloc[0])
                    continue
            chosen.append(method_rows.sort_values(["acc", "energy_per_image_j"], ascending=[False, True]).iloc[0])
    return pd.DataFrame(chosen)
