"""Stage `rtl_sim`: the selected SNN on the Verilog accelerator (Verilator), checked bit-exactly.

Exports the model chosen by `select` to memory images (hardware/model/), runs the integer
golden model on the full test split (its accuracy next to the float SNN's is the
quantisation cost), simulates `rtl_sim.images` test images (0 = the whole split) on the
RTL in `rtl_sim.workers` Verilator processes and compares every output potential, spike,
synaptic-op and MAC count with the golden model. Any mismatch fails the stage. The row's
accuracy is the RTL's own. The memories' access counters, summed over every simulated
image, go to reports/hardware_memory.json for the power stage. Latency is given at the
synthesis target clock (`synth.clock_mhz`, the one nominal clock).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hardware.config import HardwareConfig, SynthParams
from hardware.export import IntNetwork, load_and_quantise, write_memory_images
from hardware.golden import compare, run_golden
from hardware.memory_counts import memory_report
from hardware.rtl_report import GoldenCheck, RtlRuns, rtl_row
from hardware.selection import load_selected
from hardware.verilator import build_verilator, simulate_images
from spikebench import paths
from spikebench.data import load_prepared
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import RowContext, write_rows
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class RtlSimParams:
    images: int = constraint(min=0)           # test images on the RTL (the first of the split); 0 = all
    workers: int = constraint(min=1, max=16)  # parallel Verilator processes


def golden_check(net: IntNetwork, pixels: np.ndarray, labels: np.ndarray, count: int) -> GoldenCheck:
    """The golden model on the whole split, with op counts on the first `count` images (the simulated ones)."""
    head = run_golden(net, pixels[:count], progress=True)
    whole = head if count == len(labels) else run_golden(net, pixels, progress=True, count_ops=False)
    return GoldenCheck(float((whole.predictions == labels).mean()), len(labels), whole.predictions, head, count)


def rtl_report(runs: list, labels: np.ndarray, golden: GoldenCheck) -> dict:
    """reports/hardware_rtl_images.json: the RTL's per-image outputs and counters, as columns, and the golden
    model's class of every test image (the predictions of the power stage's hardware row)."""
    columns = {key: [getattr(r, key) for r in runs] for key in ("cycles", "sops", "macs", "spikes")}
    return {"labels": labels.tolist(), "predictions": [int(np.argmax(r.potentials)) for r in runs],
            "golden_predictions": golden.predictions.tolist(),
            "potentials": [r.potentials for r in runs], **columns,
            "phase_cycles": [r.phase_cycles for r in runs], "layer_cycles": [r.layer_cycles for r in runs]}


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
    count = min(params.images or len(labels), len(labels))

    with stage_run("rtl_sim", method="hardware", library="rtl", dataset=data.dataset, split_hash=data.split_hash,
                   params={"rtl_sim": asdict(params), "hardware": hw.to_dict(), "clock_mhz": synth.clock_mhz,
                           "model": selected["model_path"]}) as run:
        layout = write_memory_images(net, paths.HW_MODEL_DIR)
        golden = golden_check(net, pixels, labels, count)
        print(f"rtl_sim: golden model {golden.accuracy:.4f} on {len(labels)} test images "
              f"(float SNN {selected['accuracy']:.4f}, T={net.timesteps}, {hw.weight_bits}-bit weights)")
        runs, seconds = simulate_images(build_verilator(hw), paths.HW_MODEL_DIR, layout, pixels[:count], params.workers)
        problems = compare(runs, golden.head)
        if problems:
            raise SpikebenchError(f"rtl_sim: {len(problems)} of {count} images differ from the golden model; first: {problems[0]}")
        rtl = RtlRuns.of(runs)
        row = rtl_row(RowContext.of(data, common.seed, run), rtl, golden, labels, layout, net, selected, synth.clock_mhz)
        run.log_metrics({"accuracy": row.accuracy, "golden_accuracy": golden.accuracy, "mismatches": 0,
                         "cycles_mean": row.hw_cycles_per_image, "sim_seconds": seconds,
                         "sim_cycles_per_s": float(rtl.cycles.sum()) / seconds})
        atomic_write_json(paths.RTL_REPORT, rtl_report(runs, labels[:count], golden))
        atomic_write_json(paths.MEMORY_REPORT, memory_report(runs, hw))
        write_rows(paths.RTL_RESULTS, [row])
        run.log_headline([row])
        run.log_artifact(paths.HW_MODEL_DIR / "layout.json", "hardware")
        run.log_artifact(paths.MEMORY_REPORT, "hardware")
    print(f"rtl_sim: {count} images, 0 mismatches, accuracy {row.accuracy:.4f}, {rtl.cycles.mean():,.0f} cycles/image "
          f"(max {rtl.cycles.max():,.0f}), {rtl.sops.mean():,.0f} SOPs/image, {seconds:.0f}s simulated "
          f"({rtl.cycles.sum() / seconds / 1e6:.2f} M cycles/s)")


if __name__ == "__main__":
    main()
