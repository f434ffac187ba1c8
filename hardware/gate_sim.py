"""Stage `gate_sim`: the synthesised netlist on real test images (Icarus + OSU cell models).

Runs the first `gate_sim.images` test images for `gate_sim.timesteps` steps (a gate-level
cycle costs ~100x an RTL one, and a Fashion-MNIST image at the model's full T can take
millions of cycles) through the gate-level netlist of `synth` (memories as the behavioural `snn_sram` model) with the accelerator's own
testbench and cocotb driver (`hardware/tb/snn_tb.v`, `hardware.rtl_job`), checks every
output potential and counter against the bit-exact golden model (which the RTL matches
in `rtl_sim`, so gate = RTL), dumps every net's waveform and reduces it to per-net
activity (`hardware.power.read_activity`) for the `power` stage.

Simulation is zero-delay (functional cell models, no SDF): no glitches are counted, so
the dynamic power is a lower bound on what the cells would see with their delays.
The dump is a VCD of the core's scope (depth 1: every net of the netlist, not the cells'
insides), reduced with pywellen and then deleted (hundreds of MB per image).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import CoreRun, batch_plusargs, parse_results
from hardware.export import IntNetwork, load_and_quantise, write_memory_images
from hardware.golden import run_golden
from hardware.power import Activity, read_activity
from hardware.rtl_sim import compare
from hardware.select import load_selected
from hardware.sim import BUILD_ROOT, TB_TOP, build, memory_plusargs, run_cocotb
from hardware.synth.flow import CELL_MODELS, SRAM_RTL, require_tool
from spikebench.data import load_prepared
from spikebench.errors import ModelError, SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.tracking import stage_run

NETLIST = Path("hardware/netlist/snn_core.v")
GATE_DIR = Path("hardware/gate")
ACTIVITY_PATH = GATE_DIR / "activity.npz"
REPORT_PATH = Path("reports/hardware_gate.json")
CLOCK_PERIOD_NS = 10.0  # the testbench clock (snn_tb.v: always #5 clk = ~clk); activity is per cycle


@dataclass(frozen=True)
class GateSimParams:
    images: int = constraint(min=1)           # K test images on the netlist (the first of the split)
    timesteps: int = constraint(min=1)        # T simulated at gate level (capped at the model's T); see the power stage
    workers: int = constraint(min=1, max=16)  # parallel Icarus processes (one dump each)


def simulation_netlist(netlist: Path, config: HardwareConfig, path: Path) -> Path:
    """Copy of the netlist for simulation: the testbench's parameters declared (the mapped
    module has none), and a dump of every net of the core when +SNN_DUMP=<file> is given."""
    text = Path(netlist).read_text()
    header = re.search(r"module snn_core\s*\([^;]*\);\n", text)
    if header is None:
        raise ModelError(f"{netlist}: no `module snn_core(...)` header; re-run the synth stage")
    params = "".join(f"  parameter {k} = {v};\n" for k, v in config.verilog_parameters().items())
    dump = ("  // simulation only (hardware/gate_sim.py): parameters the testbench sets, and the activity dump\n" + params +
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
                  dump: bool = True) -> tuple[list[CoreRun], list[Path], float]:
    """Run `images` on the netlist in `workers` Icarus processes; (runs, dump files, seconds)."""
    chunks = [c for c in np.array_split(np.arange(len(images)), workers) if len(c)]
    started = time.perf_counter()

    def worker(index: int) -> tuple[list[CoreRun], Path]:
        wdir = Path(workdir) / f"worker{index}"
        wdir.mkdir(parents=True, exist_ok=True)
        np.save(wdir / "images.npy", images[chunks[index]])
        dump_path = wdir / "activity.vcd"
        env = {"SNN_LAYOUT": str((Path(memdir) / "layout.json").resolve()), "SNN_WORKDIR": str(wdir), "SNN_IMAGES": str(wdir / "images.npy")}
        plusargs = memory_plusargs(memdir) + batch_plusargs(wdir) + ([f"+SNN_DUMP={dump_path.resolve()}"] if dump else [])
        run_cocotb(build_dir, "hardware.rtl_job", test_dir=wdir, plusargs=plusargs, env=env)
        return parse_results(wdir / "results.txt"), dump_path

    with _vcd_dumps(), ThreadPoolExecutor(len(chunks)) as pool:
        parts = list(pool.map(worker, range(len(chunks))))
    runs = [run for part, _ in parts for run in part]
    return runs, [p for _, p in parts], time.perf_counter() - started


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


@cli_main
def main() -> None:
    common, params = load_section(GateSimParams, "gate_sim")
    _, hw = load_section(HardwareConfig, "hardware")
    if not NETLIST.exists():
        raise ModelError(f"{NETLIST}: missing; run the synth stage (dvc repro synth)")
    data = load_prepared()
    selected = load_selected(data.split_hash)
    model_timesteps = int(selected["timesteps"])
    timesteps = min(params.timesteps, model_timesteps)
    net = load_and_quantise(selected["model_path"], hw, timesteps=timesteps)
    x_test, y_test = data.test
    count = min(params.images, len(y_test))
    pixels = np.rint(x_test[:count].numpy() * 255.0).astype(np.uint8)
    labels = y_test[:count].numpy()

    with stage_run("gate_sim", method="hardware", library="gate", dataset=data.dataset, split_hash=data.split_hash,
                   params={"gate_sim": asdict(params), "hardware": hw.to_dict(), "model": selected["model_path"]}) as run:
        GATE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as memdir:
            result = run_gate_level(net, NETLIST.with_suffix(".json"), NETLIST, pixels, params.workers, Path(memdir))
        result.activity.save(ACTIVITY_PATH)
        cycles = np.array([r.cycles for r in result.runs], dtype=np.float64)
        predictions = np.array([int(np.argmax(r.potentials)) for r in result.runs])
        for i, r in enumerate(result.runs):
            run.log_metrics({"cycles": r.cycles, "sops": r.sops, "spikes": r.spikes}, step=i)
        report = {
            "images": count, "mismatches": 0, "timesteps": timesteps, "model_timesteps": model_timesteps,
            "accuracy_at_timesteps": float((predictions == labels).mean()),  # at the simulated T, not the model's
            "labels": labels.tolist(), "runs": [asdict(r) for r in result.runs],
            "sim_seconds": round(result.seconds, 1), "simulated_cycles": result.activity.cycles,
            "core_cycles": float(cycles.sum()), "sim_cycles_per_s": result.activity.cycles / result.seconds,
            "nets": len(result.activity.toggles), "toggles_per_cycle": float(result.activity.toggles.sum() / result.activity.cycles),
            "load_average": os.getloadavg()[0], "seed": common.seed, "model_path": selected["model_path"],
        }
        atomic_write_json(REPORT_PATH, report)
        run.log_metrics({"sim_seconds": result.seconds, "mismatches": 0, "sim_cycles_per_s": report["sim_cycles_per_s"]})
        run.log_artifact(REPORT_PATH, "hardware")
    print(f"gate_sim: {count} images at T={timesteps} (model T={model_timesteps}) on the netlist, 0 mismatches vs RTL/golden, "
          f"{result.activity.cycles:,.0f} cycles "
          f"in {result.seconds:.0f}s ({report['sim_cycles_per_s']:,.0f} cycles/s), {report['toggles_per_cycle']:,.0f} toggles/cycle")


if __name__ == "__main__":
    main()
