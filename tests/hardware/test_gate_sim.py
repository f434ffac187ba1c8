"""Gate-level simulation of the synthesised core on images of two sparsities: outputs equal
the golden model (= the RTL), power follows activity, memory accesses are counted exactly,
and OpenSTA agrees with our switching and leakage power."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hardware.export import quantise
from hardware.gate_level import CLOCK_PERIOD_NS, build_gate, run_gate_level
from hardware.power_model import gate_power, load_library, memory_accesses, netlist_module, opensta_power
from hardware.synthesis.flow import LIBERTY
from tests.hardware.gate_netlist import CLOCK_MHZ, CONSTRAINTS, synthesized  # noqa: F401  (session fixture)
from tests.hardware.random_nets import TEST_CONFIG, sparsified, sparsity_checkpoint

pytestmark = pytest.mark.slow  # yosys synthesis and gate-level Icarus runs

TIMESTEPS = 1
FRACTIONS = [1.0, 0.15]  # pixels kept: dense, sparse


@pytest.fixture(scope="module")
def gate_runs(synthesized, tmp_path_factory):  # noqa: F811
    result, _ = synthesized
    rng = np.random.default_rng(7)
    state, meta = sparsity_checkpoint(rng)
    net = quantise(state, meta, TEST_CONFIG, timesteps=TIMESTEPS)
    image = rng.integers(1, 256, (1, 8, 8)).astype(np.uint8)
    images = sparsified(image, FRACTIONS, rng)
    build_gate(TEST_CONFIG, result.netlist)  # compile once before the parallel runs
    with ThreadPoolExecutor(len(images)) as pool:
        runs = list(pool.map(lambda i: run_gate_level(net, result.netlist_json, result.netlist, images[i:i + 1], 1,
                                                      tmp_path_factory.mktemp(f"mem{i}")), range(len(images))))
    module = netlist_module(result.netlist_json)
    library = load_library(result.sram_liberty)
    return result, module, library, images, runs


def test_outputs_match_and_power_follows_input_sparsity(gate_runs):
    _, module, library, images, runs = gate_runs  # run_gate_level raised if any output or counter differed
    constraints = CONSTRAINTS
    f = CLOCK_MHZ * 1e6
    dense, sparse = (gate_power(module, library, run.activity, constraints) for run in runs)
    dynamic = [(p.internal_j + p.switching_j) * f for p in (dense, sparse)]
    energy = [(p.internal_j + p.switching_j) * p.cycles for p in (dense, sparse)]
    print(f"dynamic power {dynamic[0] * 1e3:.3f} mW (dense) vs {dynamic[1] * 1e3:.3f} mW ({FRACTIONS[1]:.0%} of the pixels); "
          f"energy {energy[0] * 1e9:.2f} vs {energy[1] * 1e9:.2f} nJ over {dense.cycles:.0f} vs {sparse.cycles:.0f} cycles")
    assert runs[1].runs[0].sops < runs[0].runs[0].sops
    assert dynamic[1] < dynamic[0] and energy[1] < energy[0]
    assert sparse.leakage_w == dense.leakage_w > 0       # leakage does not depend on activity
    for run, image in zip(runs, images, strict=True):     # one read and one host write of the input queue per pixel event
        accesses = memory_accesses(module, run.activity)
        assert accesses.reads["u_inq"] == pytest.approx(np.count_nonzero(image))
        assert accesses.writes["u_inq"] == pytest.approx(np.count_nonzero(image))
        assert accesses.reads["u_wmem"] > 0 and accesses.writes["u_wmem"] == 0
        assert run.activity.period_ns == CLOCK_PERIOD_NS


def test_switching_and_leakage_agree_with_opensta_on_the_design(gate_runs, tmp_path):
    result, module, library, _, runs = gate_runs
    constraints = CONSTRAINTS
    f = CLOCK_MHZ * 1e6
    activity = runs[0].activity
    ours = gate_power(module, library, activity, constraints)
    doubled = gate_power(module, library, activity, constraints, double_count=True)
    sta = opensta_power(module, result.sta_netlist, [LIBERTY, result.sram_liberty], activity, constraints, tmp_path)
    comparable = (ours.switching_j - ours.switching_ports_j - ours.switching_memory_out_j) * f
    print(f"switching ours {comparable * 1e3:.4f} mW vs OpenSTA {sta.switching_w * 1e3:.4f} mW; leakage {ours.leakage_w * 1e6:.4f} vs "
          f"{sta.leakage_w * 1e6:.4f} uW; internal ours {ours.internal_j * f * 1e3:.3f} mW, OpenSTA {sta.internal_w * 1e3:.3f} mW, "
          f"ours with its rise+fall rule {doubled.internal_j * f * 1e3:.3f} mW")
    assert comparable == pytest.approx(sta.switching_w, rel=0.01)
    assert ours.leakage_w == pytest.approx(sta.leakage_w, rel=0.01)
    assert 1.8 < sta.internal_w / (ours.internal_j * f) < 2.3
    assert doubled.internal_j * f == pytest.approx(sta.internal_w, rel=0.05)
