"""Stage `gate_sim`: the synthesised netlist on real test images, whole inferences, in Verilator.

Runs the first `gate_sim.images` test images through the gate-level netlist of `synth` at the
model's full T (every timestep of every image), in `gate_sim.workers` Verilator processes;
checks every output potential and counter against the golden model (and, cycle by cycle,
the netlist's outputs against the RTL running in lockstep), and saves the per-net activity
for the `power` stage: hardware/gate/activity.npz over the whole run, and one file per phase
of the core (hardware/gate/activity_<phase>.npz; `hardware.gate_activity.PHASE_NAMES`).
`gate_sim.opt` is the C++ optimisation of the simulator: the build is part of the stage's
time (hardware.gate_level: simulation, check, activity).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.export import load_and_quantise
from hardware.gate_level import GateRun, gate_report, run_gate_level
from hardware.power_model import ACTIVITY_FILE
from hardware.selection import load_selected
from hardware.sim import BUILD_ROOT
from hardware.synthesis.flow import NETLIST_FILE
from spikebench import paths
from spikebench.data import load_prepared
from spikebench.errors import ModelError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.tracking import stage_run

OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os")


@dataclass(frozen=True)
class GateSimParams:
    images: int = constraint(min=1)           # K test images on the netlist (the first of the split), all T steps each
    workers: int = constraint(min=1, max=16)  # parallel Verilator processes
    opt: str = constraint(choices=OPT_LEVELS)  # C++ optimisation of the simulator (build time vs speed)


def phase_file(phase: str) -> str:
    """The per-phase activity file beside `ACTIVITY_FILE` (activity.npz -> activity_<phase>.npz)."""
    stem, suffix = ACTIVITY_FILE.rsplit(".", 1)
    return f"{stem}_{phase}.{suffix}"


def save_activity(result: GateRun, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(phase_file("*")):
        stale.unlink()
    result.activity.save(directory / ACTIVITY_FILE)
    for phase, activity in result.phases.items():
        activity.save(directory / phase_file(phase))


@cli_main
def main() -> None:
    common, params = load_section(GateSimParams, "gate_sim")
    _, hw = load_section(HardwareConfig, "hardware")
    netlist = paths.NETLIST_DIR / NETLIST_FILE
    if not netlist.exists():
        raise ModelError(f"{netlist}: missing; run the synth stage (dvc repro synth)")
    data = load_prepared()
    selected = load_selected(data.split_hash)
    net = load_and_quantise(selected["model_path"], hw, timesteps=int(selected["timesteps"]))
    x_test, y_test = data.test
    count = min(params.images, len(y_test))
    pixels = np.rint(x_test[:count].numpy() * 255.0).astype(np.uint8)
    labels = y_test[:count].numpy()

    with stage_run("gate_sim", method="hardware", library="gate", dataset=data.dataset, split_hash=data.split_hash,
                   params={"gate_sim": asdict(params), "hardware": hw.to_dict(), "model": selected["model_path"]}) as run:
        with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as memdir:
            result = run_gate_level(net, netlist.with_suffix(".json"), netlist, pixels, params.workers, Path(memdir), params.opt)
        save_activity(result, paths.GATE_DIR)
        for i, r in enumerate(result.runs):
            run.log_metrics({"cycles": r.cycles, "sops": r.sops, "spikes": r.spikes}, step=i)
        report = gate_report(result, labels, net.timesteps, common.seed, selected["model_path"])
        atomic_write_json(paths.GATE_REPORT, report)
        cycles_per_s = result.activity.cycles / result.seconds  # timings go to MLflow only, never into a file other stages read
        run.log_metrics({"sim_seconds": result.seconds, "build_seconds": result.build_seconds, "mismatches": 0,
                         "sim_cycles_per_s": cycles_per_s})
        run.log_artifact(paths.GATE_REPORT, "hardware")
    print(f"gate_sim: {count} whole inferences (T={net.timesteps}) on the netlist in Verilator, 0 mismatches vs golden/RTL, "
          f"{result.activity.cycles:,.0f} cycles in {result.seconds:.0f}s ({cycles_per_s:,.0f} cycles/s on {params.workers} "
          f"process(es); build {result.build_seconds:.0f}s), {report['toggles_per_cycle']:,.0f} toggles/cycle")


if __name__ == "__main__":
    main()
