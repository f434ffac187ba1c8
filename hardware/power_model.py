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
* `inference_energy` / `hardware_row`: energy of one inference at the model's T, by term:
    - logic cells: energy per simulated cycle × cycles of one inference (RTL-measured core
      cycles + the testbench's host cycles per image; when the gate-level run covered fewer
      steps than T this extrapolates the activity of those steps to all of them);
    - wire-load / clock-tree allowance: `wire_load_factor` × the cells' dynamic energy (the
      library has no wire-load model and the clock is an ideal net);
    - memories: exact reads and writes per image × the size-dependent energy per access,
      plus SRAM leakage over the inference latency;
    - a bracket: low = our Liberty rule, no wires, low SRAM leakage; high = OpenSTA 2.0.17's
      rise+fall internal rule, the wire allowance, high SRAM leakage;
    - energy per SOP as the chips it is set beside report it: the slope of energy per
      image against SOPs across the simulated images (least squares with MACs), the fixed
      per-inference phases (intercept) and the analog input phase (MAC term) apart.
  The nominal 180 nm total is the row's `hw_energy_per_image_j`; its `energy_per_image_j`
  is the 45 nm op model as in every row; the ×1/16 ideal-scaling bound at 45 nm is in `extra`.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hardware.config import Constraints
from hardware.memory_model import NODE_SCALE_180_TO_45, Memories
from hardware.synthesis.flow import LIBERTY, SOURCE_CELL, require_tool, sram_cell_name
from hardware.synthesis.liberty import Library, read_liberty
from spikebench.errors import SpikebenchError
from spikebench.results import ResultRow, RowContext

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


@dataclass(frozen=True)
class RowOps:
    """`RowContext.row(ops=...)` for the gate row: the RTL row's op counts and its 45 nm op-model energy."""

    spikes: float
    synops: float
    macs: float
    energy_j: float

    @classmethod
    def of(cls, rtl: ResultRow) -> RowOps:
        return cls(rtl.spikes_per_image, rtl.synops_per_image, rtl.macs_per_image, rtl.energy_per_image_j)


@dataclass(frozen=True)
class Measurements:
    """What the power stage reads besides the netlist: the RTL row and its per-image counters
    (reports/hardware_rtl_images.json `images`), the gate-level report, the synthesis report
    and the gate-level activity."""

    rtl: ResultRow
    rtl_images: dict[str, np.ndarray]   # per-image "cycles", "sops", "macs" (`rtl_image_columns`)
    gate: dict
    synth: dict
    activity: Activity


def rtl_image_columns(report: dict, path: Path | str) -> dict[str, np.ndarray]:
    """Per-image cycles, SOPs and MACs of reports/hardware_rtl_images.json, whether it holds
    columns (`"cycles": [...]`) or one record per image (`"images": [{"cycles": ...}, ...]`)."""
    records = report.get("images")
    try:
        if isinstance(records, list):
            return {k: np.array([float(r[k]) for r in records]) for k in ("cycles", "sops", "macs")}
        return {k: np.asarray(report[k], dtype=np.float64) for k in ("cycles", "sops", "macs")}
    except (KeyError, TypeError, ValueError):
        raise SpikebenchError(f"{path}: no per-image cycles, sops and macs; re-run the rtl_sim stage (dvc repro rtl_sim)") from None


@dataclass(frozen=True)
class InferenceEnergy:
    """Energy of one inference at the model's T (J), by term; per-cycle terms × cycles per image."""

    cells_j_cycle: float            # logic cells, our Liberty rule: internal + switching + leakage
    cells_opensta_j_cycle: float    # the same with OpenSTA 2.0.17's rise+fall internal rule
    dynamic_j_cycle: float          # internal + switching (our rule): what the wire allowance scales
    wire_load_factor: float
    memory_dynamic_j: float         # exact access counts × size-dependent energy per access
    memory_leakage_w: dict[str, float]  # low / nominal / high
    core_cycles: float              # the RTL's mean cycles per image at the model's full T
    host_cycles: float              # the testbench's input load / read-back per image (gate-level run)
    clock_hz: float

    @property
    def cycles(self) -> float:
        return self.core_cycles + self.host_cycles

    @property
    def latency_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def logic_j_cycle(self) -> float:
        """Logic cells + wire allowance per cycle (the nominal logic figure)."""
        return self.cells_j_cycle + self.wire_load_factor * self.dynamic_j_cycle

    @property
    def cells_j(self) -> float:
        return self.cells_j_cycle * self.cycles

    @property
    def wire_j(self) -> float:
        return self.wire_load_factor * self.dynamic_j_cycle * self.cycles

    @property
    def logic_j(self) -> float:
        return self.cells_j + self.wire_j

    def memory_leakage_j(self, which: str = "nominal") -> float:
        return self.memory_leakage_w[which] * self.latency_s

    @property
    def memory_j(self) -> float:
        return self.memory_dynamic_j + self.memory_leakage_j()

    @property
    def total_j(self) -> float:
        return self.logic_j + self.memory_j

    @property
    def low_j(self) -> float:
        """Our Liberty rule, pin capacitances only (no wires, ideal clock), the low SRAM leakage."""
        return self.cells_j + self.memory_dynamic_j + self.memory_leakage_j("low")

    @property
    def high_j(self) -> float:
        """OpenSTA's rise+fall internal rule, the wire allowance, the high SRAM leakage."""
        return self.cells_opensta_j_cycle * self.cycles + self.wire_j + self.memory_dynamic_j + self.memory_leakage_j("high")


def inference_energy(m: Measurements, power: dict, memories: Memories, wire_load_factor: float) -> InferenceEnergy:
    ours, rule, clock_hz = power["ours"], power["opensta_rule"], power["clock_hz"]
    leak_j = ours.leakage_w / clock_hz   # logic leakage per cycle (x period)
    core_cycles_gate = float(np.mean([r["cycles"] for r in m.gate["runs"]]))
    host_cycles = m.activity.cycles / m.gate["images"] - core_cycles_gate
    return InferenceEnergy(
        cells_j_cycle=ours.internal_j + ours.switching_j + leak_j, cells_opensta_j_cycle=rule.internal_j + rule.switching_j + leak_j,
        dynamic_j_cycle=ours.internal_j + ours.switching_j, wire_load_factor=wire_load_factor,
        memory_dynamic_j=memories.dynamic_j, memory_leakage_w={k: memories.leakage_w(k) for k in ("low", "nominal", "high")},
        core_cycles=float(m.rtl.hw_cycles_per_image), host_cycles=host_cycles, clock_hz=clock_hz)


# ---------------------------------------------------------------- energy per SOP
@dataclass(frozen=True)
class SopSplit:
    """Energy per image = fixed + per_mac · MACs + per_sop · SOPs, least squares over the images.

    `per_sop_j` is the incremental energy of one synaptic operation (logic + memory), as the
    chips in the leaderboard report it (ODIN, Frenkel et al. 2019; Loihi, Davies et al. 2018:
    the slope of energy against SOP count); `fixed_j` holds the per-inference phases (clear,
    descriptors, fire, host I/O, leakage), `per_mac_j` the analog input layer."""

    per_sop_j: float
    per_mac_j: float
    fixed_j: float
    images: int
    r2: float


def split_per_sop(energy_j: np.ndarray, sops: np.ndarray, macs: np.ndarray) -> SopSplit | None:
    """`SopSplit` of per-image energies; None where the images cannot separate SOPs (too few, or equal SOPs)."""
    columns, names = [np.ones(len(energy_j))], ["fixed"]
    for name, x in (("sop", sops), ("mac", macs)):
        if np.ptp(x) > 0:   # a constant regressor is part of the fixed energy
            columns.append(np.asarray(x, float))
            names.append(name)
    if "sop" not in names or len(energy_j) <= len(columns):
        return None
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, energy_j, rcond=None)
    fitted = dict(zip(names, coef, strict=True))
    residual = energy_j - design @ coef
    spread = float(np.sum((energy_j - energy_j.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual ** 2)) / spread if spread else 1.0
    return SopSplit(float(fitted["sop"]), float(fitted.get("mac", 0.0)), float(fitted["fixed"]), len(energy_j), r2)


def per_image_energy(m: Measurements, energy: InferenceEnergy, memories: Memories) -> tuple[np.ndarray | None, str]:
    """Total (nominal) energy of each RTL-simulated image: logic and SRAM leakage by its cycles,
    memory accesses from its own counts; None and the reason where the counts are not per image."""
    memory = memories.per_image_dynamic_j()
    if memory is None:
        return None, f"{memories.counts.path} has no per_image counts"
    if len(memory) != len(m.rtl_images["cycles"]):
        return None, f"{memories.counts.path} counts {len(memory)} images, the RTL report {len(m.rtl_images['cycles'])}"
    cycles = m.rtl_images["cycles"] + energy.host_cycles
    leakage = energy.memory_leakage_w["nominal"] / energy.clock_hz
    return cycles * (energy.logic_j_cycle + leakage) + memory, ""


def sop_energy(m: Measurements, energy: InferenceEnergy, memories: Memories) -> dict:
    """Energy per SOP (incremental, see `SopSplit`) and the fixed phases; total/SOPs beside it."""
    sops = m.rtl.synops_per_image
    total_per_sop = energy.total_j / sops if sops else float("nan")
    per_image, reason = per_image_energy(m, energy, memories)
    split = None
    if per_image is not None:
        split = split_per_sop(per_image, m.rtl_images["sops"], m.rtl_images["macs"])
        reason = "" if split else "the simulated images do not vary enough in SOPs to separate them"
    if split is None:
        return {"energy_per_sop_j": total_per_sop, "energy_per_sop_j_total": total_per_sop,
                "energy_per_sop_definition": f"total energy / SOPs (no incremental split: {reason})"}
    return {"energy_per_sop_j": split.per_sop_j, "energy_per_sop_j_total": total_per_sop,
            "energy_per_sop_definition": SOP_DEFINITION.format(images=split.images, r2=split.r2),
            "energy_per_image_j_fixed": split.fixed_j, "energy_per_image_j_input_macs": split.per_mac_j * m.rtl.macs_per_image,
            "energy_per_image_j_synaptic": split.per_sop_j * sops, "energy_per_mac_j": split.per_mac_j, "sop_fit_r2": split.r2}


SOP_DEFINITION = ("incremental energy of one synaptic operation, logic + memory: the slope of energy per image against SOPs "
                  "per image over {images} simulated images (least squares with MACs and an intercept, R² = {r2:.3f}), as ODIN "
                  "(Frenkel et al. 2019) and Loihi (Davies et al. 2018) report it; the fixed per-inference phases (clear, "
                  "descriptors, fire, host I/O, leakage) are energy_per_image_j_fixed, the analog input layer "
                  "energy_per_image_j_input_macs; energy_per_sop_j_total = all energy / SOPs (TrueNorth-style)")
WIRE_SOURCE = ("Magen et al., 'Interconnect-power dissipation in a microprocessor', SLIP 2004: interconnect switching is over "
               "50% of the dynamic power (130 nm, clock grid excluded), i.e. wires about equal to the cells' own dynamic energy; "
               "the OSU 0.18 µm library has no wire-load model and our clock is an ideal net, so this allowance also stands in "
               "for the clock tree")
SCALING_RULE = ("ideal-scaling bound (optimistic): E ∝ C·V², 180 nm/1.8 V -> 45 nm/0.9 V = (45/180)·(0.9/1.8)² = 1/16 "
                "(every capacitance, wires included, scaled with feature size, Dennard et al. 1974; 0.9 V as in Horowitz ISSCC "
                "2014); real wires and leakage scale worse, so a 45 nm chip would spend more")


# ---------------------------------------------------------------- the row and the report
def power_mw(power: dict, energy: InferenceEnergy) -> dict:
    """Average power over one inference (mW) by term."""
    ours, clock_hz, mw = power["ours"], power["clock_hz"], 1e3 / energy.latency_s
    return {"total": energy.total_j * mw, "logic": energy.logic_j * mw, "logic_cells": energy.cells_j * mw,
            "wire_allowance": energy.wire_j * mw, "internal": ours.internal_j * clock_hz * 1e3,
            "switching": ours.switching_j * clock_hz * 1e3, "leakage": ours.leakage_w * 1e3,
            "clock_net": ours.switching_clock_j * clock_hz * 1e3, "memory": energy.memory_j * mw,
            "memory_dynamic": energy.memory_dynamic_j * mw, "memory_leakage": energy.memory_leakage_w["nominal"] * 1e3}


def energy_terms(energy: InferenceEnergy) -> dict:
    """The nominal energy per image by term and the bracket around it (J)."""
    return {
        "energy_per_image_j_logic": energy.logic_j, "energy_per_image_j_memory": energy.memory_j,
        "energy_per_image_j_terms": {"logic_cells": energy.cells_j, "wire_allowance": energy.wire_j,
                                     "memory_dynamic": energy.memory_dynamic_j, "memory_leakage": energy.memory_leakage_j()},
        "energy_per_image_j_range": {
            "low": energy.low_j, "high": energy.high_j,
            "low_is": "our Liberty internal-power rule, pin capacitances only (no wires, ideal clock), low SRAM leakage",
            "high_is": "OpenSTA 2.0.17's rise+fall internal rule, the wire/clock-tree allowance, high SRAM leakage"},
        "logic_cells_energy_per_image_j": {"liberty_rule": energy.cells_j, "opensta_rise_fall_rule": energy.cells_opensta_j_cycle * energy.cycles},
        "wire_load_factor": energy.wire_load_factor, "wire_source": WIRE_SOURCE,
        "energy_per_image_j_45nm": energy.total_j * NODE_SCALE_180_TO_45,
        "energy_per_image_j_45nm_range": [energy.low_j * NODE_SCALE_180_TO_45, energy.high_j * NODE_SCALE_180_TO_45],
        "scaling_rule": SCALING_RULE,
    }


def memory_extra(memories: Memories, energy: InferenceEnergy, m: Measurements) -> dict:
    """The SRAM model, its sources, area beside the logic, and the per-memory table."""
    model = memories.model
    return {
        "sram_model": model.access.formula(), "sram_write_to_read": model.write_to_read,
        "sram_leakage_pw_per_bit": [model.leakage.low_pw_per_bit, model.leakage.pw_per_bit, model.leakage.high_pw_per_bit],
        "sram_um2_per_bit": model.area.um2_per_bit,
        "sram_sources": "energy: Horowitz ISSCC 2014 (45 nm) fitted in capacity, x16 to 180 nm; area: 6T cell of Intel's 180 nm "
                        "process (Yang et al. IEDM 1998) / array efficiency; leakage: assumed range (hardware/README.md, SRAM model)",
        "sram_area_mm2": memories.area_mm2, "area_total_mm2": m.synth["area_mm2"] + memories.area_mm2,
        "memory_bits": memories.bits, "memory_images": memories.counts.images,
        "memories": memories.table(energy.latency_s),
        "memory_energy_extrapolated_fraction": sum(e.dynamic_j for e in memories.energies if e.extrapolated) / memories.dynamic_j
        if memories.dynamic_j else 0.0,
    }


def gate_extra(m: Measurements, power: dict, memories: Memories, energy: InferenceEnergy) -> dict:
    """The hardware row's `extra`: power and energy by term, bracket, energy per SOP, node scaling, memories, checks."""
    rtl, gate, synth, clock_hz = m.rtl, m.gate, m.synth, power["clock_hz"]
    sop = sop_energy(m, energy, memories)
    return {
        "config": rtl.extra.get("config", ""), "bits": rtl.weight_bits,
        "voltage_v": VOLTAGE_V, "max_clock_mhz": synth["max_clock_mhz"],
        "area_mm2": synth["area_mm2"], "cells": synth["cells"], "flops": synth["flops"],
        "power_mw": power_mw(power, energy), **energy_terms(energy), **sop,
        "energy_per_sop_j_45nm": sop["energy_per_sop_j"] * NODE_SCALE_180_TO_45,
        **memory_extra(memories, energy, m),
        "images_per_s": clock_hz / energy.core_cycles, "us_per_image": energy.core_cycles / clock_hz * 1e6,
        "host_cycles_per_image": energy.host_cycles, "rtl_images": rtl.test_images,
        "gate_images": gate["images"], "gate_timesteps": gate["timesteps"], "model_timesteps": gate["model_timesteps"],
        "gate_cycles_simulated": m.activity.cycles, "gate_mismatches": gate["mismatches"],
        "activity_scaled": gate["timesteps"] < gate["model_timesteps"],
        "includes": "logic: Liberty internal + pin-capacitance switching (clock net and port-driven nets included) + leakage, "
                    "no glitches (zero-delay simulation), plus the wire/clock-tree allowance; memories: exact access counts of "
                    "whole inferences x size-dependent energy per access, SRAM leakage over the inference",
        "opensta_check": power["check"],
        "accuracy_source": "golden model on the whole test split (bit-exact with the RTL and the netlist)",
        "source_method": rtl.extra.get("source_method", ""),
    }


def hardware_row(m: Measurements, power: dict, memories: Memories, wire_load_factor: float,
                 context: RowContext) -> tuple[ResultRow, dict]:
    """The `results/hardware.json` row (not a headline row: a 180 nm measurement) and the detailed report."""
    rtl = m.rtl
    energy = inference_energy(m, power, memories, wire_load_factor)
    extra = gate_extra(m, power, memories, energy)
    row = context.row(
        "hardware", "gate", rtl.arch, timesteps=rtl.timesteps, accuracy=float(rtl.extra.get("golden_accuracy", rtl.accuracy)),
        test_images=int(rtl.extra.get("golden_test_images", rtl.test_images)), ann_accuracy=rtl.ann_accuracy,
        ops=RowOps.of(rtl), params=(rtl.params, rtl.nonzero_params),
        weight_bits=rtl.weight_bits, headline=False, model_path=rtl.model_path, hw_energy_per_image_j=energy.total_j,
        hw_node=HW_NODE, hw_cycles_per_image=energy.core_cycles, hw_clock_mhz=m.synth["clock_mhz"], extra=extra)
    report = {"row_extra": extra, "memories": extra["memories"],
              "energy_per_image_j": {"logic": energy.logic_j, "memory": energy.memory_j, "total": energy.total_j,
                                     "low": energy.low_j, "high": energy.high_j},
              "energy_per_cycle_j": {"logic_cells": energy.cells_j_cycle, "logic_cells_opensta_rule": energy.cells_opensta_j_cycle,
                                     "wire_allowance": energy.wire_j / energy.cycles},
              "cycles_per_image": {"core": energy.core_cycles, "host": energy.host_cycles},
              "breakdown_per_cycle_j": asdict(power["ours"]),
              "breakdown_per_cycle_j_opensta_rule": asdict(power["opensta_rule"])}
    return row, report
