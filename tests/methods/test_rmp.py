"""RMP-SNN threshold balancing on the digits CNN."""

from __future__ import annotations

import pytest

from methods.rmp import RmpParams
from spikebench.convert import balance_thresholds, evaluate_timesteps, parse_ann, unnormalised_snn
from spikebench.errors import ParamsError
from spikebench.latency import best_percentile_curve, comparison_summary, latency_factors, sweep_images
from spikebench.results import ResultRow


@pytest.mark.slow
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


def sweep_row(reset: str, percentile: float, timesteps: int, accuracy: float) -> ResultRow:
    return ResultRow(method="conversion", library="spikebench", dataset="digits", split_hash="abc", arch="cnn", timesteps=timesteps,
                     accuracy=accuracy, ann_accuracy=0.95, spikes_per_image=1.0, synops_per_image=1.0, macs_per_image=1.0,
                     energy_per_image_j=1e-9, params=10, nonzero_params=10, weight_bits=32, seed=0, test_images=60, headline=False,
                     extra={"config": "sweep", "reset": reset, "percentile": percentile}, git_commit="x", library_versions={"x": "1"})


def test_best_reset_to_zero_percentile_is_the_strongest_curve():
    rows = [sweep_row("zero", 99.9, 4, 0.5), sweep_row("zero", 99.9, 8, 0.7), sweep_row("zero", 100.0, 4, 0.6),
            sweep_row("zero", 100.0, 8, 0.65), sweep_row("subtract", 99.0, 4, 0.99), sweep_row("subtract", 99.0, 8, 0.99)]
    # the subtract rows are better but not reset-to-zero; p100 sums to 1.25 > 1.20
    assert best_percentile_curve(rows, "zero") == (100.0, {4: 0.6, 8: 0.65})
    assert best_percentile_curve(rows, "subtract") == (99.0, {4: 0.99, 8: 0.99})
    assert best_percentile_curve([r for r in rows if r.extra["reset"] == "subtract"], "zero") is None
    assert sweep_images(rows) == 60 and sweep_images([]) == 0


def test_comparison_summary_keeps_targets_timesteps_and_factors():
    comparisons = latency_factors({8: 0.9}, {16: 0.9}, ann=0.92, gaps=[0.05])
    summary = comparison_summary({"hard": {"baseline": "x", "comparisons": comparisons}})
    assert summary == {"hard": [{"target_accuracy": 0.87, "rmp_timesteps": 8, "baseline_timesteps": 16, "factor": 2.0}]}


def test_long_images_below_the_latency_subset_is_refused():
    fields = dict(threshold_scales=[1.0, 0.8], main_scale=0.8, timesteps=256, balance_timesteps=8, calibration_size=10,
                  main_images=0, images=500, accuracy_gaps=[0.01], hardware_timesteps=32, batch_size=10)
    RmpParams(**fields, long_images=0).validate("rmp")
    RmpParams(**fields, long_images=500).validate("rmp")
    with pytest.raises(ParamsError, match=r"rmp.long_images 100 must be 0 or at least rmp.images \(500\)"):
        RmpParams(**fields, long_images=100).validate("rmp")
