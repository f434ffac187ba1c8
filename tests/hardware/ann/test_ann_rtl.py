"""The ANN array in Verilator against the integer golden model: random networks (shapes,
kernels, pools, widths, weight bits, weight and activation sparsity; the seed is printed and
set by ANN_TEST_SEED), the trained digits CNN, and the zero-gating path."""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import pytest
import torch
from torch import nn

from hardware.ann import golden
from hardware.ann.config import AnnHwConfig
from hardware.ann.export import export
from hardware.ann.quantise import IntAnn, quantise
from hardware.ann.sim import AnnRun, build, simulate, sources
from hardware.sim import RTL_DIR
from tests.hardware.ann.random_ann import TEST_CONFIG, random_images, random_int_ann

pytestmark = pytest.mark.slow  # builds and runs Verilator


def _seed() -> int:
    seed = int(os.environ.get("ANN_TEST_SEED", time.time_ns() % 2**31))
    print(f"ANN RTL test seed {seed} (rerun with ANN_TEST_SEED={seed})")
    return seed


def _run(net: IntAnn, images: np.ndarray, tmp_path) -> list[AnnRun]:
    layout = export(net, TEST_CONFIG, tmp_path)
    runs, _ = simulate(build(TEST_CONFIG), tmp_path, layout, images, workers=1, label="ann_test", chunk_images=len(images))
    return runs


def _check_exact(net: IntAnn, images: np.ndarray, runs: list[AnnRun], context: str) -> None:
    """Logits, cycles, issued/skipped MACs and every memory's accesses as the golden model says."""
    lanes = TEST_CONFIG.macs
    logits = golden.predict(net, images)
    counts = golden.counts(net, images, lanes)
    for i, run in enumerate(runs):
        where = f"{context}, image {i}"
        assert run.logits == logits[i].tolist(), where
        assert run.cycles == golden.cycles(net, lanes), where
        assert run.issued == sum(int(c.issued[i]) for c in counts), where
        assert run.skipped == sum(int(c.skipped[i]) for c in counts), where
        assert run.memory == golden.memory_accesses(net, counts, lanes, i), where


def test_random_networks_are_bit_exact(tmp_path) -> None:
    rng = np.random.default_rng(_seed())
    for number in range(12):
        net = random_int_ann(rng)
        images = random_images(rng, net.input_shape, 5)
        shapes = [(layer.kind, layer.in_shape, layer.cout, layer.kernel, layer.pool) for layer in net.layers]
        _check_exact(net, images, _run(net, images, tmp_path / str(number)), f"network {number} {shapes} {net.weight_bits}-bit")


def test_trained_digits_cnn_is_bit_exact(digits_cnn, digits_data, tmp_path) -> None:
    net = quantise(digits_cnn, digits_data.calibration(256, 0), 5)
    images = np.round(digits_data.test[0][:24].numpy() * 255).astype(np.uint8)
    runs = _run(net, images, tmp_path)
    _check_exact(net, images, runs, "digits cnn")
    assert (golden.classes(np.array([r.logits for r in runs])) == golden.classes(golden.predict(net, images))).all()


@pytest.mark.parametrize("layer", [nn.Linear(64, 10), nn.Conv2d(4, 1, 3, padding=1)], ids=["fc", "conv"])
def test_zero_gating_skips_macs_and_toggles_not_results(layer: nn.Module, tmp_path) -> None:
    """One layer at 0% and 80% zero activations: more MACs skipped, fewer weight reads and
    accumulator toggles, the same cycles, and outputs bit-exact in both cases."""
    rng = np.random.default_rng(_seed())
    shape = (1, 8, 8) if isinstance(layer, nn.Linear) else (4, 4, 4)
    model = nn.Sequential(nn.Flatten(), layer) if isinstance(layer, nn.Linear) else nn.Sequential(layer)
    net = quantise(model.eval(), torch.from_numpy(random_images(rng, shape, 16)).float() / 255, 6)
    dense = random_images(rng, shape, 4, zero_fraction=0.0)
    sparse = dense.copy()
    sparse[rng.random(sparse.shape) < 0.8] = 0
    images = np.concatenate([dense, sparse])
    runs = _run(net, images, tmp_path)
    _check_exact(net, images, runs, "zero gating")
    for d, s in zip(runs[:4], runs[4:], strict=True):
        assert s.skipped > d.skipped and s.issued < d.issued
        assert s.memory["wmem"][0] < d.memory["wmem"][0]
        assert s.toggles < d.toggles
        assert s.cycles == d.cycles  # gating saves energy, not time


@pytest.mark.parametrize("config", [AnnHwConfig(), TEST_CONFIG, AnnHwConfig(macs=1, out_addr_bits=1, bias_addr_bits=1, layer_addr_bits=1)])
def test_verilator_lint_is_clean(config: AnnHwConfig) -> None:
    result = subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", "ann_core",
                             *[f"-G{k}={v}" for k, v in config.verilog_parameters().items()], *map(str, sources())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
