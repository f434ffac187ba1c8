"""Power from Liberty tables on a single cell, checked by hand; OpenSTA's internal-power rule;
bad netlists."""

from __future__ import annotations

import subprocess

import pytest

from hardware.config import Constraints, SramTiming
from hardware.power_model import gate_power, load_library, opensta_power, read_activity
from hardware.synthesis.flow import CELL_MODELS, LIBERTY, write_sram_liberty
from spikebench.errors import SpikebenchError

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


def test_energy_per_inference_scales_to_the_full_run_and_to_45nm(inverter_run, tmp_path):
    """The results row: energy per simulated cycle x cycles of one inference at the model's T in
    `hw_energy_per_image_j` (180 nm), the 45 nm op model in `energy_per_image_j` as in every row,
    the 45 nm-scaled measurement at 1/16, and the leaderboard's hardware table beside the published chips."""
    import yaml

    from hardware.power_model import HW_NODE, hardware_row, memory_accesses
    from leaderboard.tables import hardware_table
    from spikebench import paths
    from spikebench.energy import OpCounts, energy_joules
    from spikebench.results import RowContext, rows_frame, write_rows

    _, activity, library, constraints = inverter_run
    ours = gate_power(MODULE, library, activity, constraints)
    clock_hz = constraints.clock_mhz * 1e6
    power = {"ours": ours, "check": {}, "memories": memory_accesses(MODULE, activity), "clock_hz": clock_hz, "memory_j_per_cycle": 1e-12}
    context = RowContext("digits", "s", seed=0)
    rtl = context.row("hardware", "rtl", "cnn (conversion)", timesteps=8, accuracy=1.0, test_images=2, ann_accuracy=0.95,
                      ops=OpCounts(spikes=10.0, synops=5000.0, macs=64.0), params=(100, 90), weight_bits=8, hw_cycles_per_image=1000.0,
                      hw_clock_mhz=constraints.clock_mhz, extra={"golden_accuracy": 0.93, "golden_test_images": 360})
    gate = {"images": 1, "runs": [{"cycles": 150}], "timesteps": 2, "model_timesteps": 8, "mismatches": 0}
    synth = {"clock_mhz": constraints.clock_mhz, "max_clock_mhz": 120.0, "area_mm2": 0.5, "cells": 1, "flops": 0, "memory_bits": 0}
    row, report = hardware_row(rtl, gate, synth, power, activity, 2.5, context)
    per_cycle = ours.internal_j + ours.switching_j + ours.leakage_w / clock_hz + 1e-12
    cycles = 1000.0 + (activity.cycles - 150)      # the RTL's core cycles + this run's host cycles per image
    assert row.hw_energy_per_image_j == pytest.approx(per_cycle * cycles) == report["energy_per_image_j"]["total"]
    assert row.energy_per_image_j == pytest.approx(energy_joules(64.0, 5000.0))  # the 45 nm op model, not the measurement
    assert (row.hw_node, row.hw_clock_mhz, row.hw_cycles_per_image) == (HW_NODE, constraints.clock_mhz, 1000.0)
    assert row.extra["energy_per_image_j_45nm"] == pytest.approx(row.hw_energy_per_image_j / 16)
    assert row.extra["energy_per_sop_j"] == pytest.approx(row.hw_energy_per_image_j / 5000.0)
    assert row.extra["images_per_s"] == pytest.approx(clock_hz / 1000.0)
    assert (row.accuracy, row.test_images) == (0.93, 360) and row.extra["activity_scaled"] and row.headline is False
    assert not {"node", "clock_mhz", "leaderboard", "model_path", "cycles_per_image"} & set(row.extra)
    write_rows(tmp_path / "hw.json", [row])
    table = hardware_table(rows_frame([tmp_path / "hw.json"]), yaml.safe_load(paths.PRIOR_ART.read_text()))
    assert "(measured; gate-level activity of T=2" in table and "ODIN (published)" in table and "45 nm-scaled" in table
