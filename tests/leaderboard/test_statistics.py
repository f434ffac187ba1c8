"""The interval and the paired test against hand-computed cases."""

import numpy as np
import pytest

from leaderboard.statistics import mcnemar_exact, paired_comparison, wilson_interval


def test_wilson_interval_matches_hand_computed_values():
    # 91/100: centre (0.91 + z²/200) / (1 + z²/100) = 0.89483, half-width 0.05709 (z = 1.959964)
    interval = wilson_interval(91, 100)
    assert interval.low == pytest.approx(0.83774, abs=2e-5) and interval.high == pytest.approx(0.95193, abs=2e-5)
    # 0/10: [0, z²/n / (1 + z²/n)] = [0, 0.27753]; the normal approximation would give [0, 0]
    zero = wilson_interval(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.27753, abs=2e-5)
    full = wilson_interval(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(1 - 0.27753, abs=2e-5)


def test_wilson_interval_narrows_with_more_images_and_refuses_bad_counts():
    assert wilson_interval(9100, 10000).high - wilson_interval(9100, 10000).low < wilson_interval(91, 100).high - wilson_interval(91, 100).low
    with pytest.raises(ValueError, match="total"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="outside"):
        wilson_interval(11, 10)


def test_mcnemar_exact_hand_computed_cases():
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: no evidence
    assert mcnemar_exact(5, 5) == 1.0  # a tie: 2 P(X <= 5 | n=10) = 1.23, capped at 1
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5**6)  # 0.03125
    assert mcnemar_exact(9, 1) == pytest.approx(2 * (1 + 10) / 1024)  # symmetric in its arguments
    assert mcnemar_exact(1, 9) == mcnemar_exact(9, 1)


def test_paired_comparison_counts_discordant_images_only():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 1], dtype=bool)
    paired = paired_comparison(a, b)
    assert (paired.only_a, paired.only_b, paired.images) == (3, 1, 8)
    assert paired.delta == pytest.approx(a.mean() - b.mean())
    assert paired.p_value == pytest.approx(2 * (1 + 4) / 16)  # 2 P(X <= 1 | n=4)
    same = paired_comparison(a, a)
    assert (same.only_a, same.only_b, same.delta, same.p_value) == (0, 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="equal"):
        paired_comparison(a, b[:4])
