"""Gate-level simulation of the synthesised core over whole inferences (all timesteps): in Verilator
the netlist gives the golden model's outputs and counters with non-zero potentials, its per-net
activity equals an Icarus dump with the library's UDP cell models (the independent cross-check),
the per-phase activity adds up to the whole and its cycles are the RTL's phase cycles, power
follows activity, memory accesses are counted exactly, and OpenSTA agrees with our switching
and leakage power."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.export import quantise, write_memory_images
from hardware.gate_activity import PHASE_NAMES
from hardware.gate_level import CLOCK_PERIOD_NS, build_gate_verilator, run_gate_level, run_gate_level_icarus
from hardware.golden import compare, run_golden
from hardware.power_model import gate_power, load_library, memory_accesses, netlist_module, opensta_power
from hardware.synthesis.flow import LIBERTY, ToolError
from hardware.verilator import build_verilator, simulate_images
from spikebench.errors import SpikebenchError
from tests.hardware.gate_netlist import CLOCK_MHZ, CONSTRAINTS, synthesized  # noqa: F401  (session fixture)
from tests.hardware.random_nets import TEST_CONFIG, sparsified, sparsity_checkpoint

FRACTIONS = [1.0, 0.15]  # pixels kept: dense, sparse
RESET_NS = 100.0         # two-state Verilator vs four-state Icarus differ only in the reset cycles


@pytest.fixture(scope="module")
def gate_runs(synthesized, tmp_path_factory):  # noqa: F811
    """A conv-pool-fc-fc network at its full T=4 on a dense and a sparse image: one Verilator run
    per image (activity per image), and Icarus on the dense one."""
    result, _ = synthesized
    rng = np.random.default_rng(7)
    state, meta = sparsity_checkpoint(rng)
    net = quantise(state, meta, TEST_CONFIG)  # every timestep of the checkpoint
    image = rng.integers(1, 256, (1, 8, 8)).astype(np.uint8)
    images = sparsified(image, FRACTIONS, rng)
    runs = [run_gate_level(net, result.netlist_json, result.netlist, images[i:i + 1], 1, tmp_path_factory.mktemp(f"mem{i}"), opt="-O0")
            for i in range(len(images))]
    icarus = run_gate_level_icarus(net, result.netlist_json, result.netlist, images[:1], 1, tmp_path_factory.mktemp("icarus"))
    module = netlist_module(result.netlist_json)
    library = load_library(result.sram_liberty)
    return result, module, library, net, images, runs, icarus


@pytest.mark.slow  # yosys synthesis, a Verilator build and an Icarus gate-level run
def test_whole_inferences_on_the_netlist_equal_the_golden_model(gate_runs):
    _, _, _, net, images, runs, icarus = gate_runs  # run_gate_level raised if any output or counter differed
    assert net.timesteps == 4
    golden = run_golden(net, images)
    verilator = [run.runs[0] for run in runs]
    assert compare(verilator, golden) == []
    assert compare(icarus.runs, run_golden(net, images[:1])) == []
    assert all(any(p != 0 for p in r.potentials) for r in verilator)  # not an all-zero comparison
    assert all(r.spikes > 0 and r.sops > 0 for r in verilator)
    assert icarus.runs[0].cycles == verilator[0].cycles


@pytest.mark.slow
def test_verilator_activity_equals_the_icarus_dump(gate_runs):
    """Per net: the same transitions (one at most apart: nets start at 0 in Verilator, at x in Icarus)
    and the same time at 1 outside the reset cycles."""
    _, _, _, _, _, runs, icarus = gate_runs
    ours, theirs = runs[0].activity, icarus.activity
    assert np.array_equal(ours.bits, theirs.bits)
    difference = ours.toggles - theirs.toggles
    print(f"toggles: Verilator {ours.toggles.sum():,.0f}, Icarus {theirs.toggles.sum():,.0f}; "
          f"{np.mean(difference == 0):.2%} of {len(difference)} nets exact")
    assert np.abs(difference).max() <= 1
    assert np.mean(difference == 0) > 0.99
    assert ours.toggles.sum() == pytest.approx(theirs.toggles.sum(), rel=1e-4)
    assert np.abs(ours.high - theirs.high).max() <= RESET_NS
    assert ours.duration_ns == pytest.approx(theirs.duration_ns, abs=CLOCK_PERIOD_NS)


@pytest.mark.slow
def test_phases_add_up_and_have_the_rtl_phase_cycles(gate_runs, tmp_path):
    _, _, _, net, images, runs, _ = gate_runs
    layout = write_memory_images(net, tmp_path)
    rtl, _ = simulate_images(build_verilator(TEST_CONFIG), tmp_path, layout, images, workers=1)
    for run, reference in zip(runs, rtl, strict=True):
        assert set(run.phases) == set(PHASE_NAMES)
        assert sum(a.duration_ns for a in run.phases.values()) == run.activity.duration_ns
        for field in ("rises", "falls", "high"):
            assert np.array_equal(sum(getattr(a, field) for a in run.phases.values()), getattr(run.activity, field))
        for phase, cycles in reference.phase_cycles.items():
            assert run.phases[phase].cycles == cycles, phase
        assert run.phases["events"].toggles.sum() > 0 and run.phases["fire"].toggles.sum() > 0


@pytest.mark.slow
def test_outputs_match_and_power_follows_input_sparsity(gate_runs):
    _, module, library, _, images, runs, _ = gate_runs
    f = CLOCK_MHZ * 1e6
    dense, sparse = (gate_power(module, library, run.activity, CONSTRAINTS) for run in runs)
    dynamic = [(p.internal_j + p.switching_j) * f for p in (dense, sparse)]
    energy = [(p.internal_j + p.switching_j) * p.cycles for p in (dense, sparse)]
    print(f"dynamic power {dynamic[0] * 1e3:.3f} mW (dense) vs {dynamic[1] * 1e3:.3f} mW ({FRACTIONS[1]:.0%} of the pixels); "
          f"energy {energy[0] * 1e9:.2f} vs {energy[1] * 1e9:.2f} nJ over {dense.cycles:.0f} vs {sparse.cycles:.0f} cycles")
    assert runs[1].runs[0].sops < runs[0].runs[0].sops
    assert energy[1] < energy[0]
    assert sparse.leakage_w == dense.leakage_w > 0       # leakage does not depend on activity
    for run, image in zip(runs, images, strict=True):     # one read and one host write of the input queue per pixel event
        accesses = memory_accesses(module, run.activity)
        assert accesses.reads["u_inq"] == pytest.approx(np.count_nonzero(image))
        assert accesses.writes["u_inq"] == pytest.approx(np.count_nonzero(image))
        assert accesses.reads["u_wmem"] > 0 and accesses.writes["u_wmem"] == 0
        assert run.activity.period_ns == CLOCK_PERIOD_NS


@pytest.mark.slow
def test_switching_and_leakage_agree_with_opensta_on_the_design(gate_runs, tmp_path):
    result, module, library, _, _, runs, _ = gate_runs
    f = CLOCK_MHZ * 1e6
    activity = runs[0].activity
    ours = gate_power(module, library, activity, CONSTRAINTS)
    doubled = gate_power(module, library, activity, CONSTRAINTS, double_count=True)
    sta = opensta_power(module, result.sta_netlist, [LIBERTY, result.sram_liberty], activity, CONSTRAINTS, tmp_path)
    comparable = (ours.switching_j - ours.switching_ports_j - ours.switching_memory_out_j) * f
    print(f"switching ours {comparable * 1e3:.4f} mW vs OpenSTA {sta.switching_w * 1e3:.4f} mW; leakage {ours.leakage_w * 1e6:.4f} vs "
          f"{sta.leakage_w * 1e6:.4f} uW; internal ours {ours.internal_j * f * 1e3:.3f} mW, OpenSTA {sta.internal_w * 1e3:.3f} mW, "
          f"ours with its rise+fall rule {doubled.internal_j * f * 1e3:.3f} mW")
    assert comparable == pytest.approx(sta.switching_w, rel=0.01)
    assert ours.leakage_w == pytest.approx(sta.leakage_w, rel=0.01)
    assert 1.8 < sta.internal_w / (ours.internal_j * f) < 2.3
    assert doubled.internal_j * f == pytest.approx(sta.internal_w, rel=0.05)


@pytest.mark.slow
def test_a_netlist_differing_from_the_rtl_stops_the_run(gate_runs, tmp_path):
    """The effect of the Verilator 5.006 bug (XNOR cells computed as XOR), put into the netlist itself:
    the lockstep RTL reference stops the run at the first cycle the outputs differ."""
    result, _, _, net, images, _, _ = gate_runs
    corrupted = tmp_path / "snn_core.v"
    corrupted.write_text(result.netlist.read_text().replace("XNOR2X1 ", "XOR2X1 "))
    with pytest.raises(SpikebenchError, match=r"differ from the RTL reference at \d+ ns"):
        run_gate_level(net, result.netlist_json, corrupted, images[:1], 1, tmp_path / "mem", opt="-O0")


def test_missing_verilator_names_the_apt_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"apt-get install verilator"):
        build_gate_verilator(TEST_CONFIG, tmp_path / "snn_core.v", tmp_path / "snn_core.json")
