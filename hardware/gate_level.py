"""Gate-level simulation of the synthesised netlist (Icarus + OSU cell models), checked and reduced to activity.

`run_gate_level` simulates images on the netlist of `synth` (memories as the behavioural
`snn_sram` model) with the accelerator's own testbench and cocotb driver
(`hardware/tb/snn_tb.v`, `hardware.rtl_job`), checks every output potential and counter
against the bit-exact golden model (which the RTL matches, so gate = RTL), dumps every
net's waveform and reduces it to per-net activity (`hardware.power_model.read_activity`).

Simulation is zero-delay (functional cell models, no SDF): no glitches are counted, so
the dynamic power is a lower bound on what the cells would see with their delays.
The dump is a VCD of the core's scope (depth 1: every net of the netlist, not the cells'
insides), reduced with pywellen and then deleted (hundreds of MB per image).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import CoreRun
from hardware.export import IntNetwork, write_memory_images
from hardware.golden import compare, run_golden
from hardware.power_model import Activity, read_activity
from hardware.sim import BUILD_ROOT, TB_TOP, build, run_images
from hardware.synthesis.flow import CELL_MODELS, SRAM_RTL, require_tool
from spikebench.errors import ModelError, SpikebenchError

CLOCK_PERIOD_NS = 10.0  # the testbench clock (snn_tb.v: always #5 clk = ~clk); activity is per cycle


def simulation_netlist(netlist: Path, config: HardwareConfig, path: Path) -> Path:
    """Copy of the netlist for simulation: the testbench's parameters declared (the mapped
    module has none), and a dump of every net of the core when +SNN_DUMP=<file> is given."""
    text = Path(netlist).read_text()
    header = re.search(r"module snn_core\s*\([^;]*\);\n", text)
    if header is None:
        raise ModelError(f"{netlist}: no `module snn_core(...)` header; re-run the synth stage")
    params = "".join(f"  parameter {k} = {v};\n" for k, v in config.verilog_parameters().items())
    dump = ("  // simulation only (hardware/gate_level.py): parameters the testbench sets, and the activity dump\n" + params +
            "  reg [8*1024-1:0] spikebench_dump;\n"
            "  initial if ($value$plusargs(\"SNN_DUMP=%s\", spikebench_dump)) begin\n"
            "    $dumpfile(spikebench_dump);\n    $dumpvars(1, snn_core);\n  end\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[: header.end()] + dump + text[header.end():])
    return path


def build_gate(config: HardwareConfig, netlist: Path) -> Path:
    """Compile testbench + netlist + cell models + behavioural memories (cached by content)."""
    require_tool("iverilog")
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(Path(netlist).read_bytes() + json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    sim_netlist = simulation_netlist(netlist, config, BUILD_ROOT / "gate_netlist" / f"snn_core_{digest}.v")
    return build(config, toplevel="snn_tb", sources=[sim_netlist, CELL_MODELS, SRAM_RTL, TB_TOP])


@contextmanager
def _vcd_dumps():
    """Let vvp write the core's `$dumpvars` as VCD.

    vvp takes the last of `-none` / `-fst` / `-vcd` on its command line, and the cocotb
    runner appends `-none` (or `-fst` with WAVES=1). VCD, not FST: pywellen parses a VCD
    body once, while it loads FST signals one by one (~4 ms each: minutes for a 40k-net core).
    Wanted instead: a `test_args`/`plusargs` hook in hardware.sim.run_cocotb for the format.
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


def simulate_gate(build_dir: Path, layout: dict, images: np.ndarray, memdir: Path, workdir: Path, workers: int,
                  dump: bool = True, label: str = "gate_sim") -> tuple[list[CoreRun], list[Path], float]:
    """Run `images` on the netlist in `workers` Icarus processes, with a progress bar (images done / total)
    and the simulators' output in hardware/build/logs/<label>/; (runs, dump files, seconds)."""
    with _vcd_dumps():
        return run_images(build_dir, memdir, images, workers, workdir, dump=dump, label=label)


@dataclass
class GateRun:
    runs: list[CoreRun]
    activity: Activity
    seconds: float


def run_gate_level(net: IntNetwork, netlist_json: Path, netlist: Path, images: np.ndarray, workers: int, memdir: Path) -> GateRun:
    """Simulate, check against the golden model (every output and counter), reduce the dumps to activity."""
    layout = write_memory_images(net, memdir)
    build_dir = build_gate(net.config, netlist)
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        runs, dumps, seconds = simulate_gate(build_dir, layout, images, memdir, Path(scratch), workers)
        problems = compare(runs, run_golden(net, images))
        if problems:
            raise SpikebenchError(f"gate_sim: {len(problems)} of {len(images)} images differ from the RTL/golden model; first: {problems[0]}")
        activity = read_activity(dumps, netlist_json, CLOCK_PERIOD_NS)
    return GateRun(runs, activity, seconds)


def gate_report(result: GateRun, labels: np.ndarray, timesteps: int, model_timesteps: int, seed: int, model_path: str) -> dict:
    """reports/hardware_gate.json: what the power stage needs from the run, and its speed."""
    cycles = np.array([r.cycles for r in result.runs], dtype=np.float64)
    predictions = np.array([int(np.argmax(r.potentials)) for r in result.runs])
    activity = result.activity
    return {
        "images": len(labels), "mismatches": 0, "timesteps": timesteps, "model_timesteps": model_timesteps,
        "accuracy_at_timesteps": float((predictions == labels).mean()),  # at the simulated T, not the model's
        "labels": labels.tolist(), "runs": [asdict(r) for r in result.runs],
        "simulated_cycles": activity.cycles, "core_cycles": float(cycles.sum()),
        "nets": len(activity.toggles), "toggles_per_cycle": float(activity.toggles.sum() / activity.cycles),
        "seed": seed, "model_path": model_path,
    }
