"""End to end on real data: the digits CNN converted by the engine, exported, run on the
integer golden model (full test split, vs the float SNN) and on the RTL: the whole test
split in Verilator, the first images in Icarus (the independent cross-check), every output
and counter compared."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.config import HardwareConfig
from hardware.export import quantise, write_memory_images
from hardware.golden import compare, run_golden
from hardware.rtl_report import cycle_overhead
from hardware.sim import simulate_rtl
from hardware.verilator import build_verilator, simulate_images
from spikebench.convert import convert
from spikebench.spiking import simulate

pytestmark = pytest.mark.slow  # trains the digits CNN, converts it, simulates the RTL

TIMESTEPS = 8
RTL_IMAGES = 8
CONFIG = HardwareConfig(lanes=8, weight_bits=8, membrane_bits=24, acc_bits=32, bank_addr_bits=9, weight_addr_bits=12,
                        pointer_addr_bits=9, bias_addr_bits=4, layer_addr_bits=2, input_addr_bits=6)


@pytest.fixture(scope="module")
def converted(digits_data, digits_cnn):
    net = convert(digits_cnn, digits_data.calibration(500, seed=0), percentile=99.99)
    state, meta = net.to_checkpoint(method="conversion", dataset="digits", split_hash=digits_data.split_hash,
                                    input_shape=list(digits_data.input_shape), num_classes=digits_data.num_classes, timesteps=TIMESTEPS)
    x, y = digits_data.test
    float_accuracy = float((simulate(net, x, TIMESTEPS).predictions(TIMESTEPS) == y).float().mean())
    return quantise(state, meta, CONFIG), float_accuracy


def test_golden_accuracy_close_to_float_snn(converted, digits_data):
    net, float_accuracy = converted
    x, y = digits_data.test
    golden = run_golden(net, np.rint(x.numpy() * 255).astype(np.uint8), count_ops=False)
    golden_accuracy = float((golden.predictions == y.numpy()).mean())
    print(f"digits T={TIMESTEPS}: float SNN {float_accuracy:.4f}, golden (8-bit) {golden_accuracy:.4f} on {len(y)} images")
    assert golden_accuracy > 0.8
    assert abs(golden_accuracy - float_accuracy) <= 0.02


def test_rtl_matches_golden_on_real_images(converted, digits_data, tmp_path):
    net, _ = converted
    x, _ = digits_data.test
    images = np.rint(x[:RTL_IMAGES].numpy() * 255).astype(np.uint8)
    layout = write_memory_images(net, tmp_path)
    runs, _ = simulate_rtl(net, layout, images, workers=1, memdir=tmp_path)
    golden = run_golden(net, images)
    assert compare(runs, golden) == []
    assert len(runs) == RTL_IMAGES and all(r.sops > 0 for r in runs)
    overhead = cycle_overhead(layout, net.timesteps)
    for r in runs:
        assert r.cycles <= 2 * (r.sops + r.macs) / CONFIG.lanes + overhead


def test_verilator_matches_golden_on_the_whole_test_split(converted, digits_data, tmp_path):
    net, _ = converted
    x, y = digits_data.test
    images = np.rint(x.numpy() * 255).astype(np.uint8)
    layout = write_memory_images(net, tmp_path)
    runs, _ = simulate_images(build_verilator(CONFIG), tmp_path, layout, images, workers=2)
    golden = run_golden(net, images)
    assert len(runs) == len(y) and compare(runs, golden) == []
    rtl_accuracy = float((np.array([np.argmax(r.potentials) for r in runs]) == y.numpy()).mean())
    assert rtl_accuracy == float((golden.predictions == y.numpy()).mean()) > 0.8
