"""Stage `ann_rtl`: the ANN baselines on the MAC-array accelerator (hardware/ann/), so that
SNN and ANN energy are compared on the same silicon rather than by op counts.

For each model of `ann_hw.models` (`baseline`: models/ann.pt; `st_pruning`: the slim ANN
st_pruning converts, hardware/ann/models.py): post-training quantisation to `weight_bits`
weights and 8-bit activations; the integer golden model's accuracy on the whole test split
next to the float ANN's (a drop over `max_accuracy_drop` stops the stage); export to memory
images sized to the model (hardware/ann_model/<name>/); `images` test images (0 = all) in
Verilator, every logit compared with the golden model (any mismatch stops the stage). Rows
(results/hardware_ann.json, method `ann`, library `rtl`): the RTL's accuracy, cycles per
image, MACs issued and skipped (zero gating), exact memory accesses per image and the memory
energy they cost under the SRAM model (hardware/memory_model.py); reports/hardware_ann.json
holds the per-layer figures and memory geometry. Latency at `synth.clock_mhz`.

Not yet a stage of the default `dvc repro` (issue #18 is in progress: gate-level power of
this core is the missing part, and the whole split on both ANNs adds ~15 min of simulation);
run it by hand with `python -m hardware.ann_rtl`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from baselines.models import load_ann
from hardware.ann import golden
from hardware.ann.config import AnnHwConfig
from hardware.ann.export import export
from hardware.ann.models import pruned_ann
from hardware.ann.quantise import WEIGHT_SCALES, IntAnn, quantise
from hardware.ann.sim import AnnRun, build, simulate
from hardware.config import SynthParams
from hardware.memory_model import AccessEnergyModel
from spikebench import paths
from spikebench.data import SplitData, load_prepared
from spikebench.energy import count_params
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section, resolve_device
from spikebench.results import ResultRow, RowContext, write_rows
from spikebench.tracking import stage_run

STAGE = "ann_rtl"
MODELS = ("baseline", "st_pruning")


@dataclass(frozen=True)
class AnnHwParams:
    models: list[str] = constraint(nonempty=True, choices=MODELS)  # which ANNs run on the array
    macs: int = constraint(min=1, max=256)                 # N lanes of the output-stationary MAC array
    weight_bits: int = constraint(min=2, max=16)           # per-layer symmetric weights
    weight_scale: str = constraint(choices=WEIGHT_SCALES)  # weight clipping: max | mse (hardware/ann/quantise.py)
    acc_bits: int = constraint(min=16, max=48)             # accumulator bits
    act_percentile: float = constraint(min_exclusive=0.0, max=100.0)  # activation range calibration
    calibration_size: int = constraint(min=1)              # training images for the calibration
    max_accuracy_drop: float = constraint(min=0.0, max=1.0)  # integer vs float ANN on the whole split
    images: int = constraint(min=0)                        # test images in Verilator (0 = the whole split)
    workers: int = constraint(min=1, max=16)               # parallel Verilator processes


def float_accuracy(model: nn.Sequential, data: SplitData) -> float:
    """The float ANN's accuracy on the whole test split."""
    x, y = data.test
    with torch.no_grad():
        predictions = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((predictions == y).float().mean())


def source_model(name: str, data: SplitData, seed: int, device: str) -> nn.Sequential:
    """The float ANN named in `ann_hw.models`."""
    return load_ann(data)[0] if name == "baseline" else pruned_ann(data, seed, device)


def layer_report(net: IntAnn, config: AnnHwConfig, counts: list[golden.LayerCounts]) -> list[dict]:
    """Per layer: shape, tiles, cycles and the mean issued / skipped MACs per image."""
    return [{"kind": layer.kind, "in_shape": list(layer.in_shape), "cout": layer.cout, "kernel": layer.kernel,
             "pool": layer.pool, "tiles": -(-layer.cout // config.macs), "cycles": golden.layer_cycles(layer, config.macs),
             "macs_issued": float(c.issued.mean()), "macs_skipped": float(c.skipped.mean())}
            for layer, c in zip(net.layers, counts, strict=True)]


def memory_summary(runs: list[AnnRun], config: AnnHwConfig) -> dict[str, dict]:
    """Per memory: geometry, mean reads/writes per image and their dynamic energy (180 nm SRAM model,
    writes priced as reads: Horowitz gives reads only)."""
    access = AccessEnergyModel.fit()
    summary = {}
    for name, (width, depth) in config.memories().items():
        reads = float(np.mean([r.memory[name][0] for r in runs]))
        writes = float(np.mean([r.memory[name][1] for r in runs]))
        pj = access.read_pj(width * depth, width)
        summary[name] = {"width_bits": width, "depth_words": depth, "reads_per_image": reads, "writes_per_image": writes,
                         "pj_per_access": pj, "energy_per_image_j": (reads + writes) * pj * 1e-12,
                         "extrapolated": bool(access.extrapolated(width * depth))}
    return summary


@dataclass
class Measured:
    """One model through the flow: the integer net, its config, accuracies and the RTL runs."""

    name: str
    net: IntAnn
    config: AnnHwConfig
    float_accuracy: float
    golden_accuracy: float
    rtl_accuracy: float
    runs: list[AnnRun]
    params: tuple[int, int]
    widths: list[int]
    sim_seconds: float


def measure(name: str, model: nn.Sequential, data: SplitData, params: AnnHwParams, seed: int, workers: int) -> Measured:
    """Quantise, check the integer accuracy, export, simulate and compare `model` on the array."""
    x, y = data.test
    pixels, labels = np.rint(x.numpy() * 255.0).astype(np.uint8), y.numpy()
    net = quantise(model, data.calibration(params.calibration_size, seed), params.weight_bits, params.act_percentile,
                   scale_method=params.weight_scale)
    reference = float_accuracy(model, data)
    logits = golden.predict(net, pixels)
    golden_accuracy = float((golden.classes(logits) == labels).mean())
    print(f"{STAGE}: {name}: float ANN {reference:.4f}, integer ANN {golden_accuracy:.4f} on {len(labels)} test images "
          f"({params.weight_bits}-bit weights, 8-bit activations)", flush=True)
    if reference - golden_accuracy > params.max_accuracy_drop:
        raise SpikebenchError(f"{STAGE}: {name}: the integer ANN loses {100 * (reference - golden_accuracy):.2f} pp against the "
                              f"float ANN, over ann_hw.max_accuracy_drop; raise ann_hw.weight_bits")
    config = AnnHwConfig.sized(net, params.macs, params.acc_bits)
    layout = export(net, config, paths.ANN_HW_MODEL_DIR / name)
    count = min(params.images or len(labels), len(labels))
    runs, seconds = simulate(build(config), paths.ANN_HW_MODEL_DIR / name, layout, pixels[:count], workers, label=f"{STAGE}_{name}")
    cycles, dense = golden.cycles(net, config.macs), net.dense_macs()
    bad = [i for i, run in enumerate(runs) if run.logits != logits[i].tolist() or run.cycles != cycles or run.issued + run.skipped != dense]
    if bad:
        first = runs[bad[0]]
        raise SpikebenchError(f"{STAGE}: {name}: {len(bad)} of {count} images differ from the golden model; first: test image {bad[0]} "
                              f"RTL {first.logits}, {first.cycles} cycles, {first.issued}+{first.skipped} MACs vs golden "
                              f"{logits[bad[0]].tolist()}, {cycles} cycles, {dense} MACs")
    rtl_accuracy = float((golden.classes(np.array([r.logits for r in runs])) == labels[:count]).mean())
    widths = [layer.cout for layer in net.layers[:-1]]
    return Measured(name, net, config, reference, golden_accuracy, rtl_accuracy, runs, count_params(model), widths, seconds)


def ann_row(context: RowContext, m: Measured, clock_mhz: float) -> ResultRow:
    """The model's row: RTL accuracy, cycles, MACs issued / skipped and memory traffic per image (means)."""
    cycles = float(np.mean([r.cycles for r in m.runs]))
    issued = float(np.mean([r.issued for r in m.runs]))
    skipped = float(np.mean([r.skipped for r in m.runs]))
    memories = memory_summary(m.runs, m.config)
    memory_j = sum(v["energy_per_image_j"] for v in memories.values())
    extra = {"config": m.name, "macs_array": m.config.macs, "float_accuracy": m.float_accuracy, "golden_accuracy": m.golden_accuracy,
             "int_float_gap_pp": round(100 * (m.float_accuracy - m.golden_accuracy), 3), "mismatches": 0,
             "macs_issued_per_image": issued, "macs_skipped_per_image": skipped, "skipped_fraction": skipped / (issued + skipped),
             "us_per_image": cycles / clock_mhz, "act_percentile": m.net.percentile, "weight_scale": m.net.meta.get("scale_method"),
             "memory_energy_per_image_j_180nm": memory_j,
             "memory_accesses_per_image": {k: [v["reads_per_image"], v["writes_per_image"]] for k, v in memories.items()},
             "sram_bits": sum(v["width_bits"] * v["depth_words"] for v in memories.values())}
    arch = f"{'-'.join(map(str, m.widths))} w{m.net.weight_bits}a8, {m.config.macs}-MAC array"
    return context.row("ann", "rtl", arch, timesteps=0,
                       accuracy=m.rtl_accuracy, test_images=len(m.runs), ann_accuracy=m.float_accuracy, params=m.params,
                       weight_bits=m.net.weight_bits, headline=False, macs_per_image=float(m.net.dense_macs()),
                       hw_cycles_per_image=cycles, hw_clock_mhz=clock_mhz, extra=extra)


def report(m: Measured) -> dict:
    """reports/hardware_ann.json for one model: config, per-layer structure and cycles, memories (no timings)."""
    counts = golden.counts(m.net, np.zeros((1, *m.net.input_shape), dtype=np.uint8), m.config.macs)
    layers = layer_report(m.net, m.config, counts)
    for layer in layers:  # data-dependent counts come from the RTL rows; here only the structure
        layer.pop("macs_issued"), layer.pop("macs_skipped")
    return {"config": m.config.to_dict(), "layers": layers, "memories": memory_summary(m.runs, m.config),
            "images": len(m.runs), "cycles_per_image": golden.cycles(m.net, m.config.macs),
            "float_accuracy": m.float_accuracy, "golden_accuracy": m.golden_accuracy, "rtl_accuracy": m.rtl_accuracy}


@cli_main
def main() -> None:
    common, params = load_section(AnnHwParams, "ann_hw")
    _, synth = load_section(SynthParams, "synth")
    device = resolve_device(common.device)
    data = load_prepared()
    with stage_run(STAGE, method="ann", library="rtl", dataset=data.dataset, split_hash=data.split_hash,
                   params={"ann_hw": asdict(params), "clock_mhz": synth.clock_mhz}) as run:
        context = RowContext.of(data, common.seed, run)
        measured = [measure(name, source_model(name, data, common.seed, device), data, params, common.seed, params.workers)
                    for name in params.models]
        rows = [ann_row(context, m, synth.clock_mhz) for m in measured]
        atomic_write_json(paths.ANN_HW_REPORT, {m.name: report(m) for m in measured})
        write_rows(paths.ANN_HW_RESULTS, rows)
        for m, row in zip(measured, rows, strict=True):
            run.log_metrics({f"{m.name}_accuracy": row.accuracy, f"{m.name}_cycles": float(row.hw_cycles_per_image or 0),
                             f"{m.name}_sim_seconds": m.sim_seconds})
            print(f"{STAGE}: {m.name}: {len(m.runs)} images bit-exact, accuracy {row.accuracy:.4f} (float {m.float_accuracy:.4f}), "
                  f"{row.hw_cycles_per_image:,.0f} cycles/image, {row.extra['macs_issued_per_image']:,.0f} MACs issued + "
                  f"{row.extra['macs_skipped_per_image']:,.0f} skipped, memory {1e6 * row.extra['memory_energy_per_image_j_180nm']:.2f} uJ "
                  f"(180 nm), {m.sim_seconds:.0f}s simulated")


if __name__ == "__main__":
    main()
