"""Synthesis and static timing of the accelerator core: yosys → OSU 0.18 µm cells → OpenSTA.

`synthesize` maps `snn_core` for one `HardwareConfig` (memories stay black boxes: every
`snn_sram` instance remains in the netlist, to be simulated with the behavioural model and
charged separately) and returns area, cell and flop counts. `write_sram_liberty` describes
each memory shape as a Liberty macro (clock-to-read-data access time, input setup, pin
capacitance) so OpenSTA can time the paths through the memories and both power
calculations see the same pin loads. `run_timing` reports the worst slack at the target
clock and the maximum frequency.

The yosys script, the OpenSTA script and the SDC live next to this file as templates.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hardware.config import Constraints, HardwareConfig, SramTiming, SynthParams
from hardware.synthesis.liberty import read_liberty
from spikebench.errors import SpikebenchError

SYNTH_DIR = Path(__file__).resolve().parent
RTL_DIR = SYNTH_DIR.parent / "rtl"
TECH_DIR = Path("/usr/share/qflow/tech/osu018")
LIBERTY = TECH_DIR / "osu018_stdcells.lib"
CELL_MODELS = TECH_DIR / "osu018_stdcells.v"   # the library's UDP models (Icarus: the independent cross-check)
SRAM_RTL = RTL_DIR / "snn_sram.v"
LOGIC_SOURCES = ("snn_core.v", "snn_lane.v", "snn_fire_unit.v", "snn_event_decode.v")
VOLTAGE = 1.8  # V, the library's nominal (typical corner) supply

# Debian package that provides each tool (the one-line error names it).
TOOLS = {"yosys": "yosys", "iverilog": "iverilog", "vvp": "iverilog", "sta": "opensta", "verilator": "verilator"}

SOURCE_CELL = "spikebench_source"
NETLIST_FILE = "snn_core.v"   # in the synth stage's folder (spikebench.paths.NETLIST_DIR); yosys JSON: snn_core.json
_SRAM_INSTANCE = re.compile(r"snn_sram\s*#\(\s*\.A\(32's?d(\d+)\),\s*\.W\(32's?d(\d+)\)\s*\)")


class ToolError(SpikebenchError):
    """An EDA tool is missing or failed."""


def require_tool(name: str) -> str:
    """Path of an EDA tool, or a one-line error naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        package = TOOLS.get(name, name)
        raise ToolError(f"{name}: EDA tool not found on PATH; install it with `apt-get install {package}` (make setup)")
    return path


def require_technology() -> None:
    if not LIBERTY.exists() or not CELL_MODELS.exists():
        raise ToolError(f"{LIBERTY}: OSU 0.18 um library not found; install it with `apt-get install qflow-tech-osu018` (make setup)")


def run_tool(cmd: list[str], log: Path, what: str, timeout: float = 1800) -> str:
    """Run a tool, keep its output in `log`, raise a one-line error naming the log on failure."""
    require_tool(cmd[0])
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    log.write_text(result.stdout + result.stderr)
    # OpenSTA reports errors and carries on with exit status 0
    errors = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.upper().startswith("ERROR")]
    if result.returncode != 0 or errors:
        lines = errors or [ln for ln in (result.stdout + result.stderr).splitlines() if "ERROR" in ln.upper()]
        raise ToolError(f"{what} failed (exit {result.returncode}): {(lines or ['see log'])[-1].strip()}; full log in {log}")
    return result.stdout


def write_behavioural_cells(path: Path) -> Path:
    """The library's cells as plain Verilog (`assign` for logic, `always` for flops) from the
    Liberty `function`/`ff` groups (yosys `read_liberty` without `-lib`), for Verilator: it
    cannot compile the UDPs and specify blocks of the `.v` models. Written once per Liberty
    content (the name carries its hash); Icarus keeps the UDP models as the cross-check."""
    require_technology()
    digest = hashlib.sha256(LIBERTY.read_bytes()).hexdigest()[:12]
    path = Path(path)
    target = path.with_name(f"{path.stem}-{digest}{path.suffix}")
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.v")
    run_tool(["yosys", "-q", "-p", f"read_liberty {LIBERTY}; write_verilog -noattr {partial}"],
             target.with_suffix(".log"), "yosys (behavioural cell models)")
    partial.replace(target)
    return target


def sram_cell_name(width: int, addr_bits: int) -> str:
    return f"snn_sram_w{width}_a{addr_bits}"


@dataclass
class SynthResult:
    netlist: Path          # gate-level Verilog, memories as `snn_sram #(.A, .W)` instances
    netlist_json: Path     # the same netlist as yosys JSON (connectivity for power_model.py)
    sta_netlist: Path      # memories renamed to their Liberty macro names
    sram_liberty: Path
    area_um2: float        # standard cells only (memories excluded)
    cells: int             # standard cells
    flops: int
    cell_counts: dict[str, int]
    memories: dict[str, tuple[int, int]]   # instance -> (width, address bits)


def _yosys_script(config: HardwareConfig, out: Path, period_ns: float) -> str:
    template = (SYNTH_DIR / "synth.ys").read_text()
    chparam = "\n".join(f"chparam -set {k} {v} snn_core" for k, v in config.verilog_parameters().items())
    # abc's driving cell and load make it buffer high fan-out nets and size gates (buffer; upsize; dnsize)
    (out / "abc.constr").write_text("set_driving_cell INVX1\nset_load 0.02\n")
    sources = " ".join(str(RTL_DIR / s) for s in LOGIC_SOURCES)
    return template.format(period_ps=int(round(period_ns * 1000)), abc_constr=out / "abc.constr", liberty=LIBERTY, sram=SRAM_RTL,
                           rtl_dir=RTL_DIR, sources=sources,
                           chparam=chparam, stat_json=out / "stat.json", netlist=out / "snn_core.v", netlist_json=out / "snn_core.json")


def memory_instances(netlist_json: Path, top: str = "snn_core") -> dict[str, tuple[int, int]]:
    """snn_sram instances of a netlist JSON: name -> (width W, address bits A)."""
    module = json.loads(Path(netlist_json).read_text())["modules"][top]
    return {name: (int(cell["parameters"]["W"], 2), int(cell["parameters"]["A"], 2))
            for name, cell in module["cells"].items() if cell["type"] == "snn_sram"}


def write_sram_liberty(path: Path, shapes: set[tuple[int, int]], timing: SramTiming, source_slew_ns: float) -> None:
    """One Liberty macro per memory shape: timing arcs for OpenSTA, pin loads for power.

    No internal or leakage power: the memories' energy is charged per access instead.
    `SOURCE_CELL` (for OpenSTA's power netlist) drives with `source_slew_ns`, the input slew.
    """
    t = timing
    thresholds = [f"  {kind}_{edge} : {pct};" for kind, pct in (("input_threshold_pct", 50), ("output_threshold_pct", 50),
                  ("slew_lower_threshold_pct", 20), ("slew_upper_threshold_pct", 80)) for edge in ("rise", "fall")]
    lines = ["library (snn_sram_macros) {", "  delay_model : table_lookup;", *thresholds, '  time_unit : "1ns";', '  voltage_unit : "1V";',
             '  current_unit : "1uA";', '  leakage_power_unit : "1nW";', "  capacitive_load_unit (1,pf);",
             "  nom_voltage : 1.8;", "  nom_temperature : 25;", "  nom_process : 1;"]
    for width in sorted({w for w, _ in shapes} | {a for _, a in shapes}):
        lines += [f"  type (bus{width}) {{ base_type : array; data_type : bit; bit_width : {width}; bit_from : {width - 1}; bit_to : 0; }}"]

    def input_pin(header: str) -> list[str]:
        return [f"    {header}", "      direction : input;", f"      capacitance : {t.pin_cap_pf};",
                '      timing () { related_pin : "clk"; timing_type : setup_rising;',
                f'        rise_constraint (scalar) {{ values ("{t.setup_ns}"); }} fall_constraint (scalar) {{ values ("{t.setup_ns}"); }} }}',
                '      timing () { related_pin : "clk"; timing_type : hold_rising;',
                '        rise_constraint (scalar) { values ("0.0"); } fall_constraint (scalar) { values ("0.0"); } }', "    }"]

    for width, addr in sorted(shapes):
        lines += [f"  cell ({sram_cell_name(width, addr)}) {{", "    area : 0;", "    dont_use : true;", "    is_macro_cell : true;",
                  f"    pin (clk) {{ direction : input; clock : true; capacitance : {t.pin_cap_pf}; }}"]
        lines += input_pin("pin (re) {") + input_pin("pin (we) {")
        for bus, bits in (("raddr", addr), ("waddr", addr), ("wdata", width)):
            lines += input_pin(f"bus ({bus}) {{ bus_type : bus{bits};")
        lines += [f"    bus (rdata) {{ bus_type : bus{width}; direction : output;",
                  '      timing () { related_pin : "clk"; timing_type : rising_edge;',
                  f'        cell_rise (scalar) {{ values ("{t.access_ns}"); }} cell_fall (scalar) {{ values ("{t.access_ns}"); }}',
                  f'        rise_transition (scalar) {{ values ("{t.output_slew_ns}"); }} fall_transition (scalar) {{ values ("{t.output_slew_ns}"); }} }}',
                  "    }", "  }"]
    # a clocked source with no data input: it drives the former input ports and constants in the
    # netlist OpenSTA's power report reads (hardware/power_model.py, `power_netlist`)
    lines += [f"  cell ({SOURCE_CELL}) {{", "    area : 0;", "    dont_use : true;", "    is_macro_cell : true;",
              "    pin (clk) { direction : input; clock : true; capacitance : 0; }",
              "    pin (y) { direction : output;",
              '      timing () { related_pin : "clk"; timing_type : rising_edge;',
              '        cell_rise (scalar) { values ("0.0"); } cell_fall (scalar) { values ("0.0"); }',
              f'        rise_transition (scalar) {{ values ("{source_slew_ns}"); }} fall_transition (scalar) {{ values ("{source_slew_ns}"); }} }}',
              "    }", "  }", "}"]
    path.write_text("\n".join(lines) + "\n")


def write_sta_netlist(netlist: Path, path: Path) -> None:
    """The netlist with each parameterised `snn_sram` instance renamed to its macro cell."""
    text = _SRAM_INSTANCE.sub(lambda m: sram_cell_name(int(m.group(2)), int(m.group(1))), netlist.read_text())
    path.write_text(text)


def synthesize(config: HardwareConfig, out: Path, clock_mhz: float, sram: SramTiming, input_slew_ns: float) -> SynthResult:
    """Map snn_core for `config` into `out` (netlist, JSON, stats, macro Liberty); abc maps
    for the target clock period (`-D`: delay-driven mapping, fan-out buffering, gate sizing)."""
    require_technology()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    script = out / "synth.ys"
    script.write_text(_yosys_script(config, out, 1e3 / clock_mhz))
    run_tool(["yosys", "-q", "-s", str(script)], out / "yosys.log", "yosys synthesis")
    stat = json.loads((out / "stat.json").read_text())["modules"]["\\snn_core"]
    counts = {k.lstrip("\\"): int(v) for k, v in stat["num_cells_by_type"].items()}
    memories = memory_instances(out / "snn_core.json")
    liberty = out / "snn_sram_macros.lib"
    write_sram_liberty(liberty, set(memories.values()), sram, input_slew_ns)
    write_sta_netlist(out / "snn_core.v", out / "snn_core_sta.v")
    cells = read_liberty(LIBERTY).cells  # yosys 0.23's `stat -json` has no area
    area = sum(cells[k].area * v for k, v in counts.items() if k in cells)
    return SynthResult(
        netlist=out / "snn_core.v", netlist_json=out / "snn_core.json", sta_netlist=out / "snn_core_sta.v", sram_liberty=liberty,
        area_um2=area, cells=sum(v for k, v in counts.items() if k != "snn_sram"),
        flops=sum(v for k, v in counts.items() if k.startswith("DFF")), cell_counts=counts, memories=memories)


def write_sdc(path: Path, constraints: Constraints) -> None:
    c = constraints
    path.write_text((SYNTH_DIR / "constraints.sdc").read_text().format(
        period_ns=f"{c.period_ns:.4f}", io_delay_ns=f"{c.io_delay_fraction * c.period_ns:.4f}",
        input_slew_ns=c.input_slew_ns, output_load_pf=c.output_load_pf))


@dataclass
class TimingResult:
    clock_mhz: float
    worst_slack_ns: float
    max_clock_mhz: float
    critical_path: str     # the report of the worst path


def run_timing(result: SynthResult, constraints: Constraints, out: Path) -> TimingResult:
    """OpenSTA setup timing at the target clock; f_max = 1 / (period - worst slack)."""
    out = Path(out).resolve()
    sdc = out / "constraints.sdc"
    write_sdc(sdc, constraints)
    script = out / "sta.tcl"
    script.write_text((SYNTH_DIR / "sta.tcl").read_text().format(
        liberty=LIBERTY, sram_liberty=result.sram_liberty, netlist=result.sta_netlist, sdc=sdc) + "exit\n")
    text = run_tool(["sta", "-no_init", "-no_splash", "-exit", str(script)], out / "sta.log", "OpenSTA timing")
    match = re.search(r"SPIKEBENCH_WNS\s+(-?[0-9.eE+-]+)", text)
    if match is None:
        raise ToolError(f"OpenSTA timing: no worst slack in the report; see {out / 'sta.log'}")
    slack = float(match.group(1))
    report = text[: match.start()].strip()
    return TimingResult(clock_mhz=constraints.clock_mhz, worst_slack_ns=slack,
                        max_clock_mhz=1e3 / (constraints.period_ns - slack), critical_path=report)


def synthesis_report(hw: HardwareConfig, params: SynthParams, out: Path) -> dict:
    """Synthesise and time into `out`; the figures of reports/hardware_synth.json."""
    started = time.perf_counter()
    result = synthesize(hw, out, params.clock_mhz, params.sram_timing(), params.input_slew_ns)
    synth_seconds = time.perf_counter() - started
    timing = run_timing(result, params.constraints(), out)
    (Path(out) / "timing.rpt").write_text(timing.critical_path + "\n")
    return {
        "clock_mhz": params.clock_mhz, "worst_slack_ns": timing.worst_slack_ns, "max_clock_mhz": timing.max_clock_mhz,
        "area_um2": result.area_um2, "area_mm2": result.area_um2 * 1e-6, "cells": result.cells, "flops": result.flops,
        "cell_counts": result.cell_counts, "memories": {k: {"width": w, "addr_bits": a} for k, (w, a) in result.memories.items()},
        "memory_bits": sum(w * 2**a for w, a in result.memories.values()), "hardware": hw.to_dict(),
        "synth_seconds": round(synth_seconds, 1), "sram_access_ns": params.sram_access_ns,
        "input_slew_ns": params.input_slew_ns, "output_load_pf": params.output_load_pf,
        "technology": "OSU 0.18 um (qflow-tech-osu018), typical corner, 1.8 V, 25 C; memories excluded from area",
    }
