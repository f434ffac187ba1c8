"""Stage `st_pruning`: spatio-temporal pruning and quantisation (Chowdhury, Garg, Roy 2021).

  1. spatial   PCA of each hidden layer's activity on a calibration subset of the training
               split picks its width (variance_fraction); the slim ANN keeps the strongest
               channels of the baseline ANN and is retrained briefly.
  2. convert   the slim ANN becomes an SNN with the shared converter at T = timesteps[0].
  3. temporal  hybrid training: surrogate-gradient BPTT at T = timesteps[0], then T is lowered
               step by step along the (strictly decreasing) schedule, fine-tuning at each step.
  4. quantise  quantisation-aware fine-tuning of the SNN at final_timesteps to each k in `bits`
               (symmetric per-layer scales); the export_bits model is saved per the SNN
               checkpoint contract (weight_bits, weight_scales) for the hardware flow.

Every step is a nested MLflow run under the stage run and a row of results/st_pruning.json
(test accuracy on the whole test split with the class predicted for each image, spikes, SOPs
and energy per image on the 45 nm op model, compared with the baseline ANN's row in
results/baseline.json).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from torch import nn

from baselines.models import load_ann
from spikebench import paths
from spikebench.compression import MethodRows, Schedule, SnnTuning, lower_timesteps, neuron_parameters
from spikebench.convert import convert
from spikebench.data import SplitData, load_prepared
from spikebench.distributed import barrier, init_from_env, rank_zero_output, shutdown
from spikebench.energy import MacCounter, count_params, energy_joules
from spikebench.errors import ParamsError, cli_main
from spikebench.params import constraint, load_section, resolve_device
from spikebench.pca_pruning import SOURCES, LayerSelection, SpatialSettings, plot_channels, slim_widths, spatial_pruning
from spikebench.plots import plt, save
from spikebench.quantize import quantization_aware_training
from spikebench.results import Reference, ResultRow, RowContext, load_reference, write_rows
from spikebench.snn_training import measure_snn, trainable
from spikebench.spiking import RESETS, SURROGATES, SpikingNetwork, save_snn
from spikebench.tracking import StageRun, child_run, log_snn_epoch, stage_run
from spikebench.training import scored_predictions, seed_everything
from spikebench.training_state import discard_resume_directory, resume_directory

METHOD = "st_pruning"


@dataclass(frozen=True)
class StPruningParams:
    # spatial pruning
    variance_fraction: float = constraint(min_exclusive=0.0, max=1.0)
    pca_source: str = constraint(choices=SOURCES)
    calibration_size: int = constraint(min=1)
    percentile: float = constraint(min_exclusive=0.0, max=100.0)
    ann_epochs: int = constraint(min=0)
    ann_lr: float = constraint(min_exclusive=0.0)
    # conversion + hybrid training + temporal pruning
    reset: str = constraint(choices=RESETS)
    timesteps: list[int] = constraint(min=1)
    final_timesteps: int | None = constraint(min=1)  # null: the last of the schedule
    first_epochs: int = constraint(min=0)      # hybrid training at timesteps[0]
    step_epochs: int = constraint(min=0)       # fine-tuning at every later step
    lr: float = constraint(min_exclusive=0.0)
    threshold_lr: float = constraint(min_exclusive=0.0)   # thresholds/leaks adapt faster when T drops
    batch_size: int = constraint(min=1)
    train_subset: int = constraint(min=0)      # images per SNN epoch (0 = the whole training split)
    val_subset: int = constraint(min=0)        # validation images scored per epoch (0 = all)
    learn_threshold: bool = constraint()
    learn_leak: bool = constraint()          # leak != 1 is not mappable to the IF hardware
    surrogate: str = constraint(choices=SURROGATES)
    surrogate_alpha: float = constraint(min_exclusive=0.0)
    # quantisation
    bits: list[int] = constraint(min=2, nonempty=True)
    export_bits: int = constraint(min=2)
    qat_epochs: int = constraint(min=0)
    qat_lr: float = constraint(min_exclusive=0.0)

    def validate(self, prefix: str) -> None:
        schedule = self.timesteps
        if not schedule:
            raise ParamsError(f"params.yaml: {prefix}.timesteps must not be empty; give a strictly decreasing schedule such as [16, 8, 4]")
        if any(later >= earlier for earlier, later in zip(schedule, schedule[1:], strict=False)):
            raise ParamsError(f"params.yaml: {prefix}.timesteps {schedule} must be strictly decreasing (temporal pruning lowers T), e.g. [16, 8, 4, 2, 1]")
        if self.final_timesteps is not None and self.final_timesteps not in schedule:
            raise ParamsError(f"params.yaml: {prefix}.final_timesteps {self.final_timesteps} must be one of timesteps {schedule} (or null for the last)")
        if self.export_bits not in self.bits:
            raise ParamsError(f"params.yaml: {prefix}.export_bits {self.export_bits} must be one of bits {self.bits}")

    @property
    def final_t(self) -> int:
        return self.final_timesteps if self.final_timesteps is not None else self.timesteps[-1]

    def spatial(self) -> SpatialSettings:
        return SpatialSettings(self.variance_fraction, self.pca_source, self.calibration_size, self.timesteps[0], self.percentile,
                               self.ann_epochs, self.ann_lr, self.batch_size * 2)

    def tuning(self, device: str) -> SnnTuning:
        return SnnTuning(self.batch_size, self.lr, self.threshold_lr, self.train_subset, self.val_subset, device)

    def neuron_options(self) -> dict:
        """What `trainable` makes learnable, and the surrogate gradient."""
        return {"learn_threshold": self.learn_threshold, "learn_leak": self.learn_leak, "surrogate": self.surrogate,
                "surrogate_alpha": self.surrogate_alpha}


# --- the phases: each a library call, its rows and its MLflow child run -------------------------

@dataclass
class Spatial:
    """The spatial phase's outcome: the slim ANN, the PCA per layer and its row."""

    slim: nn.Sequential
    selections: list[LayerSelection]
    accuracy: float
    row: ResultRow


def spatial_phase(ann: nn.Sequential, ann_meta: dict, data: SplitData, reference: Reference, params: StPruningParams, seed: int,
                  device: str, run: StageRun, resume: Path) -> tuple[Spatial, MethodRows]:
    """PCA spatial pruning and the slim ANN's row; the row builder every later row shares."""
    with child_run("spatial_pruning", {"variance_fraction": params.variance_fraction}, tags={"step": "spatial"}) as child:
        slim, selections = spatial_pruning(ann, data, params.spatial(), seed=seed, device=device, run=child,
                                           checkpoint=resume / "slim_ann.pt")
        slim_accuracy, slim_predicted = scored_predictions(slim, data.test)
        slim_macs = MacCounter(slim).count(data.input_shape)
        slim_params = count_params(slim)[0]
        compression = reference.params / slim_params
        child.log_metrics({"test_accuracy": slim_accuracy, "params": slim_params, "compression": compression})
    before, after = [s.channels for s in selections], [s.kept for s in selections]
    shared = {"channels_before": before, "channels_after": after, "compression": round(compression, 2),
              "variance_fraction": params.variance_fraction, "pca_source": params.pca_source, "reset": params.reset}
    arch = f"{ann_meta['arch']} {'-'.join(map(str, slim_widths(slim)[:-1]))}"
    rows = MethodRows(RowContext.of(data, seed, run), reference, METHOD, arch, len(data.test[1]), shared)
    print(f"st_pruning: channels {before} -> {after}, {reference.params} -> {slim_params} params ({compression:.2f}x), "
          f"slim ANN test accuracy {slim_accuracy:.4f}")
    ratio = round(reference.energy_j / energy_joules(slim_macs, 0), 2)
    row = rows.ann(slim, slim_accuracy, float(slim_macs), predictions=slim_predicted,
                   extra={"step": "spatial", "config": "slim ANN", "energy_ratio_vs_ann": ratio})
    return Spatial(slim, selections, slim_accuracy, row), rows


def conversion_phase(slim: nn.Sequential, data: SplitData, params: StPruningParams, seed: int,
                     rows: MethodRows) -> tuple[SpikingNetwork, ResultRow]:
    """The slim ANN converted at the first T of the schedule, measured on the test split."""
    start_t = params.timesteps[0]
    with child_run(f"conversion_T{start_t}", {"timesteps": start_t, "percentile": params.percentile}, tags={"step": "conversion"}) as child:
        snn = convert(slim, data.calibration(params.calibration_size, seed), params.percentile, params.reset)
        measured = measure_snn(snn, data.test, start_t, data.input_shape, progress="conversion")
        child.log_metrics({"test_accuracy": measured.accuracy, "energy_uj": measured.energy_j * 1e6})
    print(f"st_pruning: converted SNN at T={start_t}: {measured.accuracy:.4f}")
    return snn, rows.snn(snn, measured, start_t, extra={"step": "conversion", "config": "converted", "percentile": params.percentile})


def temporal_phase(snn: SpikingNetwork, data: SplitData, params: StPruningParams, seed: int, device: str, run: StageRun,
                   rows: MethodRows, resume: Path) -> tuple[list[ResultRow], SpikingNetwork, ResultRow]:
    """Hybrid training at the first T, then T lowered step by step; (rows, SNN at final_t, its row)."""
    net = trainable(snn, **params.neuron_options())
    start_t, out, final = params.timesteps[0], [], {}

    def measured_at(child: StageRun, timesteps: int, epochs: int) -> None:
        measured = measure_snn(net, data.test, timesteps, data.input_shape, progress=f"test T={timesteps}")
        child.log_metrics({"test_accuracy": measured.accuracy, "spikes_per_image": measured.metrics.spikes,
                           "synops_per_image": measured.metrics.synops, "energy_uj": measured.energy_j * 1e6})
        is_final = timesteps == params.final_t
        out.append(rows.snn(net, measured, timesteps, headline=is_final, extra={
            "step": "temporal", "config": f"T {start_t}→{timesteps}", "epochs": epochs, **neuron_parameters(net)}))
        run.log_metrics({"temporal_test_accuracy": measured.accuracy, "temporal_energy_uj": measured.energy_j * 1e6}, step=timesteps)
        print(f"st_pruning: T={timesteps}: test {measured.accuracy:.4f}, {measured.metrics.spikes:.0f} spikes, "
              f"{measured.energy_j * 1e6:.3f} uJ/image")
        if is_final:
            final.update(net=copy.deepcopy(net), row=out[-1])

    lower_timesteps(net, data, Schedule(params.timesteps, params.first_epochs, params.step_epochs), params.tuning(device), seed=seed,
                    checkpoints=str(resume / "temporal_"), on_trained=measured_at, desc=METHOD,
                    run_at=lambda t: child_run(f"temporal_T{t}", {"timesteps": t}, tags={"step": "temporal"}))
    return out, final["net"], final["row"]  # validate() guarantees final_t is in the schedule


def quantization_phase(final: SpikingNetwork, data: SplitData, params: StPruningParams, seed: int, device: str, run: StageRun,
                       rows: MethodRows, resume: Path, rank: int) -> list[ResultRow]:
    """QAT of the final SNN to each k of `bits`; the export_bits model saved for the hardware flow."""
    final_t, out = params.final_t, []
    tuning = replace(params.tuning(device), lr=params.qat_lr, neuron_lr=params.qat_lr)
    for k in params.bits:
        with child_run(f"quantize_{k}bit", {"bits": k, "timesteps": final_t}, tags={"step": "quantization"}) as child:
            quantised = trainable(final, **params.neuron_options())
            scales = quantization_aware_training(quantised, k, data, tuning, timesteps=final_t, epochs=params.qat_epochs,
                                                 seed=seed + 100 + k, checkpoint=resume / f"qat_{k}bit.pt",
                                                 on_epoch=log_snn_epoch(child), desc=f"QAT {k}-bit")
            measured = measure_snn(quantised, data.test, final_t, data.input_shape, progress=f"test {k}-bit")
            child.log_metrics({"test_accuracy": measured.accuracy, "energy_uj": measured.energy_j * 1e6})
        exported = k == params.export_bits
        extra = {"step": "quantization", "config": f"T {params.timesteps[0]}→{final_t}, QAT", "bits": k, "weight_scales": scales}
        fields = export(quantised, data, final_t, k, scales, rank) if exported else {}
        out.append(rows.snn(quantised, measured, final_t, weight_bits=k, headline=exported, extra=extra, **fields))
        run.log_metrics({"quantized_test_accuracy": measured.accuracy}, step=k)
        print(f"st_pruning: {k}-bit weights at T={final_t}: test {measured.accuracy:.4f}")
    return out


def export(net: SpikingNetwork, data: SplitData, timesteps: int, bits: int, scales: list[float], rank: int) -> dict:
    """Save the SNN per the checkpoint contract (rank 0); its row's mappable/model_path fields."""
    fields = dict(method=METHOD, dataset=data.dataset, split_hash=data.split_hash, input_shape=list(data.input_shape),
                  num_classes=data.num_classes, timesteps=timesteps, weight_bits=bits, weight_scales=scales)
    meta = save_snn(paths.ST_PRUNING_MODEL, net, **fields) if rank == 0 else net.to_checkpoint(**fields)[1]
    return {"model_path": str(paths.ST_PRUNING_MODEL), "mappable": all(v == 1.0 for v in meta["leaks"])}


# --- plots ----------------------------------------------------------------------------------------

def plot_timesteps(rows: list[ResultRow], reference: Reference, slim_accuracy: float, path: str | Path) -> None:
    temporal = sorted((r for r in rows if r.extra["step"] in ("conversion", "temporal")), key=lambda r: r.timesteps)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for step, marker in (("conversion", "s"), ("temporal", "o")):
        points = [r for r in temporal if r.extra["step"] == step]
        left.plot([r.timesteps for r in points], [r.accuracy * 100 for r in points], marker=marker, label=f"SNN ({step})")
        right.plot([r.timesteps for r in points], [r.energy_per_image_j * 1e6 for r in points], marker=marker, label=f"SNN ({step})")
    left.axhline(reference.accuracy * 100, color="k", ls="--", label="baseline ANN")
    left.axhline(slim_accuracy * 100, color="grey", ls=":", label="slim ANN")
    left.set(xscale="log", xlabel="timesteps T", ylabel="test accuracy (%)", title="temporal pruning")
    right.axhline(reference.energy_j * 1e6, color="k", ls="--", label="baseline ANN")
    right.set(xscale="log", yscale="log", xlabel="timesteps T", ylabel="energy/image (µJ, 45 nm)", title="compute energy")
    for axis in (left, right):
        axis.set_xticks(sorted({r.timesteps for r in temporal}), labels=[str(t) for t in sorted({r.timesteps for r in temporal})])
        axis.legend(fontsize=7)
    save(fig, path)


def plot_bits(rows: list[ResultRow], float_row: ResultRow, reference: Reference, path: str | Path) -> None:
    points = sorted((r for r in rows if r.extra["step"] == "quantization"), key=lambda r: r.weight_bits)
    fig, axis = plt.subplots(figsize=(5, 3.6))
    axis.plot([r.weight_bits for r in points], [r.accuracy * 100 for r in points], marker="o", label=f"SNN, T={float_row.timesteps}, k-bit weights")
    axis.axhline(float_row.accuracy * 100, color="tab:orange", ls=":", label=f"SNN, T={float_row.timesteps}, fp32 weights")
    axis.axhline(reference.accuracy * 100, color="k", ls="--", label="baseline ANN")
    axis.set(xlabel="weight bits k", ylabel="test accuracy (%)", title="weight quantisation")
    axis.set_xticks([r.weight_bits for r in points])
    axis.legend(fontsize=7)
    save(fig, path)


# --- the stage ------------------------------------------------------------------------------------

def run_stage(seed: int, params: StPruningParams, device: str, rank: int = 0) -> list[ResultRow]:
    """The stage's rows; under torchrun every process computes them and rank 0 alone writes them."""
    data = load_prepared()
    reference = load_reference(paths.BASELINE_RESULTS, data.dataset, data.split_hash)
    ann, ann_meta = load_ann(data)
    seed_everything(seed)
    # every training loop checkpoints each epoch here; a rerun after an interruption resumes
    resume = resume_directory(METHOD, asdict(params), data.split_hash, seed, device, inputs=[paths.ANN_MODEL])
    with stage_run(METHOD, method=METHOD, library="spikebench", dataset=data.dataset, split_hash=data.split_hash,
                   params=params, enabled=rank == 0) as run:
        spatial, row_maker = spatial_phase(ann, ann_meta, data, reference, params, seed, device, run, resume)
        snn, converted = conversion_phase(spatial.slim, data, params, seed, row_maker)
        temporal, final, float_row = temporal_phase(snn, data, params, seed, device, run, row_maker, resume)
        rows = [spatial.row, converted, *temporal, *quantization_phase(final, data, params, seed, device, run, row_maker, resume, rank)]
        if rank == 0:
            plot_channels(spatial.selections, params.variance_fraction, paths.ST_PRUNING_CHANNELS_PLOT)
            plot_timesteps(rows, reference, spatial.accuracy, paths.ST_PRUNING_TIMESTEPS_PLOT)
            plot_bits(rows, float_row, reference, paths.ST_PRUNING_BITS_PLOT)
            for path in (paths.ST_PRUNING_CHANNELS_PLOT, paths.ST_PRUNING_TIMESTEPS_PLOT, paths.ST_PRUNING_BITS_PLOT):
                run.log_artifact(path, "plots")
            run.log_snn_model(paths.ST_PRUNING_MODEL, data.test[0][:2])
            write_rows(paths.ST_PRUNING_RESULTS, rows)
            run.log_headline(rows)
    barrier()  # under torchrun, no process still reads a checkpoint when rank 0 deletes them
    if rank == 0:
        discard_resume_directory(resume)
    return rows


@cli_main
def main() -> None:
    common, params = load_section(StPruningParams, METHOD)
    device = resolve_device(common.device)
    rank, _ = init_from_env(device)  # under torchrun: data-parallel training (spikebench.distributed)
    with rank_zero_output(rank):
        for row in (r for r in run_stage(common.seed, params, device, rank) if r.model_path):
            print(f"st_pruning: exported {row.model_path}: {row.weight_bits}-bit, T={row.timesteps}, accuracy {row.accuracy:.4f} "
                  f"(ANN {row.ann_accuracy:.4f}), {row.extra['compression']}x fewer params, {row.extra['energy_ratio_vs_ann']}x less energy")
    shutdown()


if __name__ == "__main__":
    main()
