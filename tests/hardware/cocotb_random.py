"""cocotb: randomised networks and inputs through the RTL, compared with the golden model.

Every case draws a network (shapes, sparsity, weights, thresholds, reset) and a batch of
input images from a seed (logged), exports it, reloads the core's memories and checks,
for every image: all output potentials, the output spike count, the synaptic-op and MAC
counters. Environment: SNN_MEMDIR (where the memory images go), SNN_CASES, SNN_VECTORS,
SNN_SEED (a fresh one every run, chosen and printed by test_rtl.py; every assertion names it).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np

from hardware.driver import CoreDriver
from hardware.export import quantise, write_memory_images
from hardware.golden import run_golden
from hardware.rtl_report import cycle_overhead
from spikebench.errors import ModelError
from tests.hardware.random_nets import TEST_CONFIG, random_checkpoint, random_images, saturating_checkpoint, sparsified, sparsity_checkpoint


@cocotb.test()
async def random_networks_match_golden(tb) -> None:
    cases, vectors, seed = int(os.environ["SNN_CASES"]), int(os.environ["SNN_VECTORS"]), int(os.environ["SNN_SEED"])
    memdir = Path(os.environ["SNN_MEMDIR"])
    tb._log.info(f"random networks: seed {seed} (SPIKEBENCH_RTL_SEED={seed} repeats the run)")
    driver = CoreDriver(tb, memdir)
    await driver.reset()
    checked = redrawn = 0
    for case in range(cases):
        rng = np.random.default_rng([seed, case])
        while True:  # a draw the hardware cannot map (e.g. threshold beyond the membrane range) is redrawn
            state, meta = random_checkpoint(rng)
            try:
                net = quantise(state, meta, TEST_CONFIG)
                break
            except ModelError:
                redrawn += 1
        layout = write_memory_images(net, memdir)
        images = random_images(rng, net.input_shape, vectors)
        golden = run_golden(net, images)
        await driver.reload(layout)
        for i, got in enumerate(await driver.run_batch(images)):
            where = f"seed [{seed}, {case}] vector {i} ({[layer.name for layer in net.layers]})"
            assert got.potentials == golden.potentials[i].tolist(), f"{where}: potentials {got.potentials} != {golden.potentials[i].tolist()}"
            assert got.spikes == int(golden.spikes[i].sum()), f"{where}: spikes {got.spikes} != {golden.spikes[i].sum()}"
            assert got.sops == int(golden.sops[i]), f"{where}: SOPs {got.sops} != {golden.sops[i]}"
            assert got.macs == int(golden.macs[i]), f"{where}: MACs {got.macs} != {golden.macs[i]}"
            checked += 1
    tb._log.info(f"random networks: {cases} cases ({redrawn} unmappable draws redrawn), {checked} vectors, seed {seed}: all match the golden model")


async def _check(driver: CoreDriver, net, layout: dict, images, where: str):
    golden = run_golden(net, images)
    await driver.reload(layout)
    runs = await driver.run_batch(images)
    for i, got in enumerate(runs):
        assert got.potentials == golden.potentials[i].tolist(), f"{where} vector {i}: potentials {got.potentials} != {golden.potentials[i].tolist()}"
        assert (got.spikes, got.sops, got.macs) == (int(golden.spikes[i].sum()), int(golden.sops[i]), int(golden.macs[i])), f"{where} vector {i}: counters"
    return runs, golden


@cocotb.test()
async def saturation_matches_golden(tb) -> None:
    seed, memdir = int(os.environ["SNN_SEED"]), Path(os.environ["SNN_MEMDIR"])
    driver = CoreDriver(tb, memdir)
    await driver.reset()
    rng = np.random.default_rng([seed, 10_000])
    state, meta = saturating_checkpoint(rng)
    net = quantise(state, meta, TEST_CONFIG)
    images = random_images(rng, net.input_shape, 64, density=1.0)
    _, golden = await _check(driver, net, write_memory_images(net, memdir), images, f"saturation seed [{seed}, 10000]")
    top = 2 ** (TEST_CONFIG.membrane_bits - 1)
    assert (golden.saturations > 0).all(), "the saturation case must clip membranes on every image"
    assert (golden.potentials == top - 1).any() and (golden.potentials == -top).any(), "both limits must be reached"
    tb._log.info(f"saturation: 64 vectors, {int(golden.saturations.sum())} clipped neuron-steps, RTL == golden")


@cocotb.test()
async def cycles_fall_as_input_sparsity_rises(tb) -> None:
    seed, memdir = int(os.environ["SNN_SEED"]), Path(os.environ["SNN_MEMDIR"])
    driver = CoreDriver(tb, memdir)
    await driver.reset()
    rng = np.random.default_rng([seed, 20_000])
    state, meta = sparsity_checkpoint(rng)
    net = quantise(state, meta, TEST_CONFIG)
    layout = write_memory_images(net, memdir)
    fractions = [1.0, 0.75, 0.5, 0.25, 0.1, 0.0]
    images = sparsified(random_images(rng, net.input_shape, 1, density=1.0)[0], fractions, rng)
    runs, _ = await _check(driver, net, layout, images, f"sparsity seed [{seed}, 20000]")
    cycles = [r.cycles for r in runs]
    assert all(a > b for a, b in zip(cycles, cycles[1:], strict=False)), f"cycles must fall as sparsity rises: {cycles}"
    overhead = cycle_overhead(layout, net.timesteps)
    for r in runs:
        bound = 2 * (r.sops + r.macs) / TEST_CONFIG.lanes + overhead
        assert r.cycles <= bound, f"{r.cycles} cycles exceed the bound {bound:.0f} (SOPs {r.sops}, MACs {r.macs})"
    tb._log.info(f"sparsity sweep: pixel fractions {fractions} -> cycles {cycles}, SOPs {[r.sops for r in runs]}; overhead {overhead}")
