"""Gate-level simulation of the synthesised netlist over whole inferences, checked and reduced to activity.

`run_gate_level` runs images on the netlist of `synth` in Verilator: the netlist with the OSU
cells as behavioural Verilog from the Liberty functions (`flow.write_behavioural_cells`), the
memories as the behavioural `snn_sram`, the accelerator's own testbench in its self-running
mode (hardware/tb/snn_tb.v, +SNN_RUN, SNN_GATE_LEVEL). Every output potential and counter is
checked against the bit-exact golden model, and the per-net transitions are counted inside
the simulator (`hardware.gate_activity`), in total and per phase of the core.

Root cause of the earlier wrong Verilator results (REFERENCE.md §3a): Verilator 5.006's
`const-bit-op-tree` optimisation (V3Const's XOR/AND/OR-tree rewriting) loses the inversion of
an XNOR inside a chain of XOR/XNOR gates; the same bug was reported on yosys netlists upstream
(verilator/verilator#4059, workaround `-fno-const-bit-op-tree`; related: #4857, #5186). Two
of the netlist's 4,106 XNOR2X1 cells computed XOR from time 0, one of them in the event
decoder's pixel-position arithmetic, so the analog phase's I0 addresses (vbase + pp + toff)
gained bit 11. Every gate-level build disables that optimisation (`VERILATOR_FLAGS`); the
cells and the netlist are unchanged.

An RTL copy of the core (`snn_core_ref`) runs in lockstep inside the simulation netlist: its
outputs must equal the netlist's at every clock edge (the run stops at the first difference),
and its state register names the phase each toggle belongs to. Zero-delay simulation: no
glitches are counted, so the dynamic power is a lower bound on what the cells would see with
their delays. Icarus with the library's UDP cell models stays the independent cross-check
(`run_gate_level_icarus`, a VCD reduced by `hardware.power_model.read_activity`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import CoreRun, batch_plusargs, parse_results, write_batch, write_output_map
from hardware.export import IntNetwork, write_memory_images
from hardware.gate_activity import dpi_source, monitor_verilog, net_bits, public_nets, read_counts, sum_activities
from hardware.golden import compare, run_golden
from hardware.power_model import Activity, netlist_module, read_activity
from hardware.sim import BUILD_ROOT, LOG_ROOT, RTL_DIR, TB_TOP, build, memory_plusargs, progress_bar, run_images
from hardware.synthesis.flow import CELL_MODELS, LOGIC_SOURCES, SRAM_RTL, require_tool, write_behavioural_cells
from hardware.verilator import batch_chunks, first_error, layout_plusargs, make_optimisation
from spikebench.errors import ModelError, SpikebenchError

CLOCK_PERIOD_NS = 10.0  # the testbench clock (snn_tb.v: always #5 clk = ~clk); activity is per cycle
GATE_DEFINES = ("SNN_GATE_LEVEL",)  # the testbench's RTL probes read names a netlist does not have
# -fno-const-bit-op-tree: Verilator 5.006 mis-evaluates XNOR chains otherwise (see the module docstring).
VERILATOR_FLAGS = ("-fno-const-bit-op-tree",)
_WARNINGS_OFF = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-TIMESCALEMOD", "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT")
GATE_DIR = BUILD_ROOT / "gate_netlist"


# ---------------------------------------------------------------- the simulation netlist
def simulation_netlist(netlist: Path, config: HardwareConfig, path: Path, items: str = "", public: bool = False) -> Path:
    """Copy of the netlist for simulation with module items inserted after its header: the
    testbench's parameters (the mapped module has none) and `items` (dump, monitor, reference);
    `public`: every net readable by the activity counters (`gate_activity.public_nets`)."""
    text = public_nets(Path(netlist).read_text()) if public else Path(netlist).read_text()
    header = re.search(r"module snn_core\s*\([^;]*\);\n", text)
    if header is None:
        raise ModelError(f"{netlist}: no `module snn_core(...)` header; re-run the synth stage")
    params = "".join(f"  parameter {k} = {v};\n" for k, v in config.verilog_parameters().items())
    inserted = "  // simulation only (hardware/gate_level.py)\n" + params + items
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[: header.end()] + inserted + text[header.end():])
    return path


VCD_DUMP = ("  reg [8*1024-1:0] spikebench_dump;\n"
            "  initial if ($value$plusargs(\"SNN_DUMP=%s\", spikebench_dump)) begin\n"
            "    $dumpfile(spikebench_dump);\n    $dumpvars(1, snn_core);\n  end\n")


def reference_rtl(directory: Path) -> list[Path]:
    """The RTL core renamed `snn_core_ref` (the netlist owns `snn_core`), with its submodules."""
    text = (RTL_DIR / "snn_core.v").read_text()
    renamed, count = re.subn(r"\bmodule\s+snn_core\b", "module snn_core_ref", text)
    if count != 1:
        raise ModelError(f"{RTL_DIR / 'snn_core.v'}: expected one `module snn_core`, found {count}")
    path = Path(directory) / f"snn_core_ref-{hashlib.sha256(renamed.encode()).hexdigest()[:12]}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(renamed)
    return [path, *(RTL_DIR / s for s in LOGIC_SOURCES if s != "snn_core.v")]


_PORTS_IN = ("clk", "rst_n", "start", "cfg_layers", "cfg_timesteps", "cfg_vwords", "cfg_in_count", "in_we", "in_addr",
             "in_wdata", "rd_en", "rd_lane", "rd_addr")
_PORTS_OUT = {"busy": "1", "done": "1", "rd_data": "AB", "cycle_count": "32", "sop_count": "48", "mac_count": "48", "spike_count": "32"}
HOST_MEMORIES = ("u_desc", "u_ptr", "u_wmem", "u_bias")  # loaded by the testbench; the reference gets a copy at each start


def lockstep_reference(memories: dict[str, tuple[int, int]]) -> str:
    """Module items: the RTL reference on the same inputs, its memories copied from the netlist's
    at every `start`, its outputs compared with the netlist's at every rising edge.
    `memories`: the netlist's memory instances, name -> (width, address bits)."""
    outs = "".join(f"  wire [{w}-1:0] spikebench_ref_{p};\n" for p, w in _PORTS_OUT.items())
    conns = ", ".join([f".{p}({p})" for p in _PORTS_IN] + [f".{p}(spikebench_ref_{p})" for p in _PORTS_OUT])
    copies = "".join(f"    for (spikebench_i = 0; spikebench_i < {2 ** memories[m][1]}; spikebench_i = spikebench_i + 1)\n"
                     f"      spikebench_ref.{m}.mem[spikebench_i] = {m}.mem[spikebench_i];\n" for m in HOST_MEMORIES)
    mine = "{" + ", ".join(_PORTS_OUT) + "}"
    ref = "{" + ", ".join(f"spikebench_ref_{p}" for p in _PORTS_OUT) + "}"
    return (f"  // RTL reference in lockstep (hardware/gate_level.py)\n{outs}"
            f"  snn_core_ref #(.P(P), .WB(WB), .VB(VB), .AB(AB), .NA(NA), .WA(WA), .PA(PA), .BA(BA), .LA(LA), .IA(IA))\n"
            f"    spikebench_ref ({conns});\n"
            f"  integer spikebench_i;\n"
            f"  always @(posedge start) begin\n{copies}  end\n"
            f"  always @(posedge clk) if ({mine} != {ref}) begin\n"
            f"    $display(\"%%Error: gate_level: the netlist's outputs differ from the RTL reference at %0d ns "
            f"(busy done rd_data cycles sops macs spikes: netlist %h, RTL %h)\", $time, {mine}, {ref});\n"
            f"    $fatal(1, \"gate_level: netlist != RTL\");\n  end\n"
            # the phases of hardware/driver.py PHASES (as hardware/tb/snn_tb_probes.vh phase_of), then the host (idle)
            f"  function automatic integer spikebench_phase(input [3:0] s, input analog, input busy_now);\n"
            f"    if (!busy_now) spikebench_phase = 5;\n"
            f"    else case (s)\n"
            f"      4'd1: spikebench_phase = 0;\n"
            f"      4'd4, 4'd5, 4'd6, 4'd7, 4'd8: spikebench_phase = analog ? 1 : 2;\n"
            f"      4'd9, 4'd10: spikebench_phase = 3;\n"
            f"      default: spikebench_phase = 4;\n"
            f"    endcase\n  endfunction\n")


PHASE_EXPRESSION = "spikebench_phase(spikebench_ref.state, spikebench_ref.analog, spikebench_ref.busy)"


# ---------------------------------------------------------------- Verilator build and runs
@dataclass(frozen=True)
class GateBuild:
    """A compiled gate-level simulator, the net bits its monitor counts, and the time its build took now (0: cached)."""

    binary: Path
    directory: Path
    bits: np.ndarray
    build_seconds: float


def netlist_memories(module: dict) -> dict[str, tuple[int, int]]:
    """The memory instances of the netlist module (yosys JSON): name -> (width, address bits)."""
    return {name: (int(c["parameters"]["W"], 2), int(c["parameters"]["A"], 2))
            for name, c in module["cells"].items() if c["type"] == "snn_sram"}


def gate_sources(config: HardwareConfig, netlist: Path, netlist_json: Path, directory: Path) -> tuple[list[Path], np.ndarray]:
    """Everything Verilator compiles besides the testbench: the simulation netlist (reference and
    monitor inserted), the behavioural cells and memories, the reference RTL and the DPI counters."""
    module = netlist_module(netlist_json)
    bits, nets = net_bits(module)
    memories = netlist_memories(module)
    missing = [m for m in HOST_MEMORIES if m not in memories]
    if missing:
        raise ModelError(f"{netlist_json}: memories {missing} not in the netlist; re-run the synth stage (dvc repro synth)")
    if ("clk", 0) not in nets:
        raise ModelError(f"{netlist_json}: no `clk` port in the netlist; re-run the synth stage (dvc repro synth)")
    clock = nets.index(("clk", 0))
    items = lockstep_reference(memories) + monitor_verilog(PHASE_EXPRESSION, "busy", clock, round(CLOCK_PERIOD_NS / 2))
    sim_netlist = simulation_netlist(netlist, config, directory / "snn_core_gate.v", items, public=True)
    dpi = directory / "gate_activity_dpi.cpp"
    dpi.write_text(dpi_source(nets))
    cells = write_behavioural_cells(GATE_DIR / "osu018_cells.v")
    return [sim_netlist, cells, SRAM_RTL, *reference_rtl(directory), dpi], bits


def _build_key(config: HardwareConfig, netlist: Path, opt: str) -> str:
    digest = hashlib.sha256(json.dumps([config.to_dict(), opt, VERILATOR_FLAGS, GATE_DEFINES]).encode())
    for path in [netlist, TB_TOP, SRAM_RTL, *sorted(RTL_DIR.glob("snn_*.v")), *sorted(RTL_DIR.glob("*.vh")), Path(__file__),
                 Path(__file__).with_name("gate_activity.py")]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_gate_verilator(config: HardwareConfig, netlist: Path, netlist_json: Path, opt: str = "-O1") -> GateBuild:
    """Compile testbench + simulation netlist for `config` with the C++ optimisation `opt`
    (cached by content under hardware/build/gate-<key>/; `opt` trades build time for speed)."""
    verilator = require_tool("verilator")
    directory = BUILD_ROOT / f"gate-{_build_key(config, netlist, opt)}"
    sources, bits = gate_sources(config, netlist, netlist_json, directory)
    binary = directory / "Vsnn_tb"
    if binary.exists():
        return GateBuild(binary, directory, bits, 0.0)
    log = directory / "build.log"
    # The slow-path code stays at -O0: its symbol table registers every (public) net in one function,
    # which takes gcc minutes to optimise.
    command = [verilator, "--binary", "--timing", "-j", str(os.cpu_count() or 1), "--top-module", TB_TOP.stem,
               "--timescale", "1ns/1ps", *_WARNINGS_OFF, *VERILATOR_FLAGS, f"-I{RTL_DIR}", f"-I{TB_TOP.parent}",
               *[f"-G{k}={v}" for k, v in config.verilog_parameters().items()], *[f"-D{d}" for d in GATE_DEFINES],
               *make_optimisation(opt, slow="-O0"), "--Mdir", str(directory / "obj"), "-o", str(binary), *map(str, sources), str(TB_TOP)]
    print(f"Verilator: building the gate-level simulator, C++ {opt} (output in {log})", flush=True)
    started = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not binary.exists():
        raise SpikebenchError(f"Verilator could not build the gate-level simulator: {first_error(log)}; full log: {log}")
    print(f"Verilator: gate-level simulator built in {seconds:.0f}s", flush=True)
    return GateBuild(binary, directory, bits, seconds)


@dataclass
class GateRun:
    runs: list[CoreRun]
    activity: Activity
    seconds: float                       # simulation wall time (all processes)
    phases: dict[str, Activity] = field(default_factory=dict)   # hardware.gate_activity.PHASE_NAMES
    build_seconds: float = 0.0
    simulator: str = "verilator"


def _run_one(build: GateBuild, memdir: Path, layout: dict, images: np.ndarray, workdir: Path, log: Path) -> tuple[list[CoreRun], Path]:
    """One simulator process on a chunk of images: (its results, its counters file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_batch(workdir / "batch.hex", images)
    write_output_map(workdir / "omap.hex", [tuple(o) for o in layout["outputs"]])
    counters = workdir / "activity.bin"
    command = [str(build.binary), *layout_plusargs(layout), *memory_plusargs(memdir), *batch_plusargs(workdir),
               f"+SNN_ACTIVITY={counters.resolve()}"]
    with open(log, "w") as out:
        done = subprocess.run(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    runs = parse_results(workdir / "results.txt") if (workdir / "results.txt").exists() else []
    if done.returncode != 0 or len(runs) != len(images):
        raise SpikebenchError(f"gate-level simulation failed ({len(runs)} of {len(images)} images, exit {done.returncode}): "
                              f"{first_error(log)}; full log: {log}")
    return runs, counters


def simulate_gate_verilator(build: GateBuild, memdir: Path, layout: dict, images: np.ndarray, workers: int,
                            label: str = "gate_sim") -> GateRun:
    """Run `images` in `workers` parallel simulator processes (consecutive chunks, a progress bar);
    the runs in image order and the activity of all processes added up."""
    chunks = batch_chunks(images, math.ceil(len(images) / workers))
    logs = LOG_ROOT / label
    logs.mkdir(parents=True, exist_ok=True)
    for stale in logs.glob("chunk*.log"):
        stale.unlink(missing_ok=True)
    print(f"{label}: {len(images)} image(s) on {len(chunks)} Verilator gate-level process(es); simulator output in {logs}/", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        wdirs = [Path(scratch) / f"chunk{i}" for i in range(len(chunks))]

        def one(i: int) -> tuple[list[CoreRun], tuple[Activity, dict[str, Activity]]]:
            runs, counters = _run_one(build, memdir, layout, images[chunks[i]], wdirs[i], logs / f"chunk{i}.log")
            return runs, read_counts(counters, build.bits, CLOCK_PERIOD_NS)

        with progress_bar(len(images), label, wdirs), ThreadPoolExecutor(len(chunks)) as pool:
            parts = list(pool.map(one, range(len(chunks))))
    seconds = time.perf_counter() - started
    phases = {name: sum_activities([p[1][1][name] for p in parts]) for name in parts[0][1][1]}
    return GateRun([r for p in parts for r in p[0]], sum_activities([p[1][0] for p in parts]), seconds, phases, build.build_seconds)


def run_gate_level(net: IntNetwork, netlist_json: Path, netlist: Path, images: np.ndarray, workers: int, memdir: Path,
                   opt: str = "-O1") -> GateRun:
    """Build (cached), simulate in Verilator, check every output and counter against the golden model."""
    layout = write_memory_images(net, memdir)
    gate_build = build_gate_verilator(net.config, netlist, netlist_json, opt)
    result = simulate_gate_verilator(gate_build, memdir, layout, images, workers)
    check_against_golden(net, images, result.runs, "Verilator")
    return result


def check_against_golden(net: IntNetwork, images: np.ndarray, runs: list[CoreRun], simulator: str) -> None:
    problems = compare(runs, run_golden(net, images))
    if problems:
        raise SpikebenchError(f"gate_sim ({simulator}): {len(problems)} of {len(images)} images differ from the golden model; "
                              f"first: {problems[0]}")


# ---------------------------------------------------------------- Icarus cross-check
def zero_memories(memories: dict[str, tuple[int, int]]) -> str:
    """Module items: every memory word and read register 0 at time 0, as in Verilator (two-state).
    Icarus starts them at x, and a dump reader counts no x -> value change: without this the
    nets a never-written word reaches (queue words, unused rows) toggle less in Icarus."""
    lines = "".join(f"    for (spikebench_z = 0; spikebench_z < {2 ** a}; spikebench_z = spikebench_z + 1) {_ref(m)}.mem[spikebench_z] = 0;\n"
                    f"    {_ref(m)}.rdata = 0;\n" for m, (_, a) in sorted(memories.items()))
    return f"  integer spikebench_z;\n  initial begin\n{lines}  end\n"


def _ref(instance: str) -> str:
    """A hierarchical reference to an instance of the netlist (escaped names end with a space)."""
    return instance if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", instance) else f"\\{instance} "


def build_gate(config: HardwareConfig, netlist: Path, netlist_json: Path) -> Path:
    """Icarus: testbench + netlist + the library's UDP cell models + behavioural memories (cached by content)."""
    require_tool("iverilog")
    digest = hashlib.sha256(Path(netlist).read_bytes() + json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    items = VCD_DUMP + zero_memories(netlist_memories(netlist_module(netlist_json)))
    sim_netlist = simulation_netlist(netlist, config, GATE_DIR / f"snn_core_{digest}.v", items)
    return build(config, toplevel="snn_tb", sources=[sim_netlist, CELL_MODELS, SRAM_RTL, TB_TOP], defines=GATE_DEFINES)


@contextmanager
def _vcd_dumps():
    """Let vvp write the core's `$dumpvars` as VCD.

    vvp takes the last of `-none` / `-fst` / `-vcd` on its command line, and the cocotb
    runner appends `-none` (or `-fst` with WAVES=1). VCD, not FST: pywellen parses a VCD
    body once, while it loads FST signals one by one (~4 ms each: minutes for a 40k-net core).
    """
    from cocotb_tools.runner import Icarus

    original = Icarus._test_command

    def with_vcd(self) -> list:
        return [["-vcd" if arg in ("-none", "-fst") else arg for arg in cmd] for cmd in original(self)]

    Icarus._test_command = with_vcd
    try:
        yield
    finally:
        Icarus._test_command = original


def run_gate_level_icarus(net: IntNetwork, netlist_json: Path, netlist: Path, images: np.ndarray, workers: int,
                          memdir: Path) -> GateRun:
    """The cross-check: Icarus with the UDP cell models (~150 cycles/s: small networks only), a VCD
    of the core's nets reduced by `hardware.power_model.read_activity`, outputs checked as above."""
    write_memory_images(net, memdir)
    build_dir = build_gate(net.config, netlist, netlist_json)
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch, _vcd_dumps():
        runs, dumps, seconds = run_images(build_dir, memdir, images, workers, Path(scratch), dump=True, label="gate_icarus")
        check_against_golden(net, images, runs, "Icarus")
        activity = read_activity(dumps, netlist_json, CLOCK_PERIOD_NS)
    return GateRun(runs, activity, seconds, simulator="icarus")


# ---------------------------------------------------------------- report
def gate_report(result: GateRun, labels: np.ndarray, model_timesteps: int, seed: int, model_path: str) -> dict:
    """reports/hardware_gate.json: what the power stage needs from the run (no timings: those go to MLflow)."""
    predictions = np.array([int(np.argmax(r.potentials)) for r in result.runs])
    activity = result.activity
    per_phase = {name: {"cycles": a.cycles, "toggles": float(a.toggles.sum()),
                        "toggles_per_cycle": float(a.toggles.sum() / a.cycles) if a.cycles else 0.0}
                 for name, a in result.phases.items()}
    return {
        "images": len(labels), "mismatches": 0, "timesteps": model_timesteps, "model_timesteps": model_timesteps,
        "simulator": result.simulator, "accuracy": float((predictions == labels).mean()),
        "labels": labels.tolist(), "runs": [asdict(r) for r in result.runs],
        "simulated_cycles": activity.cycles, "core_cycles": float(sum(r.cycles for r in result.runs)),
        "nets": len(activity.toggles), "toggles_per_cycle": float(activity.toggles.sum() / activity.cycles),
        "per_phase": per_phase, "seed": seed, "model_path": model_path,
    }
