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
(test accuracy, spikes, SOPs and energy per image on the 45 nm op model, compared with the
baseline ANN's row in results/baseline.json).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from baselines.models import ArchConfig, build_model
from baselines.training import EpochStats, accuracy, fit, seed_everything
from spikebench.convert import convert
from spikebench.data import SplitData, check_split_hash, load_prepared
from spikebench.distributed import barrier, init_from_env, rank_zero_output, shutdown
from spikebench.energy import MacCounter, count_params, energy_joules, footprint_bytes
from spikebench.errors import DatasetError, ParamsError, cli_main
from spikebench.io import load_checkpoint, save_checkpoint
from spikebench.params import constraint, load_section, resolve_device
from spikebench.pca_pruning import SOURCES, LayerSelection, layer_activities, select_channels, slim_model, slim_widths
from spikebench.plots import plt, save
from spikebench.quantize import attach_fake_quantization, bake
from spikebench.results import ResultRow, read_rows, write_rows
from spikebench.snn_training import SnnEpochStats, SnnMeasurement, measure_snn, train_snn, trainable
from spikebench.spiking import RESETS, SURROGATES, SpikingNetwork
from spikebench.tracking import StageRun, child_run, stage_run
from spikebench.training_state import discard_resume_directory, resume_directory

ANN_PATH = "models/ann.pt"
BASELINE_RESULTS = "results/baseline.json"
MODEL_PATH = "models/st_pruning_snn.pt"
RESULTS_PATH = "results/st_pruning.json"
PLOT_TIMESTEPS = "reports/st_pruning_accuracy_vs_timesteps.png"
PLOT_BITS = "reports/st_pruning_accuracy_vs_bits.png"
PLOT_CHANNELS = "reports/st_pruning_channels.png"


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


@dataclass
class Reference:
    """The unpruned baseline ANN's row: what every SNN row is compared with."""

    accuracy: float
    energy_j: float
    params: int
    arch: str


def load_reference(data: SplitData) -> Reference:
    rows = [r for r in read_rows(BASELINE_RESULTS) if r.method == "ann" and r.dataset == data.dataset]
    if not rows:
        raise DatasetError(f"{BASELINE_RESULTS}: no ANN row for {data.dataset}; run the baseline stage (dvc repro baseline)")
    row = rows[0]
    check_split_hash(data.split_hash, row.split_hash, BASELINE_RESULTS)
    return Reference(row.accuracy, row.energy_per_image_j, row.params, row.arch)


def load_ann(data: SplitData) -> tuple[nn.Sequential, dict]:
    state, meta = load_checkpoint(ANN_PATH)
    check_split_hash(data.split_hash, meta.get("split_hash", ""), ANN_PATH)
    model = build_model(ArchConfig.from_meta(meta))
    model.load_state_dict(state)
    return model.eval(), meta


def synaptic_params(net: nn.Module) -> tuple[int, int]:
    """(weights + biases, non-zero ones) of the conv/linear layers (neuron parameters excluded)."""
    tensors = [p for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in (m.weight, m.bias) if p is not None]
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


class RowMaker:
    """Builds the stage's result rows with the shared provenance fields filled in."""

    def __init__(self, data: SplitData, reference: Reference, seed: int, run: StageRun, arch: str, extra: dict) -> None:
        self.data, self.reference, self.seed, self.run, self.arch, self.extra = data, reference, seed, run, arch, extra

    def snn_row(self, net: SpikingNetwork, measured: SnnMeasurement, timesteps: int, bits: int, extra: dict) -> ResultRow:
        total, nonzero = synaptic_params(net)
        metrics = measured.metrics
        return ResultRow(
            method="st_pruning", library="spikebench", dataset=self.data.dataset, split_hash=self.data.split_hash, arch=self.arch,
            timesteps=timesteps, accuracy=measured.accuracy, ann_accuracy=self.reference.accuracy,
            spikes_per_image=metrics.spikes, synops_per_image=metrics.synops, macs_per_image=metrics.macs,
            energy_per_image_j=metrics.energy_j, params=total, nonzero_params=nonzero, weight_bits=bits, seed=self.seed,
            mlflow_run_id=self.run.run_id, mlflow_experiment_id=self.run.experiment_id,
            extra={**self.extra, **metrics.as_extra(), "energy_ratio_vs_ann": round(self.reference.energy_j / metrics.energy_j, 2),
                   "footprint_bytes": footprint_bytes(net, bits), **extra},
        )


def log_snn_epoch(run: StageRun, offset: int = 0):
    def log(stats: SnnEpochStats) -> None:
        metrics = {"train_loss": stats.train_loss, "train_accuracy": stats.train_accuracy, "val_accuracy": stats.val_accuracy,
                   "epoch_seconds": stats.seconds}
        metrics.update({f"threshold_{k}": v for k, v in enumerate(stats.thresholds)})
        run.log_metrics(metrics, step=offset + stats.epoch)
        print(f"  T={stats.timesteps} epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} ({stats.seconds:.1f}s)")

    return log


def spatial_pruning(ann: nn.Sequential, data: SplitData, params: StPruningParams, seed: int, device: str,
                    run: StageRun, resume: Path) -> tuple[nn.Sequential, list[LayerSelection], list[EpochStats]]:
    """PCA widths, the slim ANN warm-started from the kept channels, brief retraining."""
    calibration = data.calibration(params.calibration_size, seed)
    activities = layer_activities(ann, calibration, params.pca_source, timesteps=params.timesteps[0], percentile=params.percentile)
    selections = select_channels(ann, activities, params.variance_fraction)
    slim = slim_model(ann, selections, data.input_shape)

    def log(stats: EpochStats) -> None:
        run.log_metrics({"train_loss": stats.train_loss, "val_accuracy": stats.val_accuracy, "epoch_seconds": stats.seconds}, step=stats.epoch)
        print(f"  slim ANN epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} ({stats.seconds:.1f}s)")

    history = []
    if params.ann_epochs:
        history = fit(slim, data.train, data.val, epochs=params.ann_epochs, batch_size=params.batch_size * 2, lr=params.ann_lr,
                      weight_decay=0.0, seed=seed, device=device, on_epoch=log, checkpoint=resume / "slim_ann.pt")
    return slim.cpu().eval(), selections, history


def plot_timesteps(rows: list[ResultRow], reference: Reference, slim_accuracy: float, path: str) -> None:
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


def plot_bits(rows: list[ResultRow], float_row: ResultRow, reference: Reference, path: str) -> None:
    points = sorted((r for r in rows if r.extra["step"] == "quantization"), key=lambda r: r.weight_bits)
    fig, axis = plt.subplots(figsize=(5, 3.6))
    axis.plot([r.weight_bits for r in points], [r.accuracy * 100 for r in points], marker="o", label=f"SNN, T={float_row.timesteps}, k-bit weights")
    axis.axhline(float_row.accuracy * 100, color="tab:orange", ls=":", label=f"SNN, T={float_row.timesteps}, fp32 weights")
    axis.axhline(reference.accuracy * 100, color="k", ls="--", label="baseline ANN")
    axis.set(xlabel="weight bits k", ylabel="test accuracy (%)", title="weight quantisation")
    axis.set_xticks([r.weight_bits for r in points])
    axis.legend(fontsize=7)
    save(fig, path)


def plot_channels(selections: list[LayerSelection], fraction: float, path: str) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [f"{s.kind} {k + 1}" for k, s in enumerate(selections)]
    positions = range(len(selections))
    left.bar([p - 0.2 for p in positions], [s.channels for s in selections], width=0.4, label="baseline")
    left.bar([p + 0.2 for p in positions], [s.kept for s in selections], width=0.4, label="after PCA")
    left.set_xticks(list(positions), labels=names)
    left.set(ylabel="channels / neurons", title="spatial pruning")
    left.legend()
    for name, s in zip(names, selections, strict=True):
        right.plot(range(1, len(s.explained) + 1), s.explained, label=name)
    right.axhline(fraction, color="k", ls="--", label=f"fraction {fraction}")
    right.set(xscale="log", xlabel="principal components", ylabel="cumulative explained variance", title="PCA of layer activity")
    right.legend(fontsize=7)
    save(fig, path)


def run_stage(common_seed: int, params: StPruningParams, device: str, rank: int = 0) -> list[ResultRow]:
    """The stage's rows; under torchrun every process computes them and rank 0 alone writes them."""
    data = load_prepared()
    reference = load_reference(data)
    ann, ann_meta = load_ann(data)
    seed_everything(common_seed)
    input_shape = data.input_shape
    rows: list[ResultRow] = []
    # every training loop checkpoints each epoch here; a rerun after an interruption resumes
    resume = resume_directory("st_pruning", asdict(params), data.split_hash, common_seed, device, inputs=[ANN_PATH])
    with stage_run("st_pruning", method="st_pruning", library="spikebench", dataset=data.dataset, split_hash=data.split_hash,
                   params=params, enabled=rank == 0) as run:
        # 1. spatial pruning
        with child_run("spatial_pruning", tags={"step": "spatial"}) as child:
            slim, selections, _ = spatial_pruning(ann, data, params, common_seed, device, child, resume)
            slim_accuracy = accuracy(slim, data.test)
            slim_macs = MacCounter(slim).count(input_shape)
            slim_params, slim_nonzero = count_params(slim)
            before = [s.channels for s in selections]
            after = [s.kept for s in selections]
            compression = reference.params / slim_params
            child.log_metrics({"test_accuracy": slim_accuracy, "params": slim_params, "compression": compression})
        widths = slim_widths(slim)
        arch = f"{ann_meta['arch']} {'-'.join(map(str, widths[:-1]))}"
        shared = {"channels_before": before, "channels_after": after, "compression": round(compression, 2),
                  "variance_fraction": params.variance_fraction, "pca_source": params.pca_source, "reset": params.reset}
        maker = RowMaker(data, reference, common_seed, run, arch, shared)
        print(f"st_pruning: channels {before} -> {after}, {reference.params} -> {slim_params} params ({compression:.2f}x), "
              f"slim ANN test accuracy {slim_accuracy:.4f}")
        rows.append(ResultRow(
            method="st_pruning", library="torch", dataset=data.dataset, split_hash=data.split_hash, arch=arch, timesteps=0,
            accuracy=slim_accuracy, ann_accuracy=reference.accuracy, spikes_per_image=0.0, synops_per_image=0.0,
            macs_per_image=float(slim_macs), energy_per_image_j=energy_joules(slim_macs, 0), params=slim_params,
            nonzero_params=slim_nonzero, weight_bits=32, seed=common_seed, mlflow_run_id=run.run_id,
            mlflow_experiment_id=run.experiment_id,
            extra={**shared, "step": "spatial", "config": "slim ANN", "leaderboard": False,
                   "energy_ratio_vs_ann": round(reference.energy_j / energy_joules(slim_macs, 0), 2)},
        ))

        # 2. conversion at the first T of the schedule
        start_t = params.timesteps[0]
        with child_run(f"conversion_T{start_t}", tags={"step": "conversion"}) as child:
            calibration = data.calibration(params.calibration_size, common_seed)
            snn = convert(slim, calibration, params.percentile, params.reset)
            measured = measure_snn(snn, data.test, start_t, input_shape, progress="conversion")
            child.log_metrics({"test_accuracy": measured.accuracy, "energy_uj": measured.energy_j * 1e6})
        rows.append(maker.snn_row(snn, measured, start_t, 32, {"step": "conversion", "config": "converted", "leaderboard": False,
                                                               "percentile": params.percentile}))
        print(f"st_pruning: converted SNN at T={start_t}: {measured.accuracy:.4f}")

        # 3. hybrid training at T_start, then temporal pruning step by step
        net = trainable(snn, learn_threshold=params.learn_threshold, learn_leak=params.learn_leak,
                        surrogate=params.surrogate, surrogate_alpha=params.surrogate_alpha)
        final: SpikingNetwork | None = None
        float_row: ResultRow | None = None
        for step, timesteps in enumerate(params.timesteps):
            epochs = params.first_epochs if step == 0 else params.step_epochs
            with child_run(f"temporal_T{timesteps}", tags={"step": "temporal", "timesteps": timesteps}) as child:
                train_snn(net, data.train, data.val, timesteps=timesteps, epochs=epochs, batch_size=params.batch_size, lr=params.lr,
                          neuron_lr=params.threshold_lr, seed=common_seed + step, train_subset=params.train_subset, val_subset=params.val_subset, device=device,
                          on_epoch=log_snn_epoch(child), desc="st_pruning", checkpoint=resume / f"temporal_T{timesteps}.pt")
                measured = measure_snn(net, data.test, timesteps, input_shape, progress=f"test T={timesteps}")
                child.log_metrics({"test_accuracy": measured.accuracy, "spikes_per_image": measured.metrics.spikes,
                                   "synops_per_image": measured.metrics.synops, "energy_uj": measured.energy_j * 1e6})
            is_final = timesteps == params.final_t
            row = maker.snn_row(net, measured, timesteps, 32, {"step": "temporal", "config": f"T {start_t}→{timesteps}", "epochs": epochs,
                                                               "thresholds": [round(float(t), 4) for t in net.thresholds.detach()],
                                                               "leaks": [round(float(v), 4) for v in net.leaks.detach()],
                                                               "leaderboard": is_final})
            rows.append(row)
            run.log_metrics({"temporal_test_accuracy": measured.accuracy, "temporal_energy_uj": measured.energy_j * 1e6}, step=timesteps)
            print(f"st_pruning: T={timesteps}: test {measured.accuracy:.4f}, {measured.metrics.spikes:.0f} spikes, "
                  f"{measured.energy_j * 1e6:.3f} uJ/image")
            if is_final:
                final, float_row = copy.deepcopy(net), row

        # 4. quantisation-aware fine-tuning of the final SNN to k bits
        assert final is not None and float_row is not None  # validate() guarantees final_t is in the schedule
        final_t = params.final_t
        for k in params.bits:
            with child_run(f"quantize_{k}bit", tags={"step": "quantization", "bits": k}) as child:
                quantised = trainable(final, learn_threshold=params.learn_threshold, learn_leak=params.learn_leak,
                                      surrogate=params.surrogate, surrogate_alpha=params.surrogate_alpha)
                attach_fake_quantization(quantised, k)
                train_snn(quantised, data.train, data.val, timesteps=final_t, epochs=params.qat_epochs, batch_size=params.batch_size,
                          lr=params.qat_lr, neuron_lr=params.qat_lr, seed=common_seed + 100 + k, train_subset=params.train_subset, val_subset=params.val_subset,
                          device=device, on_epoch=log_snn_epoch(child), desc=f"QAT {k}-bit", checkpoint=resume / f"qat_{k}bit.pt")
                scales = bake(quantised.cpu(), k)
                measured = measure_snn(quantised, data.test, final_t, input_shape, progress=f"test {k}-bit")
                child.log_metrics({"test_accuracy": measured.accuracy, "energy_uj": measured.energy_j * 1e6})
            exported = k == params.export_bits
            extra = {"step": "quantization", "config": f"T {start_t}→{final_t}, QAT", "bits": k, "weight_scales": scales,
                     "leaderboard": exported}
            if exported:
                state, meta = quantised.to_checkpoint(method="st_pruning", dataset=data.dataset, split_hash=data.split_hash,
                                                      input_shape=list(input_shape), num_classes=data.num_classes, timesteps=final_t,
                                                      weight_bits=k, weight_scales=scales)
                if rank == 0:
                    save_checkpoint(MODEL_PATH, state, meta)
                extra.update({"model_path": MODEL_PATH, "mappable": all(v == 1.0 for v in meta["leaks"])})
            rows.append(maker.snn_row(quantised, measured, final_t, k, extra))
            run.log_metrics({"quantized_test_accuracy": measured.accuracy}, step=k)
            print(f"st_pruning: {k}-bit weights at T={final_t}: test {measured.accuracy:.4f}")

        if rank == 0:
            plot_channels(selections, params.variance_fraction, PLOT_CHANNELS)
            plot_timesteps(rows, reference, slim_accuracy, PLOT_TIMESTEPS)
            plot_bits(rows, float_row, reference, PLOT_BITS)
            for path in (PLOT_CHANNELS, PLOT_TIMESTEPS, PLOT_BITS):
                run.log_artifact(path, "plots")
            run.log_artifact(MODEL_PATH, "model")
            write_rows(RESULTS_PATH, rows)
    barrier()  # under torchrun, no process still reads a checkpoint when rank 0 deletes them
    if rank == 0:
        discard_resume_directory(resume)
    return rows


@cli_main
def main() -> None:
    common, params = load_section(StPruningParams, "st_pruning")
    device = resolve_device(common.device)
    rank, _ = init_from_env(device)  # under torchrun: data-parallel training (spikebench.distributed)
    with rank_zero_output(rank):
        rows = run_stage(common.seed, params, device, rank)
        headline = [r for r in rows if r.extra.get("model_path")]
        for row in headline:
            print(f"st_pruning: exported {row.extra['model_path']}: {row.weight_bits}-bit, T={row.timesteps}, accuracy {row.accuracy:.4f} "
                  f"(ANN {row.ann_accuracy:.4f}), {row.extra['compression']}x fewer params, {row.extra['energy_ratio_vs_ann']}x less energy")
    shutdown()


if __name__ == "__main__":
    main()
