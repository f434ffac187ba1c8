"""RMP-SNN threshold balancing on the digits CNN."""

from __future__ import annotations

from methods.rmp import balance_thresholds, latency_factors
from spikebench.convert import evaluate_timesteps, parse_ann, unnormalised_snn


def test_balanced_rmp_network_tracks_the_ann(digits_cnn, digits_data):
    parsed = parse_ann(digits_cnn)
    thresholds = balance_thresholds(parsed, digits_data.calibration(64, 0), 16)
    assert len(thresholds) == 3 and all(t > 0 for t in thresholds)
    x, y = digits_data.test[0][:200], digits_data.test[1][:200]
    ann = float((digits_cnn(x).argmax(1) == y).float().mean())
    soft = evaluate_timesteps(unnormalised_snn(parsed, thresholds, "subtract"), x, y, [8, 48], digits_data.input_shape)
    hard = evaluate_timesteps(unnormalised_snn(parsed, thresholds, "zero"), x, y, [8, 48], digits_data.input_shape)
    # the biases are rescaled with the thresholds, so the soft-reset network converges to the ANN
    assert soft.accuracy[48] >= ann - 0.05
    assert soft.accuracy[48] >= hard.accuracy[48]


def test_latency_factor_reads_the_first_timestep_reaching_each_target():
    rmp = {8: 0.5, 16: 0.9, 32: 0.95}
    hard = {8: 0.3, 16: 0.6, 32: 0.85, 64: 0.94}
    factors = latency_factors(rmp, hard, ann=0.96, gaps=[0.05, 0.01])
    assert factors[0]["rmp_timesteps"] == 32 and factors[0]["baseline_timesteps"] == 64 and factors[0]["factor"] == 2.0
    # the baseline needs more than its T_max = 64 steps: a lower bound (64 + 1) / 32
    assert factors[1]["baseline_timesteps"] is None and factors[1]["factor"] == 65 / 32 and "lower bound" in factors[1]["note"]
    assert latency_factors({8: 0.5}, hard, ann=0.96, gaps=[0.01])[0]["factor"] is None
