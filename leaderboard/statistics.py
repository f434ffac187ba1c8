"""The two statistics the leaderboard reports: an accuracy's confidence interval and a paired test.

Both work on per-image correctness (see `spikebench.predictions`), so every number in the
tables is recomputed from the committed predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, norm


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval of a proportion."""

    low: float
    high: float


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of the proportion correct/total (Wilson 1927).

    Unlike the normal approximation p ± z·sqrt(p(1-p)/n), it stays inside [0, 1] and keeps its
    coverage near 0% and 100% and on small subsets:
    (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    """
    if total < 1:
        raise ValueError(f"wilson_interval: total must be >= 1, got {total}")
    if not 0 <= correct <= total:
        raise ValueError(f"wilson_interval: correct={correct} outside [0, total={total}]")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact bounds where rounding would leave 1e-16
    high = 1.0 if correct == total else min(1.0, centre + half)
    return Interval(low, high)


@dataclass(frozen=True)
class PairedComparison:
    """Two classifiers on the same images: who is right where the other is wrong.

    `only_a` counts images A gets right and B wrong, `only_b` the reverse (the discordant
    pairs); `delta` is accuracy(A) - accuracy(B); `p_value` is the exact McNemar test.
    """

    images: int
    only_a: int
    only_b: int
    delta: float
    p_value: float


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under "equally accurate" each discordant pair goes either way
    with probability 1/2, so min(only_a, only_b) ~ Binomial(only_a + only_b, 1/2); p = 2·P(X <= min), capped at 1.
    No discordant pairs: p = 1 (no evidence of a difference)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got {only_a}, {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(only_a, only_b), n, 0.5)))


def paired_comparison(correct_a: np.ndarray, correct_b: np.ndarray) -> PairedComparison:
    """A against B from their per-image correctness on the same images (same order)."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1 or len(correct_a) == 0:
        raise ValueError(f"paired_comparison: need two equal, non-empty 1-D arrays, got {correct_a.shape} and {correct_b.shape}")
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((correct_b & ~correct_a).sum())
    delta = (only_a - only_b) / len(correct_a)
    return PairedComparison(len(correct_a), only_a, only_b, delta, mcnemar_exact(only_a, only_b))
