"""Gate-level power of the mapped core from real switching activity.

* `read_activity`: per-net rising / falling transitions and static probability (time at 1)
  from the simulator's value-change dumps (pywellen), keyed by the netlist's bit ids.
* `gate_power`: our figure from the Liberty tables:
    - internal energy per output transition from the NLDM `internal_power` table of the
      driving pin, at the net's load and the related input's slew (rise table for a rising
      output, fall table for a falling one; related pins weighted by their own toggles),
      plus the input pins' own (passive) tables per input transition;
    - switching energy ½·C·V² per transition of every net, C = the input-pin capacitances
      it drives (+ the output load on ports; no wire load model in this library);
      clock and port-driven nets included and reported separately;
    - leakage: the cells' `cell_leakage_power`.
  Slews are propagated through the netlist from the transition tables.
* `opensta_power`: OpenSTA `report_power` with the same per-pin activity, as a cross-check.
  OpenSTA 2.0.17 gives port-driven nets no switching power and charges rise + fall
  internal energy on every transition (about 2x ours); switching and leakage must agree.
* `memory_accesses`: reads and writes of every behavioural memory in a gate-level window
  (its `re`/`we` high for a cycle = one access): a check of the netlist's enables only.
  Memory energy comes from the exact counts of whole inferences (`hardware.memory_model`).
* `compute_power`: both logic figures and the OpenSTA check, per simulated cycle at the
  synthesis clock.
Energy per inference, by term, and the result row: `hardware.inference_energy`.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.config import Constraints
from hardware.synthesis.flow import LIBERTY, SOURCE_CELL, require_tool, sram_cell_name
from hardware.synthesis.liberty import Library, read_liberty
from spikebench.errors import SpikebenchError

DUMP_SCOPE = "snn_tb.dut"
ACTIVITY_FILE = "activity.npz"     # in the gate_sim stage's folder (spikebench.paths.GATE_DIR)
HW_NODE = "180 nm (OSU 0.18 um)"   # the `hw_node` of the measured rows
VOLTAGE_V = 1.8


# ---------------------------------------------------------------- activity from dumps
@dataclass
class Activity:
    """Transitions of every net bit over the simulated time (all dumps summed)."""

    bits: np.ndarray        # netlist bit ids
    rises: np.ndarray       # 0 -> 1 transitions
    falls: np.ndarray       # 1 -> 0 transitions
    high: np.ndarray        # time at 1 (ns)
    duration_ns: float
    period_ns: float        # simulation clock period

    @property
    def toggles(self) -> np.ndarray:
        return self.rises + self.falls

    @property
    def cycles(self) -> float:
        return self.duration_ns / self.period_ns

    def per_bit(self) -> dict[int, tuple[float, float, float]]:
        """bit -> (rises per cycle, falls per cycle, static probability)."""
        c = self.cycles
        return {int(b): (r / c, f / c, h / self.duration_ns) for b, r, f, h in zip(self.bits, self.rises, self.falls, self.high, strict=True)}

    def save(self, path: str | Path) -> None:
        import io

        from spikebench.io import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez_compressed(buffer, bits=self.bits, rises=self.rises, falls=self.falls, high=self.high,
                            duration_ns=self.duration_ns, period_ns=self.period_ns)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Activity:
        if not Path(path).exists():
            raise SpikebenchError(f"{path}: activity file missing; run the gate_sim stage (dvc repro gate_sim)")
        z = np.load(path)
        return cls(z["bits"], z["rises"], z["falls"], z["high"], float(z["duration_ns"]), float(z["period_ns"]))


def _count(changes: list[tuple[int, object]], end: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rises, falls and time at 1 of each bit of one signal (x/z values break the chain)."""
    rises, falls, high = np.zeros(width), np.zeros(width), np.zeros(width)
    prev, since = None, 0
    for t, value in changes:
        v = value if isinstance(value, int) else None
        if prev is not None:
            if width == 1:
                high[0] += (t - since) * prev
            else:
                for i in range(width):
                    high[i] += (t - since) * ((prev >> i) & 1)
        if prev is not None and v is not None and v != prev:
            if width == 1:
                rises[0] += v > prev
                falls[0] += v < prev
            else:
                diff = prev ^ v
                for i in range(width):
                    if (diff >> i) & 1:
                        rises[i] += (v >> i) & 1
                        falls[i] += (prev >> i) & 1
        prev, since = v, t
    if prev is not None:
        for i in range(width):
            high[i] += (end - since) * ((prev >> i) & 1)
    return rises, falls, high


def netlist_module(netlist_json: str | Path, top: str = "snn_core") -> dict:
    try:
        return json.loads(Path(netlist_json).read_text())["modules"][top]
    except FileNotFoundError:
        raise SpikebenchError(f"{netlist_json}: netlist JSON missing; run the synth stage (dvc repro synth)") from None


def _count_bit(changes: list[tuple[int, object]], end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_count` of a one-bit signal, vectorised; x/z values (before reset) fall back to `_count`."""
    try:  # fromiter over the flattened pairs: ~10x faster than np.array on a list of tuples
        data = np.fromiter(itertools.chain.from_iterable(changes), dtype=np.int64, count=2 * len(changes)).reshape(-1, 2)
    except (TypeError, ValueError):
        return _count(changes, end, 1)
    times, values = data[:, 0], data[:, 1]
    step = np.diff(values)
    high = float(np.sum(np.diff(np.append(times, end)) * values))
    return np.array([np.sum(step > 0)], float), np.array([np.sum(step < 0)], float), np.array([high])


def read_activity(dumps: list[Path], netlist_json: str | Path | None, period_ns: float, scope: str = DUMP_SCOPE,
                  module: dict | None = None) -> Activity:
    """Per-net activity summed over value-change dumps of the core's scope (VCD: pywellen
    loads FST signals one at a time, far slower for a whole netlist)."""
    import pywellen

    module = module or netlist_module(netlist_json)
    names = {name: info["bits"] for name, info in module["netnames"].items()}
    totals: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    duration = 0.0
    for dump in dumps:
        if not Path(dump).exists():
            raise SpikebenchError(f"{dump}: no waveform dump written by the simulator; check the simulation log next to it")
        wave = pywellen.Waveform(str(dump))
        scale = wave.timescale.factor * 10.0 ** (wave.timescale.unit.to_exponent() + 9)  # dump units -> ns
        matched = {}
        for var in wave.all_vars():
            name = var.full_name[len(scope) + 1:].lstrip("\\").strip()
            if var.full_name.startswith(scope + ".") and "." not in name and name in names and len(names[name]) == var.bitwidth:
                matched[name] = var
        end = max((c[-1][0] for c in (v.tv for v in matched.values()) if c), default=0)  # the last change of any net
        for name, var in matched.items():
            c = var.tv  # pywellen parses a VCD body once; one signal's changes at a time keeps memory small
            r, f, h = _count_bit(c, end) if len(names[name]) == 1 else _count(c, end, len(names[name]))
            for i, bit in enumerate(names[name]):
                if isinstance(bit, int):
                    acc = totals[bit]
                    acc[0] += r[i]
                    acc[1] += f[i]
                    acc[2] += h[i] * scale
        duration += end * scale
    if not totals:
        raise SpikebenchError(f"{dumps[0] if dumps else 'dumps'}: no net of {scope} found in the waveform; is the dump of this netlist?")
    keys = np.array(sorted(totals), dtype=np.int64)
    data = np.array([totals[k] for k in keys], dtype=np.float64)
    return Activity(keys, data[:, 0], data[:, 1], data[:, 2], duration, period_ns)


# ---------------------------------------------------------------- the netlist as a graph
@dataclass
class Pin:
    cell: str
    pin: str


@dataclass
class Netlist:
    """Connectivity of the mapped core (yosys JSON): cells, drivers and loads of every bit."""

    cells: dict[str, dict]                              # name -> {"type", "connections", "port_directions"}
    drivers: dict[int, Pin] = field(default_factory=dict)
    loads: dict[int, list[Pin]] = field(default_factory=lambda: defaultdict(list))
    input_ports: dict[int, str] = field(default_factory=dict)
    output_ports: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, module: dict) -> Netlist:
        net = cls(module["cells"])
        for port, info in module["ports"].items():
            for i, bit in enumerate(info["bits"]):
                if isinstance(bit, int):
                    (net.input_ports if info["direction"] == "input" else net.output_ports)[bit] = f"{port}[{i}]" if len(info["bits"]) > 1 else port
        for name, cell in module["cells"].items():
            for pin, bits in cell["connections"].items():
                for i, bit in enumerate(bits):
                    if not isinstance(bit, int):
                        continue
                    pin_name = f"{pin}[{i}]" if len(bits) > 1 else pin
                    if cell["port_directions"][pin] == "output":
                        net.drivers[bit] = Pin(name, pin_name)
                    else:
                        net.loads[bit].append(Pin(name, pin_name))
        return net

    def pin_bits(self, cell: str) -> dict[str, int | str]:
        """pin (bus bits expanded) -> bit id or constant."""
        out = {}
        for pin, bits in self.cells[cell]["connections"].items():
            for i, bit in enumerate(bits):
                out[f"{pin}[{i}]" if len(bits) > 1 else pin] = bit
        return out


def liberty_cell_type(cell: dict) -> str:
    """Liberty name of a netlist cell (memories: their macro per shape, see synthesis/flow.py)."""
    if cell["type"] == "snn_sram":
        return sram_cell_name(int(cell["parameters"]["W"], 2), int(cell["parameters"]["A"], 2))
    return cell["type"]


def check_cells(netlist: Netlist, library: Library) -> None:
    """Every netlist cell must be in the Liberty file (one-line error naming the cell)."""
    for name, cell in netlist.cells.items():
        if liberty_cell_type(cell) not in library.cells:
            raise SpikebenchError(f"netlist cell {name} of type {liberty_cell_type(cell)!r} is not in the Liberty library "
                                  f"{library.name}; re-synthesise against {LIBERTY.name}")


def net_loads(netlist: Netlist, library: Library, output_load_pf: float) -> dict[int, float]:
    """Capacitance (pF) on every bit: input pins it drives, plus the output load on ports."""
    load: dict[int, float] = defaultdict(float)
    for bit, pins in netlist.loads.items():
        for p in pins:
            load[bit] += library.cells[liberty_cell_type(netlist.cells[p.cell])].inputs.get(p.pin, 0.0)
    for bit in netlist.output_ports:
        load[bit] += output_load_pf
    return load


def net_slews(netlist: Netlist, library: Library, loads: dict[int, float], input_slew_ns: float) -> dict[int, float]:
    """Transition time (ns, mean of rise and fall) of every driven bit, in topological order."""
    slew: dict[int, float] = {bit: input_slew_ns for bit in netlist.input_ports}
    pending: dict[str, int] = {}
    waiting: dict[int, list[str]] = defaultdict(list)
    ready = []
    for name, cell in netlist.cells.items():
        lib_cell = library.cells[liberty_cell_type(cell)]
        if lib_cell.sequential or not lib_cell.inputs or cell["type"] == "snn_sram":
            ready.append(name)  # outputs depend on the clock only
            continue
        inputs = [b for p, b in netlist.pin_bits(name).items() if p in lib_cell.inputs and isinstance(b, int) and b in netlist.drivers]
        pending[name] = len(inputs)
        for b in inputs:
            waiting[b].append(name)
        if not inputs:
            ready.append(name)
    while ready:
        name = ready.pop()
        cell = netlist.cells[name]
        lib_cell = library.cells[liberty_cell_type(cell)]
        bits = netlist.pin_bits(name)
        for pin, out in lib_cell.outputs.items():
            bit = bits.get(pin)
            if not isinstance(bit, int):
                continue
            values = []
            for related, (rise, fall) in out.transition.items():
                s = input_slew_ns if lib_cell.sequential else slew.get(bits.get(related), input_slew_ns)
                point = {"load": loads.get(bit, 0.0), "slew": s}
                values.append(0.5 * (rise.lookup(**point) + fall.lookup(**point)))
            slew[bit] = max(values) if values else input_slew_ns
            for nxt in waiting.get(bit, []):
                pending[nxt] -= 1
                if pending[nxt] == 0:
                    ready.append(nxt)
    return slew


# ---------------------------------------------------------------- our power figure
@dataclass
class PowerBreakdown:
    """Energy per simulated clock cycle (J) by kind, and leakage (W)."""

    internal_j: float
    switching_j: float
    leakage_w: float
    switching_clock_j: float        # the clock net (port driven)
    switching_ports_j: float        # all port-driven nets, clock included
    switching_memory_out_j: float   # nets driven by memory read data
    cycles: float
    cells: int

    def power_w(self, clock_hz: float) -> dict[str, float]:
        dyn = (self.internal_j + self.switching_j) * clock_hz
        return {"internal": self.internal_j * clock_hz, "switching": self.switching_j * clock_hz, "leakage": self.leakage_w,
                "total": dyn + self.leakage_w}


def gate_power(module: dict, library: Library, activity: Activity, constraints: Constraints,
               double_count: bool = False) -> PowerBreakdown:
    """Our table-based power (see the module docstring); energies per clock cycle.

    `double_count=True` applies OpenSTA 2.0.17's internal-power rule instead (rise + fall
    table energy on every transition), to explain its internal figure."""
    netlist = Netlist.from_json(module)
    check_cells(netlist, library)
    loads = net_loads(netlist, library, constraints.output_load_pf)
    slews = net_slews(netlist, library, loads, constraints.input_slew_ns)
    rate = {int(b): (r, f) for b, r, f in zip(activity.bits, activity.rises / activity.cycles, activity.falls / activity.cycles, strict=True)}
    v2 = library.voltage ** 2
    pj = 1e-12

    switching = clock = ports = memory_out = 0.0
    for bit, cap in loads.items():
        r, f = rate.get(bit, (0.0, 0.0))
        energy = 0.5 * cap * v2 * (r + f) * pj
        switching += energy
        if bit in netlist.input_ports:
            ports += energy
            if netlist.input_ports[bit] == "clk":
                clock += energy
        driver = netlist.drivers.get(bit)
        if driver is not None and netlist.cells[driver.cell]["type"] == "snn_sram":
            memory_out += energy

    internal = leakage = 0.0
    for name, cell in netlist.cells.items():
        lib_cell = library.cells[liberty_cell_type(cell)]
        leakage += lib_cell.leakage_nw * 1e-9
        bits = netlist.pin_bits(name)
        for pin, (rise_t, fall_t) in lib_cell.input_energy.items():
            bit = bits.get(pin)
            if isinstance(bit, int):
                r, f = rate.get(bit, (0.0, 0.0))
                s = slews.get(bit, constraints.input_slew_ns)
                e_r, e_f = rise_t.lookup(slew=s), fall_t.lookup(slew=s)
                internal += ((r + f) * (e_r + e_f) if double_count else r * e_r + f * e_f) * pj
        for pin, out in lib_cell.outputs.items():
            bit = bits.get(pin)
            if not isinstance(bit, int) or not out.energy:
                continue
            r, f = rate.get(bit, (0.0, 0.0))
            if r + f == 0:
                continue
            weights = {rel: sum(rate.get(bits.get(rel), (0.0, 0.0))) for rel in out.energy}
            total = sum(weights.values()) or float(len(weights))
            e_rise = e_fall = 0.0
            for rel, (rise_t, fall_t) in out.energy.items():
                w = (weights[rel] if sum(weights.values()) else 1.0) / total
                point = {"load": loads.get(bit, 0.0), "slew": slews.get(bits.get(rel), constraints.input_slew_ns)}
                e_rise += w * rise_t.lookup(**point)
                e_fall += w * fall_t.lookup(**point)
            internal += ((r + f) * (e_rise + e_fall) if double_count else r * e_rise + f * e_fall) * pj
    return PowerBreakdown(internal, switching, leakage, clock, ports, memory_out, activity.cycles,
                          sum(1 for c in netlist.cells.values() if c["type"] != "snn_sram"))


# ---------------------------------------------------------------- memories
@dataclass
class MemoryAccesses:
    """Accesses seen on the memories' enables in a gate-level window: a check of the netlist,
    not an energy input (the power stage uses the exact counts of whole inferences)."""

    reads: dict[str, float]       # instance -> read accesses over the simulation
    writes: dict[str, float]
    widths: dict[str, int]

    @property
    def bits_accessed(self) -> float:
        return sum((self.reads[m] + self.writes[m]) * self.widths[m] for m in self.widths)


def memory_accesses(module: dict, activity: Activity) -> MemoryAccesses:
    """A memory's enable high during one clock cycle is one access (enables are synchronous)."""
    duty = {int(b): h / activity.duration_ns for b, h in zip(activity.bits, activity.high, strict=True)}
    reads, writes, widths = {}, {}, {}
    for name, cell in module["cells"].items():
        if cell["type"] != "snn_sram":
            continue
        widths[name] = int(cell["parameters"]["W"], 2)
        for port, store in (("re", reads), ("we", writes)):
            (bit,) = cell["connections"][port]
            store[name] = duty.get(bit, 0.0) * activity.cycles if isinstance(bit, int) else (activity.cycles if bit == "1" else 0.0)
    return MemoryAccesses(reads, writes, widths)


# ---------------------------------------------------------------- OpenSTA cross-check
_POWER_LINE = re.compile(r"^Total\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)", re.M)


@dataclass
class StaPower:
    internal_w: float
    switching_w: float
    leakage_w: float
    total_w: float


_INPUT_DECL = re.compile(r"^(\s*)input(\s+(?:\[(\d+):(\d+)\]\s*)?(\S+)\s*;)", re.M)


def power_netlist(sta_netlist: Path, path: Path, clock: str = "clk", top: str = "snn_core") -> None:
    """The netlist OpenSTA's power report reads: every non-clock input port and every
    constant becomes a net driven by a clocked source cell (`SOURCE_CELL`).

    OpenSTA 2.0.17 seeds its activity propagation at non-clock roots (input ports,
    constant-tied pins such as DFFSR.S = 1) and overwrites the annotated activity of
    everything in their fan-out (registers included) with function-evaluated estimates;
    with no such roots, the per-pin annotations are what it reports. Port- and
    constant-driven nets then get no switching power from OpenSTA (as with ports).
    """
    text = Path(sta_netlist).read_text()
    header = re.search(rf"module {top}\s*\(([^;]*)\);", text)
    declared = {m.group(5): (m.group(3), m.group(4)) for m in _INPUT_DECL.finditer(text)}
    inputs = {name: rng for name, rng in declared.items() if name != clock}
    ports = [p.strip() for p in header.group(1).split(",") if p.strip() not in inputs]
    sources = []
    for name, (hi, lo) in inputs.items():
        bits = [f"{name}[{i}]" for i in range(int(lo), int(hi) + 1)] if hi is not None else [name]
        sources += [f"  {SOURCE_CELL} \\__src_{name}_{i}  (.clk({clock}), .y({bit}));" for i, bit in enumerate(bits)]
    body = _INPUT_DECL.sub(lambda m: m.group(0) if m.group(5) == clock else m.group(1) + "wire" + m.group(2), text[header.end():])
    constants = sorted(set(re.findall(r"\((1'h[01])\)", body)))
    for k, const in enumerate(constants):
        body = body.replace(f"({const})", f"(__const{k})")
        sources += [f"  wire __const{k};", f"  {SOURCE_CELL} \\__src_const{k}  (.clk({clock}), .y(__const{k}));"]
    body = body.replace("endmodule", "\n".join(sources) + "\nendmodule", 1)
    Path(path).write_text(text[: header.start()] + f"module {top}({', '.join(ports)});" + body)


def opensta_power(module: dict, sta_netlist: Path, liberties: list[Path], activity: Activity, constraints: Constraints,
                  workdir: Path, top: str = "snn_core") -> StaPower:
    """OpenSTA `report_power` with every cell pin annotated with its net's activity
    (transitions per clock period and duty), at `constraints.clock_mhz`."""
    require_tool("sta")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    netlist = Netlist.from_json(module)
    per_bit = activity.per_bit()
    lines = []
    for name in module["cells"]:
        for pin, bit in netlist.pin_bits(name).items():
            if isinstance(bit, int) and bit in per_bit:
                r, f, duty = per_bit[bit]
                lines.append(f"{{{name}/{pin}}} {r + f:.9g} {min(max(duty, 0.0), 1.0):.9g}")
    (workdir / "activity.txt").write_text("\n".join(lines) + "\n")
    sdc = workdir / "power.sdc"  # the clock only: the power netlist has no other inputs
    sdc.write_text(f"create_clock -name clk -period {constraints.period_ns:.4f} [get_ports clk]\n"
                   f"set_input_transition {constraints.input_slew_ns} [get_ports clk]\n"
                   f"set_load {constraints.output_load_pf} [all_outputs]\n")
    reads = "".join(f"read_liberty {p}\n" for p in liberties)
    power_netlist(sta_netlist, workdir / f"{top}_power.v", top=top)
    script = workdir / "power.tcl"
    script.write_text(
        f"{reads}read_verilog {workdir / f'{top}_power.v'}\nlink_design {top}\nsource {sdc}\n"
        f"set fh [open {workdir / 'activity.txt'}]\n"
        "while {[gets $fh line] >= 0} {\n"
        "  lassign $line pin activity duty\n"
        "  sta::set_power_pin_activity [get_pins $pin] $activity $duty\n"
        "}\nclose $fh\nreport_power -digits 8\nexit\n")
    result = subprocess.run(["sta", "-no_init", "-no_splash", "-exit", str(script)], capture_output=True, text=True, timeout=1800)
    (workdir / "power.log").write_text(result.stdout + result.stderr)
    match = _POWER_LINE.search(result.stdout)
    errors = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.startswith("Error")]
    if result.returncode != 0 or match is None or errors:
        raise SpikebenchError(f"OpenSTA report_power failed ({(errors or ['no power report'])[0]}); see {workdir / 'power.log'}")
    return StaPower(*(float(match.group(i)) for i in range(1, 5)))


def load_library(*extra: Path) -> Library:
    return read_liberty(LIBERTY, *extra)


# ---------------------------------------------------------------- the stage's figures
def relative_difference(ours: float, reference: float) -> float:
    return abs(ours - reference) / abs(reference) if reference else float(ours != 0)


def opensta_check(ours: PowerBreakdown, opensta_rule: PowerBreakdown, sta: StaPower, clock_hz: float) -> dict:
    """Our figures beside OpenSTA's, on what both charge (switching, leakage) and with its internal rule."""
    comparable = (ours.switching_j - ours.switching_ports_j - ours.switching_memory_out_j) * clock_hz
    return {
        "switching_ours_w": comparable, "switching_opensta_w": sta.switching_w,
        "switching_rel_diff": relative_difference(comparable, sta.switching_w),
        "leakage_ours_w": ours.leakage_w, "leakage_opensta_w": sta.leakage_w,
        "leakage_rel_diff": relative_difference(ours.leakage_w, sta.leakage_w),
        "internal_ours_w": ours.internal_j * clock_hz, "internal_opensta_w": sta.internal_w,
        "internal_ratio_opensta_over_ours": sta.internal_w / (ours.internal_j * clock_hz) if ours.internal_j else float("nan"),
        "internal_ours_with_opensta_rule_w": opensta_rule.internal_j * clock_hz,
        "internal_opensta_rule_rel_diff": relative_difference(opensta_rule.internal_j * clock_hz, sta.internal_w),
        "note": "switching compared on the nets OpenSTA 2.0.17 charges (it gives port-driven nets, the clock included, and "
                "memory-macro outputs no switching power); its internal power charges rise+fall table energy on every "
                "transition, reproduced by our calculation with that rule",
    }


def compute_power(netlist_dir: Path, activity: Activity, synth: dict, workdir: Path) -> dict:
    """Our logic figure with both internal-power rules and the OpenSTA cross-check, per simulated
    cycle and at f_clk (`synth`: reports/hardware_synth.json, whose `clock_mhz` is the target clock)."""
    module = netlist_module(netlist_dir / "snn_core.json")
    macros = netlist_dir / "snn_sram_macros.lib"
    library = load_library(macros)
    constraints = Constraints(clock_mhz=synth["clock_mhz"], input_slew_ns=synth["input_slew_ns"], output_load_pf=synth["output_load_pf"])
    clock_hz = synth["clock_mhz"] * 1e6
    ours = gate_power(module, library, activity, constraints)
    opensta_rule = gate_power(module, library, activity, constraints, double_count=True)
    sta = opensta_power(module, netlist_dir / "snn_core_sta.v", [LIBERTY, macros], activity, constraints, workdir)
    return {"ours": ours, "opensta_rule": opensta_rule, "check": opensta_check(ours, opensta_rule, sta, clock_hz), "clock_hz": clock_hz}
