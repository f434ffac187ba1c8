"""Stage `gate_sim`: the synthesised netlist on real test images (Icarus + OSU cell models).

Runs the first `gate_sim.images` test images for `gate_sim.timesteps` steps (a gate-level
cycle costs ~100x an RTL one, and a Fashion-MNIST image at the model's full T can take
millions of cycles) through the gate-level netlist of `synth`, checks every output and
counter against the golden model and saves the per-net activity for the `power` stage
(`hardware.gate_level`: simulation, check, activity).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.export import load_and_quantise
from hardware.gate_level import gate_report, run_gate_level
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


@dataclass(frozen=True)
class GateSimParams:
    images: int = constraint(min=1)           # K test images on the netlist (the first of the split)
    timesteps: int = constraint(min=1)        # T simulated at gate level (capped at the model's T); see the power stage
    workers: int = constraint(min=1, max=16)  # parallel Icarus processes (one dump each)


@cli_main
def main() -> None:
    common, params = load_section(GateSimParams, "gate_sim")
    _, hw = load_section(HardwareConfig, "hardware")
    netlist = paths.NETLIST_DIR / NETLIST_FILE
    if not netlist.exists():
        raise ModelError(f"{netlist}: missing; run the synth stage (dvc repro synth)")
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
        paths.GATE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as memdir:
            result = run_gate_level(net, netlist.with_suffix(".json"), netlist, pixels, params.workers, Path(memdir))
        result.activity.save(paths.GATE_DIR / ACTIVITY_FILE)
        for i, r in enumerate(result.runs):
            run.log_metrics({"cycles": r.cycles, "sops": r.sops, "spikes": r.spikes}, step=i)
        report = gate_report(result, labels, timesteps, model_timesteps, common.seed, selected["model_path"])
        atomic_write_json(paths.GATE_REPORT, report)
        cycles_per_s = result.activity.cycles / result.seconds  # timings go to MLflow only, never into a file other stages read
        run.log_metrics({"sim_seconds": result.seconds, "mismatches": 0, "sim_cycles_per_s": cycles_per_s})
        run.log_artifact(paths.GATE_REPORT, "hardware")
    print(f"gate_sim: {count} images at T={timesteps} (model T={model_timesteps}) on the netlist, 0 mismatches vs RTL/golden, "
          f"{result.activity.cycles:,.0f} cycles in {result.seconds:.0f}s ({cycles_per_s:,.0f} cycles/s), "
          f"{report['toggles_per_cycle']:,.0f} toggles/cycle")


if __name__ == "__main__":
    main()
