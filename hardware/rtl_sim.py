"""Stage `rtl_sim`: the selected SNN on the Verilog accelerator (Icarus), checked bit-exactly.

Exports the model chosen by `select` to memory images (hardware/model/), runs the integer
golden model on the full test split (its accuracy next to the float SNN's is the
quantisation cost), simulates the first `rtl_sim.images` test images on the RTL (split
over `rtl_sim.workers` Icarus processes) and compares every output potential, spike,
synaptic-op and MAC count with the golden model. Any mismatch fails the stage. Latency
is given at the synthesis target clock (`synth.clock_mhz`, the one nominal clock).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hardware.config import HardwareConfig, SynthParams
from hardware.export import IntNetwork, load_and_quantise, write_memory_images
from hardware.golden import compare, run_golden
from hardware.rtl_report import GoldenCheck, RtlRuns, estimated_cycles, images_within_budget, rtl_row
from hardware.selection import load_selected
from hardware.sim import simulate_rtl
from spikebench import paths
from spikebench.data import load_prepared
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import RowContext, write_rows
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class RtlSimParams:
    images: int = constraint(min=1)          # at most this many test images on the RTL (the first of the split) ...
    cycle_budget: int = constraint(min=1)  # ... as long as their estimated cycles fit this budget (at least 1 image)
    workers: int = constraint(min=1, max=16)  # parallel Icarus processes


def golden_check(net: IntNetwork, layout: dict, pixels: np.ndarray, labels: np.ndarray, params: RtlSimParams) -> GoldenCheck:
    """The golden model on the whole split, and on the first images that fit `rtl_sim.cycle_budget`."""
    golden = run_golden(net, pixels, progress=True, count_ops=False)
    head = run_golden(net, pixels[: params.images])
    count = images_within_budget(estimated_cycles(head, layout, net.timesteps), params.cycle_budget)
    return GoldenCheck(float((golden.predictions == labels).mean()), len(labels), head, count)


@cli_main
def main() -> None:
    common, params = load_section(RtlSimParams, "rtl_sim")
    _, hw = load_section(HardwareConfig, "hardware")
    _, synth = load_section(SynthParams, "synth")
    data = load_prepared()
    selected = load_selected(data.split_hash)
    net = load_and_quantise(selected["model_path"], hw, timesteps=int(selected["timesteps"]))
    x_test, y_test = data.test
    pixels, labels = np.rint(x_test.numpy() * 255.0).astype(np.uint8), y_test.numpy()

    with stage_run("rtl_sim", method="hardware", library="rtl", dataset=data.dataset, split_hash=data.split_hash,
                   params={"rtl_sim": asdict(params), "hardware": hw.to_dict(), "clock_mhz": synth.clock_mhz,
                           "model": selected["model_path"]}) as run:
        layout = write_memory_images(net, paths.HW_MODEL_DIR)
        golden = golden_check(net, layout, pixels, labels, params)
        print(f"rtl_sim: golden model {golden.accuracy:.4f} on {len(labels)} test images "
              f"(float SNN {selected['accuracy']:.4f}, T={net.timesteps}, {hw.weight_bits}-bit weights)")
        runs, seconds = simulate_rtl(net, layout, pixels[: golden.count], params.workers, paths.HW_MODEL_DIR)
        problems = compare(runs, golden.head)
        if problems:
            raise SpikebenchError(f"rtl_sim: {len(problems)} of {golden.count} images differ from the golden model; first: {problems[0]}")
        for i, r in enumerate(runs):
            run.log_metrics({"cycles": r.cycles, "sops": r.sops, "spikes": r.spikes}, step=i)
        rtl = RtlRuns.of(runs)
        row = rtl_row(RowContext.of(data, common.seed, run), rtl, golden, labels, layout, net, selected, synth.clock_mhz)
        run.log_metrics({"accuracy": row.accuracy, "golden_accuracy": golden.accuracy, "mismatches": 0,
                         "cycles_mean": row.hw_cycles_per_image, "sim_seconds": seconds})
        atomic_write_json(paths.RTL_REPORT, {"images": [asdict(r) for r in runs], "labels": labels[: golden.count].tolist()})
        write_rows(paths.RTL_RESULTS, [row])
        run.log_headline([row])
        run.log_artifact(paths.HW_MODEL_DIR / "layout.json", "hardware")
        run.log_artifact(paths.RTL_REPORT, "hardware")
    print(f"rtl_sim: {golden.count} images, 0 mismatches, accuracy {row.accuracy:.4f}, {rtl.cycles.mean():,.0f} cycles/image "
          f"(max {rtl.cycles.max():,.0f}), {rtl.sops.mean():,.0f} SOPs/image, {seconds:.0f}s simulated")


if __name__ == "__main__":
    main()
