"""The RTL result row: measured counters in, the typed hardware fields and the one nominal clock out."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.driver import CoreRun
from hardware.export import load_and_quantise, write_memory_images
from hardware.golden import run_golden
from hardware.rtl_report import GoldenCheck, RtlRuns, cycle_overhead, rtl_row
from spikebench.energy import count_params, energy_joules
from spikebench.io import save_checkpoint
from spikebench.results import RowContext
from spikebench.spiking import load_snn
from tests.hardware.random_nets import TEST_CONFIG, random_checkpoint

CLOCK_MHZ = 40.0


def test_rtl_row_carries_counters_cycles_and_the_synthesis_clock(tmp_path):
    rng = np.random.default_rng(3)
    state, meta = random_checkpoint(rng, timesteps=4)
    model = tmp_path / "snn.pt"
    save_checkpoint(model, state, meta)
    net = load_and_quantise(model, TEST_CONFIG)
    layout = write_memory_images(net, tmp_path / "mem")
    images = rng.integers(0, 256, (3, *net.input_shape)).astype(np.uint8)
    golden = run_golden(net, images)
    labels = np.array([int(p) for p in golden.predictions[:2]] + [int(golden.predictions[2]) + 1])  # the third one wrong
    runs = [CoreRun(golden.potentials[i].tolist(), cycles=1000 * (i + 1), sops=int(golden.sops[i]), macs=int(golden.macs[i]),
                    spikes=int(golden.spikes[i].sum()), phase_cycles={"events": 600 * (i + 1), "fire": 400 * (i + 1)},
                    layer_cycles=[500 * (i + 1)] * 2 + [0, 0]) for i in range(3)]
    check = GoldenCheck(accuracy=0.5, test_images=360, predictions=np.zeros(360, dtype=np.int64), head=golden, count=3)
    selected = {"model_path": str(model), "arch": "mlp", "method": "conversion", "accuracy": 0.6, "ann_accuracy": 0.9}
    row = rtl_row(RowContext("digits", "abc", 0), RtlRuns.of(runs), check, labels, layout, net, selected, CLOCK_MHZ)

    assert (row.method, row.library, row.arch, row.timesteps) == ("hardware", "rtl", "mlp (conversion)", 4)
    assert row.accuracy == pytest.approx(2 / 3) and row.test_images == 3          # over the simulated images
    assert row.hw_cycles_per_image == 2000.0 and row.hw_clock_mhz == CLOCK_MHZ and row.hw_energy_per_image_j is None
    assert row.extra["images_per_s"] == pytest.approx(CLOCK_MHZ * 1e6 / 2000.0)
    assert row.extra["us_per_image"] == pytest.approx(2000.0 / CLOCK_MHZ)
    assert row.synops_per_image == pytest.approx(golden.sops.mean())
    assert row.energy_per_image_j == pytest.approx(energy_joules(golden.macs.mean(), golden.sops.mean()))  # 45 nm op model
    assert (row.params, row.nonzero_params) == count_params(load_snn(model)[0])
    assert row.model_path == str(model) and not row.mappable and not row.headline  # the gate row is the hardware headline
    assert list(row.predictions.classes) == [int(p) for p in golden.predictions]  # the RTL's classes (= golden here)
    assert row.extra["golden_test_images"] == 360 and row.extra["quantisation_cost_pp"] == pytest.approx(10.0)
    bound = 2 * (golden.sops + golden.macs) / TEST_CONFIG.lanes + cycle_overhead(layout, net.timesteps)
    assert row.extra["cycle_bound_ratio_max"] == pytest.approx(float((np.array([1000.0, 2000.0, 3000.0]) / bound).max()))
    assert row.extra["phase_cycles_per_image"]["events"] == 1200.0 and row.extra["phase_cycles_per_image"]["clear"] == 0.0
    assert row.extra["layer_cycles_per_image"] == [1000.0, 1000.0][: len(layout["layers"])]
    assert not {"clock_mhz", "model_path", "cycles_per_image", "test_images", "mappable"} & set(row.extra)
