"""Power from Liberty tables on a single cell, checked by hand; OpenSTA's internal-power rule;
bad netlists."""

from __future__ import annotations

import json
import subprocess

import pytest

from hardware.config import Constraints, SramTiming
from hardware.power_model import gate_power, load_library, opensta_power, read_activity
from hardware.synthesis.flow import CELL_MODELS, LIBERTY, write_sram_liberty
from spikebench.errors import SpikebenchError
from spikebench.predictions import Predictions

PERIOD_NS = 10.0
TOGGLES = 200                 # input transitions, one per 10 ns clock period
LOAD_PF, SLEW_NS = 0.01, 0.1  # between the grid points of the INVX1 tables: a real interpolation

INVERTER = """`timescale 1ns/1ps
module inv1(clk, a, y);
  input clk;  // unconnected: gives OpenSTA the clock its activities refer to
  input a;
  output y;
  INVX1 u1 (.A(a), .Y(y));
endmodule
"""
BENCH = f"""`timescale 1ns/1ps
module tb;
  reg a = 1'b0;
  inv1 dut (.clk(1'b0), .a(a), .y());
  initial begin
    $dumpfile("inv.vcd");
    $dumpvars(1, tb.dut);
    repeat ({TOGGLES}) #{PERIOD_NS:g} a = ~a;
    #1 $finish;
  end
endmodule
"""
MODULE = {  # the yosys-JSON form of INVERTER
    "ports": {"clk": {"direction": "input", "bits": [4]}, "a": {"direction": "input", "bits": [2]}, "y": {"direction": "output", "bits": [3]}},
    "cells": {"u1": {"type": "INVX1", "parameters": {}, "port_directions": {"A": "input", "Y": "output"}, "connections": {"A": [2], "Y": [3]}}},
    "netnames": {"clk": {"bits": [4]}, "a": {"bits": [2]}, "y": {"bits": [3]}},
}


def liberty_by_hand() -> tuple[float, float, float, float]:
    """INVX1 from osu018_stdcells.lib, read off by hand: Y internal_power related to A
    (index_1 load 0.005, 0.0125 pF; index_2 slew 0.06, 0.18 ns), A capacitance, leakage (nW)."""
    rise = {(0.005, 0.06): 0.023555, (0.005, 0.18): 0.029044, (0.0125, 0.06): 0.023165, (0.0125, 0.18): 0.028621}
    fall = {(0.005, 0.06): 0.009213, (0.005, 0.18): 0.004772, (0.0125, 0.06): 0.009047, (0.0125, 0.18): 0.005677}
    fl, fs = (LOAD_PF - 0.005) / (0.0125 - 0.005), (SLEW_NS - 0.06) / (0.18 - 0.06)  # 2/3, 1/3

    def bilinear(t: dict) -> float:
        return ((1 - fl) * (1 - fs) * t[(0.005, 0.06)] + (1 - fl) * fs * t[(0.005, 0.18)]
                + fl * (1 - fs) * t[(0.0125, 0.06)] + fl * fs * t[(0.0125, 0.18)])

    return bilinear(rise), bilinear(fall), 0.00932456, 0.0221741


@pytest.fixture(scope="module")
def inverter_run(tmp_path_factory):
    """One INVX1 driven at one transition per clock period, simulated by Icarus with the cell model."""
    work = tmp_path_factory.mktemp("inverter")
    (work / "inv1.v").write_text(INVERTER)
    (work / "tb.v").write_text(BENCH)
    subprocess.run(["iverilog", "-g2005", "-o", "sim.vvp", "-s", "tb", "tb.v", "inv1.v", str(CELL_MODELS)], cwd=work, check=True, capture_output=True)
    subprocess.run(["vvp", "-n", "sim.vvp"], cwd=work, check=True, capture_output=True)
    activity = read_activity([work / "inv.vcd"], None, PERIOD_NS, scope="tb.dut", module=MODULE)
    macros = work / "macros.lib"
    write_sram_liberty(macros, set(), SramTiming(access_ns=2.5), source_slew_ns=SLEW_NS)
    return work, activity, load_library(macros), Constraints(clock_mhz=1e3 / PERIOD_NS, input_slew_ns=SLEW_NS, output_load_pf=LOAD_PF)


def test_inverter_energy_per_transition_equals_liberty_table_by_hand(inverter_run):
    _, activity, library, constraints = inverter_run
    transitions = {int(b): r + f for b, r, f in zip(activity.bits, activity.rises, activity.falls, strict=True)}
    assert transitions == {2: TOGGLES, 3: TOGGLES, 4: 0}
    ours = gate_power(MODULE, library, activity, constraints)
    e_rise, e_fall, cap_a, leakage_nw = liberty_by_hand()
    per_transition = ours.internal_j * ours.cycles / TOGGLES
    hand = (e_rise + e_fall) / 2 * 1e-12          # as many rising as falling outputs
    print(f"INVX1 at {LOAD_PF} pF, {SLEW_NS} ns: ours {per_transition * 1e15:.4f} fJ/transition, by hand {hand * 1e15:.4f} fJ")
    assert per_transition == pytest.approx(hand, rel=0.01)
    # switching: 1/2 C V^2 per transition on both nets (the input port's net included)
    assert ours.switching_j * ours.cycles == pytest.approx(0.5 * 1.8**2 * (cap_a + LOAD_PF) * TOGGLES * 1e-12, rel=1e-6)
    assert ours.switching_ports_j * ours.cycles == pytest.approx(0.5 * 1.8**2 * cap_a * TOGGLES * 1e-12, rel=1e-6)
    assert ours.leakage_w == pytest.approx(leakage_nw * 1e-9)


def test_opensta_charges_rise_plus_fall_on_every_transition(inverter_run):
    """OpenSTA 2.0.17 on the same cell and activity: switching (of the net it charges) and
    leakage agree, internal is 2x ours, exactly our calculation with its rise+fall rule."""
    work, activity, library, constraints = inverter_run
    ours = gate_power(MODULE, library, activity, constraints)
    doubled = gate_power(MODULE, library, activity, constraints, double_count=True)
    sta = opensta_power(MODULE, work / "inv1.v", [LIBERTY, work / "macros.lib"], activity, constraints, work / "sta", top="inv1")
    f = constraints.clock_mhz * 1e6
    print(f"INVX1 internal: ours {ours.internal_j * f * 1e6:.4f} uW, OpenSTA {sta.internal_w * 1e6:.4f} uW")
    assert sta.switching_w == pytest.approx((ours.switching_j - ours.switching_ports_j) * f, rel=0.01)
    assert sta.leakage_w == pytest.approx(ours.leakage_w, rel=0.01)
    assert sta.internal_w == pytest.approx(doubled.internal_j * f, rel=0.01)
    assert sta.internal_w / (ours.internal_j * f) == pytest.approx(2.0, rel=0.01)


def test_netlist_cell_missing_from_liberty_is_named(inverter_run):
    _, activity, library, constraints = inverter_run
    module = {**MODULE, "cells": {"u1": {**MODULE["cells"]["u1"], "type": "INVX9"}}}
    with pytest.raises(SpikebenchError, match=r"netlist cell u1 of type 'INVX9' is not in the Liberty library osu018_stdcells"):
        gate_power(module, library, activity, constraints)


def test_missing_dump_is_one_clear_error(tmp_path):
    with pytest.raises(SpikebenchError, match="no waveform dump"):
        read_activity([tmp_path / "missing.fst"], None, PERIOD_NS, module=MODULE)


def test_split_per_sop_recovers_the_per_sop_per_mac_and_fixed_energy():
    import numpy as np

    from hardware.inference_energy import split_per_sop

    rng = np.random.default_rng(0)
    sops, macs = rng.uniform(1e5, 3e5, 50), rng.uniform(2e4, 6e4, 50)
    split = split_per_sop(5e-6 + 2e-12 * sops + 3e-12 * macs, sops, macs)
    assert (split.fixed_j, split.per_sop_j, split.per_mac_j) == pytest.approx((5e-6, 2e-12, 3e-12), rel=1e-6)
    assert split.images == 50 and split.r2 == pytest.approx(1.0)
    constant_macs = split_per_sop(5e-6 + 2e-12 * sops, sops, np.full(50, 4e4))   # folded into the fixed part
    assert (constant_macs.per_sop_j, constant_macs.per_mac_j) == pytest.approx((2e-12, 0.0))
    assert split_per_sop(np.ones(3), np.full(3, 7.0), macs[:3]) is None          # SOPs that never vary: no slope


def memory_counts(path, vmem_reads: list[float]) -> None:
    """A hand-made reports/hardware_memory.json: vmem reads per image as given, one 32 KiB instance."""
    from hardware.memory_model import MEMORY_NAMES

    images = len(vmem_reads)
    memories = {n: {"instances": 1, "width_bits": 16, "depth_words": 16, "reads": 0, "writes": 0} for n in MEMORY_NAMES}
    memories["vmem"] = {"instances": 1, "width_bits": 64, "depth_words": 4096, "reads": sum(vmem_reads), "writes": 0}
    per_image = {n: {"reads": [0] * images, "writes": [0] * images} for n in MEMORY_NAMES}
    per_image["vmem"]["reads"] = vmem_reads
    per_phase = {phase: {n: {"reads": 0, "writes": 0} for n in MEMORY_NAMES} for phase in ("events", "fire", "host")}
    per_phase["events"]["vmem"]["reads"] = 0.9 * sum(vmem_reads)   # the fire phase issues the rest
    per_phase["fire"]["vmem"]["reads"] = 0.1 * sum(vmem_reads)
    path.write_text(json.dumps({"images": images, "memories": memories, "per_image": per_image, "per_phase": per_phase}))


def hand_made_row(inverter_run, tmp_path) -> tuple:
    """The gate row of the inverter's activity with hand-made RTL counters (4 images: +0.1 cycle and +0.1 vmem read
    per SOP, MACs playing no part) and a hand-made access-count file."""
    import numpy as np

    from hardware.inference_energy import Measurements, hardware_row
    from hardware.memory_model import AccessEnergyModel, Memories, SramArea, SramLeakage, SramModel, read_access_counts
    from spikebench.energy import OpCounts
    from spikebench.results import RowContext

    _, activity, library, constraints = inverter_run
    ours = gate_power(MODULE, library, activity, constraints)
    doubled = gate_power(MODULE, library, activity, constraints, double_count=True)
    power = {"ours": ours, "opensta_rule": doubled, "check": {}, "clock_hz": constraints.clock_mhz * 1e6}
    memory_counts(tmp_path / "memory.json", [400.0, 500.0, 600.0, 500.0])
    model = SramModel(AccessEnergyModel.fit(), 1.0, SramLeakage(40.0, 5.0, 100.0), SramArea(5.59, 0.6))
    memories = Memories.of(read_access_counts(tmp_path / "memory.json"), model)
    context = RowContext("digits", "s", seed=0)
    rtl = context.row("hardware", "rtl", "cnn (conversion)", timesteps=8, accuracy=1.0, test_images=4, ann_accuracy=0.95,
                      ops=OpCounts(spikes=10.0, synops=5000.0, macs=64.0), params=(100, 90), weight_bits=8, hw_cycles_per_image=1000.0,
                      hw_clock_mhz=constraints.clock_mhz, extra={"golden_accuracy": 0.93, "golden_test_images": 360,
                             "phase_cycles_per_image": {"events": 800.0, "fire": 200.0}})
    images = {"cycles": np.array([900.0, 1000.0, 1100.0, 1000.0]), "sops": np.array([4000.0, 5000.0, 6000.0, 5000.0]),
              "macs": np.array([64.0, 60.0, 68.0, 64.0])}
    gate = {"images": 1, "runs": [{"cycles": 150}], "timesteps": 2, "model_timesteps": 8, "mismatches": 0}
    synth = {"clock_mhz": constraints.clock_mhz, "max_clock_mhz": 120.0, "area_mm2": 0.5, "cells": 1, "flops": 0}
    golden = Predictions.of(np.arange(360) % 10)
    row, report = hardware_row(Measurements(rtl, images, gate, synth, activity), power, memories, 1.0, context, golden)
    assert row.test_images == 360 and row.predictions is golden and row.headline  # the golden model on the whole split
    return row, report, power, memories


def test_energy_per_inference_by_term_bracket_energy_per_sop_and_45nm(inverter_run, tmp_path):
    """The results row: logic cells x cycles of one inference at the model's T, the wire allowance, memories from
    exact counts with leakage over the latency, in `hw_energy_per_image_j` (180 nm); the bracket (our rule .. OpenSTA's
    rule + wires); the incremental energy per SOP; the 45 nm op model in `energy_per_image_j` as in every row; the
    x1/16 ideal-scaling bound; and the leaderboard's hardware table beside the published chips."""
    import yaml

    from hardware.power_model import HW_NODE
    from leaderboard.tables import hardware_table
    from spikebench import paths
    from spikebench.energy import energy_joules
    from spikebench.results import rows_frame, write_rows

    activity = inverter_run[1]
    row, report, power, memories = hand_made_row(inverter_run, tmp_path)
    ours, doubled, clock_hz = power["ours"], power["opensta_rule"], power["clock_hz"]
    cycles = 1000.0 + (activity.cycles - 150)      # the RTL's core cycles + this run's host cycles per image
    dynamic = ours.internal_j + ours.switching_j
    cells = (dynamic + ours.leakage_w / clock_hz) * cycles
    vmem_read = memories.model.read_pj(64, 4096) * 1e-12
    memory_leak = 64 * 4096 * 40e-12 + 6 * 16 * 16 * 40e-12
    total = cells + dynamic * cycles + 500 * vmem_read + memory_leak * cycles / clock_hz
    assert row.hw_energy_per_image_j == pytest.approx(total) == report["energy_per_image_j"]["total"]
    terms = row.extra["energy_per_image_j_terms"]
    assert (terms["logic_cells"], terms["wire_allowance"], terms["memory_dynamic"]) == pytest.approx((cells, dynamic * cycles, 500 * vmem_read))
    low, high = row.extra["energy_per_image_j_range"]["low"], row.extra["energy_per_image_j_range"]["high"]
    assert low == pytest.approx(cells + 500 * vmem_read + memory_leak / 8 * cycles / clock_hz)
    opensta_cells = (doubled.internal_j + doubled.switching_j + ours.leakage_w / clock_hz) * cycles
    assert high == pytest.approx(opensta_cells + dynamic * cycles + 500 * vmem_read + memory_leak * 2.5 * cycles / clock_hz)
    assert low < row.hw_energy_per_image_j < high
    # incremental energy per SOP: +0.1 cycle and +0.1 vmem read per SOP in these images, MACs play no part
    per_cycle = (dynamic * 2 + ours.leakage_w / clock_hz) + memory_leak / clock_hz
    assert row.extra["energy_per_sop_j"] == pytest.approx(0.1 * per_cycle + 0.1 * vmem_read, rel=1e-6)
    assert row.extra["energy_per_mac_j"] == pytest.approx(0.0, abs=1e-9 * total)
    parts = row.extra["energy_per_image_j_fixed"] + row.extra["energy_per_image_j_input_macs"] + row.extra["energy_per_image_j_synaptic"]
    assert parts == pytest.approx(total)
    assert row.extra["energy_per_sop_j_total"] == pytest.approx(total / 5000.0)
    assert row.energy_per_image_j == pytest.approx(energy_joules(64.0, 5000.0))  # the 45 nm op model, not the measurement
    assert (row.hw_node, row.hw_clock_mhz, row.hw_cycles_per_image) == (HW_NODE, clock_hz / 1e6, 1000.0)
    assert row.extra["energy_per_image_j_45nm"] == pytest.approx(row.hw_energy_per_image_j / 16)
    assert "ideal-scaling bound" in row.extra["scaling_rule"]
    assert row.extra["area_total_mm2"] == pytest.approx(0.5 + memories.area_mm2)
    assert report["memories"]["vmem"]["reads_per_image"] == 500 and "vmem" in row.extra["memories"]
    phases = row.extra["energy_per_image_j_by_phase"]                        # cycles and energy by phase add up
    assert sum(p["cycles"] for p in phases.values()) == pytest.approx(cycles)
    assert sum(p["logic_j"] for p in phases.values()) == pytest.approx(cells + dynamic * cycles)
    assert phases["events"]["memory_j"] == pytest.approx(450 * vmem_read) and phases["fire"]["memory_j"] == pytest.approx(50 * vmem_read)
    assert row.extra["images_per_s"] == pytest.approx(clock_hz / 1000.0)
    assert (row.accuracy, row.test_images) == (0.93, 360) and row.extra["activity_scaled"] and row.headline is True
    assert not {"node", "clock_mhz", "leaderboard", "model_path", "cycles_per_image", "sram_pj_per_bit"} & set(row.extra)
    write_rows(tmp_path / "hw.json", [row])
    table = hardware_table(rows_frame([tmp_path / "hw.json"]), yaml.safe_load(paths.PRIOR_ART.read_text()))
    assert "(measured; gate-level activity of T=2" in table and "ODIN (published)" in table and "45 nm-scaled" in table


def test_energy_per_sop_falls_back_to_total_per_sop_without_per_image_counts(tmp_path):
    import numpy as np

    from hardware.inference_energy import InferenceEnergy, Measurements, sop_energy
    from hardware.memory_model import AccessEnergyModel, Memories, SramArea, SramLeakage, SramModel, read_access_counts

    memory_counts(tmp_path / "memory.json", [400.0, 600.0])
    raw = json.loads((tmp_path / "memory.json").read_text())
    del raw["per_image"]
    (tmp_path / "memory.json").write_text(json.dumps(raw))
    model = SramModel(AccessEnergyModel.fit(), 1.0, SramLeakage(40.0, 5.0, 100.0), SramArea(5.59, 0.6))
    memories = Memories.of(read_access_counts(tmp_path / "memory.json"), model)
    energy = InferenceEnergy(1e-12, 2e-12, 1e-12, 1.0, memories.dynamic_j, {"low": 0.0, "nominal": 0.0, "high": 0.0}, 1000.0, 0.0, 1e8)

    class Rtl:
        synops_per_image, macs_per_image = 5000.0, 64.0

    columns = {"cycles": np.array([900.0, 1100.0]), "sops": np.array([4000.0, 6000.0]), "macs": np.array([60.0, 68.0])}
    sop = sop_energy(Measurements(Rtl(), columns, {}, {}, None), energy, memories)
    assert sop["energy_per_sop_j"] == sop["energy_per_sop_j_total"] == pytest.approx(energy.total_j / 5000.0)
    assert "no per_image counts" in sop["energy_per_sop_definition"]
