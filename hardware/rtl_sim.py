"""Stage `rtl_sim`: the selected SNN on the Verilog accelerator (Icarus), checked bit-exactly.

Exports the model chosen by `select` to memory images (hardware/model/), runs the integer
golden model on the full test split (its accuracy next to the float SNN's is the
quantisation cost), simulates the first `rtl_sim.images` test images on the RTL (split
over `rtl_sim.workers` Icarus processes) and compares every output potential, spike,
synaptic-op and MAC count with the golden model. Any mismatch fails the stage.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import CoreRun, batch_plusargs, parse_results
from hardware.export import IntNetwork, load_and_quantise, write_memory_images
from hardware.golden import GoldenResult, run_golden
from hardware.select import load_selected
from hardware.sim import BUILD_ROOT, build, memory_plusargs, run_cocotb
from spikebench.data import load_prepared
from spikebench.energy import energy_joules
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import ResultRow, write_rows
from spikebench.tracking import stage_run

MODEL_DIR = Path("hardware/model")
RESULTS_PATH = "results/hardware_rtl.json"
REPORT_PATH = "reports/hardware_rtl_images.json"


@dataclass(frozen=True)
class RtlSimParams:
    images: int = constraint(min=1)          # at most this many test images on the RTL (the first of the split) ...
    cycle_budget: int = constraint(min=1)  # ... as long as their estimated cycles fit this budget (at least 1 image)
    workers: int = constraint(min=1, max=16)  # parallel Icarus processes
    clock_mhz: float = constraint(min_exclusive=0.0)  # nominal clock for images/s


def cycle_overhead(layout: dict, timesteps: int) -> int:
    """Cycles outside the synaptic streams (hardware/README.md, 'Cycle model')."""
    lanes = layout["config"]["lanes"]
    per_step = sum(entry["fire_n"] + (lanes + 12 if i else 8) for i, entry in enumerate(layout["layers"]))
    return timesteps * per_step + layout["vwords"] + 16


def estimated_cycles(golden: GoldenResult, layout: dict, timesteps: int) -> np.ndarray:
    """Expected cycles of each image from the golden op counts (README 'Cycle model'):
    streams of (SOPs + MACs) / P rows plus ~15% lane imbalance, 2 cycles per event, overhead."""
    lanes = layout["config"]["lanes"]
    events = golden.spikes.sum(axis=1)
    return 1.15 * (golden.sops + golden.macs) / lanes + 2 * events + cycle_overhead(layout, timesteps)


def images_within_budget(estimates: np.ndarray, budget: int) -> int:
    """Largest prefix of images whose estimated cycles fit `budget` (at least one)."""
    return max(1, int(np.searchsorted(np.cumsum(estimates), budget, side="right")))


def simulate_rtl(net: IntNetwork, layout: dict, images: np.ndarray, workers: int, memdir: Path) -> tuple[list[CoreRun], float]:
    """Run `images` through the RTL in `workers` parallel Icarus processes; (runs, seconds)."""
    build_dir = build(net.config)
    chunks = [c for c in np.array_split(np.arange(len(images)), workers) if len(c)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        def worker(index: int) -> list[CoreRun]:
            workdir = Path(scratch) / f"worker{index}"
            workdir.mkdir()
            np.save(workdir / "images.npy", images[chunks[index]])
            env = {"SNN_LAYOUT": str((memdir / "layout.json").resolve()), "SNN_WORKDIR": str(workdir), "SNN_IMAGES": str(workdir / "images.npy")}
            run_cocotb(build_dir, "hardware.rtl_job", test_dir=workdir, plusargs=memory_plusargs(memdir) + batch_plusargs(workdir), env=env)
            return parse_results(workdir / "results.txt")

        with ThreadPoolExecutor(len(chunks)) as pool:
            runs = [run for part in pool.map(worker, range(len(chunks))) for run in part]
    return runs, time.perf_counter() - started


def compare(runs: list[CoreRun], golden: GoldenResult) -> list[str]:
    """One line per image that differs from the golden model in any output or counter."""
    problems = []
    for i, run in enumerate(runs):
        expect = {"potentials": golden.potentials[i].tolist(), "spikes": int(golden.spikes[i].sum()),
                  "sops": int(golden.sops[i]), "macs": int(golden.macs[i])}
        got = {"potentials": run.potentials, "spikes": run.spikes, "sops": run.sops, "macs": run.macs}
        bad = [k for k in expect if expect[k] != got[k]]
        if bad:
            problems.append(f"image {i}: {', '.join(bad)} differ (rtl {[got[k] for k in bad]} vs golden {[expect[k] for k in bad]})")
    return problems


@cli_main
def main() -> None:
    common, params = load_section(RtlSimParams, "rtl_sim")
    _, hw = load_section(HardwareConfig, "hardware")
    data = load_prepared()
    selected = load_selected(data.split_hash)
    net = load_and_quantise(selected["model_path"], hw, timesteps=int(selected["timesteps"]))
    x_test, y_test = data.test
    pixels = np.rint(x_test.numpy() * 255.0).astype(np.uint8)
    labels = y_test.numpy()

    with stage_run("rtl_sim", method="hardware", library="rtl", dataset=data.dataset, split_hash=data.split_hash,
                   params={"rtl_sim": asdict(params), "hardware": hw.to_dict(), "model": selected["model_path"]}) as run:
        layout = write_memory_images(net, MODEL_DIR)
        golden = run_golden(net, pixels, progress=True, count_ops=False)
        head = run_golden(net, pixels[: params.images])
        count = images_within_budget(estimated_cycles(head, layout, net.timesteps), params.cycle_budget)
        golden_accuracy = float((golden.predictions == labels).mean())
        print(f"rtl_sim: golden model {golden_accuracy:.4f} on {len(labels)} test images "
              f"(float SNN {selected['accuracy']:.4f}, T={net.timesteps}, {hw.weight_bits}-bit weights)")
        runs, seconds = simulate_rtl(net, layout, pixels[:count], params.workers, MODEL_DIR)
        problems = compare(runs, head)
        if problems:
            raise SpikebenchError(f"rtl_sim: {len(problems)} of {count} images differ from the golden model; first: {problems[0]}")
        cycles = np.array([r.cycles for r in runs], dtype=np.float64)
        sops = np.array([r.sops for r in runs], dtype=np.float64)
        macs = np.array([r.macs for r in runs], dtype=np.float64)
        spikes = np.array([r.spikes for r in runs], dtype=np.float64)
        predictions = np.array([int(np.argmax(r.potentials)) for r in runs])
        accuracy = float((predictions == labels[:count]).mean())
        bound = 2 * (sops + macs) / hw.lanes + cycle_overhead(layout, net.timesteps)
        for i, r in enumerate(runs):
            run.log_metrics({"cycles": r.cycles, "sops": r.sops, "spikes": r.spikes}, step=i)
        weights = [layer.weight for layer in net.layers]
        extra = {
            "images": count,
            "mismatches": len(problems),
            "cycles_per_image": {"mean": float(cycles.mean()), "max": int(cycles.max())},
            "cycle_bound_ratio_max": float((cycles / bound).max()),
            "images_per_s": params.clock_mhz * 1e6 / float(cycles.mean()),
            "us_per_image": float(cycles.mean()) / params.clock_mhz,
            "clock_mhz": params.clock_mhz,
            "lanes": hw.lanes,
            "membrane_bits": hw.membrane_bits,
            "golden_accuracy": golden_accuracy,
            "golden_accuracy_on_images": float((head.predictions[:count] == labels[:count]).mean()),
            "float_accuracy": float(selected["accuracy"]),
            "quantisation_cost_pp": (float(selected["accuracy"]) - golden_accuracy) * 100,
            "source_method": selected["method"],
            "model_path": selected["model_path"],
            "sim_seconds": round(seconds, 1),
            "sim_cycles_per_s": float(cycles.sum() / seconds),
            "config": f"P={hw.lanes}, k={hw.weight_bits}",
            "bits": hw.weight_bits,
        }
        row = ResultRow(
            method="hardware", library="rtl", dataset=data.dataset, split_hash=data.split_hash,
            arch=f"{selected['arch']} ({selected['method']})", timesteps=net.timesteps, accuracy=accuracy,
            ann_accuracy=float(selected["ann_accuracy"]), spikes_per_image=float(spikes.mean()),
            synops_per_image=float(sops.mean()), macs_per_image=float(macs.mean()),
            energy_per_image_j=energy_joules(float(macs.mean()), float(sops.mean())),
            params=int(sum(w.size for w in weights)), nonzero_params=int(sum(np.count_nonzero(w) for w in weights)),
            weight_bits=hw.weight_bits, seed=common.seed, mlflow_run_id=run.run_id, mlflow_experiment_id=run.experiment_id, extra=extra,
        )
        run.log_metrics({"accuracy": accuracy, "golden_accuracy": golden_accuracy, "mismatches": len(problems),
                         "cycles_mean": float(cycles.mean()), "sim_seconds": seconds})
        atomic_write_json(REPORT_PATH, {"images": [asdict(r) for r in runs], "labels": labels[:count].tolist()})
        write_rows(RESULTS_PATH, [row])
        run.log_artifact(MODEL_DIR / "layout.json", "hardware")
        run.log_artifact(REPORT_PATH, "hardware")
    print(f"rtl_sim: {count} images, 0 mismatches, accuracy {accuracy:.4f}, {cycles.mean():,.0f} cycles/image "
          f"(max {cycles.max():,.0f}), {sops.mean():,.0f} SOPs/image, {seconds:.0f}s simulated")


if __name__ == "__main__":
    main()
