"""Stage `attention_pruning`: attention-guided compression with learnt threshold and leak.

Spike-Thrift (Kundu et al., WACV 2021) with DIET-SNN neurons (Rathi & Roy):

  1. meta-model   the unpruned baseline ANN (models/ann.pt); its attention maps (channel-wise
                  sum of |activation|^p per hidden conv block, normalised) guide the student.
  2. compression  a student warm-started from the meta-model is pruned to the target density
                  (irregular: weights; structured: channels) and trained with the task loss plus
                  the attention-transfer loss, its mask updated by prune-and-regrow at a fixed
                  density (spikebench.sparse_masks).
  3. SNN          the sparse student is converted (hybrid initialisation) and trained with
                  surrogate gradients from direct analog input, the mask fixed, learning the
                  weights, a threshold and a leak per layer (DIET-SNN), at T = timesteps[0] and
                  then fine-tuned at each lower T.
  4. ablation     the same pipeline without attention guidance (attention weight 0) for the
                  first irregular density: spikes per image of both are reported.
  5. second library  the final irregular SNN also runs through snntorch (`Leaky` with learnable
                  beta/threshold) on the same test images; the predictions are compared.

Rows per (mode, density, T) carry accuracy (with the class predicted for each test image it is
over), compression (dense / non-zero synaptic params), spikes, SOPs over non-zero synapses only,
and energy on the 45 nm op model.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from baselines.models import load_ann
from spikebench import paths
from spikebench.attention import CompressionConfig, SparseLearning, compress, fixed_mask_hooks, sparse_macs
from spikebench.compression import (
    MethodRows,
    Schedule,
    SnnTuning,
    compare_with_snntorch,
    lower_timesteps,
    neuron_parameters,
)
from spikebench.convert import convert, fixed_subset
from spikebench.data import SplitData, load_prepared
from spikebench.distributed import barrier, init_from_env, rank_zero_output, shutdown
from spikebench.energy import count_params
from spikebench.errors import ParamsError, cli_main
from spikebench.params import constraint, load_section, resolve_device
from spikebench.plots import plt, save
from spikebench.results import Reference, ResultRow, RowContext, load_reference, write_rows
from spikebench.snn_training import evaluate_snn, measure_snn, trainable
from spikebench.sparse_masks import MODES, SparseMasks, synaptic_layers
from spikebench.spiking import SURROGATES, SpikingNetwork, save_snn
from spikebench.tracking import StageRun, child_run, stage_run
from spikebench.training import scored_predictions, seed_everything
from spikebench.training_state import discard_resume_directory, resume_directory

METHOD = "attention_pruning"
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class AttentionPruningParams:
    # compression
    modes: list[str] = constraint(choices=MODES, nonempty=True)
    irregular_densities: list[float] = constraint(min_exclusive=0.0, max=1.0)   # fraction of synaptic weights kept
    structured_densities: list[float] = constraint(min_exclusive=0.0, max=1.0)   # fraction of hidden channels kept
    dense_first_last: bool = constraint()     # irregular: the tiny first and last layers stay dense
    attention_p: float = constraint(min_exclusive=0.0)
    attention_weight: float = constraint(min=0.0)   # beta of the attention-transfer loss (0 = no guidance)
    ann_epochs: int = constraint(min=1)
    ann_lr: float = constraint(min_exclusive=0.0)
    ann_batch_size: int = constraint(min=1)
    ann_train_subset: int = constraint(min=0)  # images per sparse-ANN epoch (0 = the whole training split)
    update_interval: int = constraint(min=1)  # optimizer steps between prune-and-regrow updates
    update_until: float = constraint(min=0.0, max=1.0)  # fraction of training after which the mask is fixed
    regrow_fraction: float = constraint(min=0.0, max=1.0)  # irregular (RigL): initial drop/regrow fraction per update, cosine-decayed
    # SNN (DIET-SNN)
    calibration_size: int = constraint(min=1)
    percentile: float = constraint(min_exclusive=0.0, max=100.0)
    timesteps: list[int] = constraint(min=1, nonempty=True)  # strictly decreasing: train at the first, fine-tune at each lower T
    final_timesteps: int | None = constraint(min=1)  # the T of the headline rows and of the saved SNN (null = the last)
    snn_epochs: int = constraint(min=0)
    step_epochs: int = constraint(min=0)
    lr: float = constraint(min_exclusive=0.0)
    neuron_lr: float = constraint(min_exclusive=0.0)
    batch_size: int = constraint(min=1)
    train_subset: int = constraint(min=0)      # images per SNN epoch (0 = all)
    val_subset: int = constraint(min=0)        # validation images scored per epoch (0 = all)
    learn_leak: bool = constraint()
    surrogate: str = constraint(choices=SURROGATES)
    surrogate_alpha: float = constraint(min_exclusive=0.0)
    ablation: bool = constraint()             # also run the first irregular density without attention guidance
    test_images: int = constraint(min=0)       # fixed random test subset for every row (0 = the whole test split)

    def validate(self, prefix: str) -> None:
        if len(set(self.modes)) != len(self.modes):
            raise ParamsError(f"params.yaml: {prefix}.modes {self.modes} lists a mode twice")
        for mode in self.modes:
            if not self.densities(mode):
                raise ParamsError(f"params.yaml: {prefix}.{mode}_densities must not be empty while {prefix}.modes lists {mode}")
        schedule = self.timesteps
        if any(later >= earlier for earlier, later in zip(schedule, schedule[1:], strict=False)):
            raise ParamsError(f"params.yaml: {prefix}.timesteps {schedule} must be strictly decreasing (train at the first T, then lower it), e.g. [5, 3]")
        if self.final_timesteps is not None and self.final_timesteps not in schedule:
            raise ParamsError(f"params.yaml: {prefix}.final_timesteps {self.final_timesteps} must be one of timesteps {schedule} (or null for the last)")

    @property
    def final_t(self) -> int:
        return self.final_timesteps if self.final_timesteps is not None else self.timesteps[-1]

    def densities(self, mode: str) -> list[float]:
        return list(self.irregular_densities if mode == "irregular" else self.structured_densities)

    def sparse_learning(self) -> SparseLearning:
        return SparseLearning(self.ann_epochs, self.ann_lr, self.ann_batch_size, self.ann_train_subset, self.update_interval,
                              self.update_until, self.regrow_fraction, self.dense_first_last, self.attention_p, self.attention_weight)

    def tuning(self, device: str) -> SnnTuning:
        return SnnTuning(self.batch_size, self.lr, self.neuron_lr, self.train_subset, self.val_subset, device)



def configurations(params: AttentionPruningParams) -> list[CompressionConfig]:
    configs = [CompressionConfig(mode, d, True) for mode in params.modes for d in params.densities(mode)]
    if params.ablation and params.attention_weight > 0:
        first = next((c for c in configs if c.mode == "irregular"), configs[0])
        configs.append(CompressionConfig(first.mode, first.density, False))
    return configs


def export_config(configs: list[CompressionConfig]) -> CompressionConfig:
    """The SNN saved for the hardware flow and run through snntorch: the first irregular configuration."""
    return next((c for c in configs if c.mode == "irregular" and c.attention), configs[0])


def config_rows(rows: MethodRows, config: CompressionConfig, masks: SparseMasks, model: nn.Module) -> MethodRows:
    """`rows` for one configuration: its arch name and its compression details (of `model`'s non-zero params)."""
    nonzero = count_params(model)[1]
    shared = {"mode": config.mode, "density": config.density, "attention": config.attention,
              "compression": round(rows.reference.params / nonzero, 2), "weight_density": round(masks.weight_density(), 5),
              "layer_densities": [round(d, 4) for d in masks.layer_densities()], "active_channels": masks.active_channels()}
    return replace(rows, arch=f"{rows.arch} {config.mode} {config.density:g}", shared=shared)


@dataclass
class ConfigResult:
    config: CompressionConfig
    rows: list[ResultRow]
    net: SpikingNetwork  # the SNN at the final T (a copy taken before T was lowered further)
    masks: SparseMasks

    def snn_row(self, timesteps: int, library: str = "spikebench") -> ResultRow:
        return next(r for r in self.rows if r.extra["step"] == "snn" and r.library == library and r.timesteps == timesteps)


# --- the phases of one configuration --------------------------------------------------------------

def sparse_ann_phase(meta_model: nn.Sequential, config: CompressionConfig, data: SplitData, test: Batch,
                     params: AttentionPruningParams, seed: int, rows: MethodRows, child: StageRun,
                     resume: Path) -> tuple[nn.Sequential, SparseMasks, ResultRow]:
    """The attention-guided sparse student and its row (MACs over non-zero weights)."""
    student, masks = compress(meta_model, config, data, params.sparse_learning(), seed, child, checkpoint=resume / f"{config.name}_sparse.pt")
    student_accuracy, predicted = scored_predictions(student, test)
    row = config_rows(rows, config, masks, student).ann(student, student_accuracy, sparse_macs(student, data.input_shape),
                                                        predictions=predicted,
                                                        extra={"step": "sparse_ann", "config": "sparse ANN (non-zero MACs)"})
    print(f"attention_pruning: {config.name}: sparse ANN test {student_accuracy:.4f}, compression {row.extra['compression']}x")
    child.log_metrics({"sparse_ann_test_accuracy": student_accuracy, "compression": row.extra["compression"]})
    return student, masks, row


def snn_phase(student: nn.Sequential, masks: SparseMasks, config: CompressionConfig, data: SplitData, test: Batch,
              params: AttentionPruningParams, seed: int, device: str, rows: MethodRows, child: StageRun,
              resume: Path) -> tuple[list[ResultRow], SpikingNetwork]:
    """Conversion, then DIET-SNN training with the mask fixed along the T schedule; (rows, SNN at final_t)."""
    snn = convert(student, data.calibration(params.calibration_size, seed), params.percentile, "subtract")
    masks.apply(synaptic_layers(snn.layers))  # normalisation keeps zeros zero; this makes it explicit
    child.log_metrics({"converted_val_accuracy": evaluate_snn(snn, data.val, params.timesteps[0])})
    net = trainable(snn, learn_threshold=True, learn_leak=params.learn_leak, surrogate=params.surrogate,
                    surrogate_alpha=params.surrogate_alpha)
    out, final = [], {}

    def measured_at(run: StageRun, timesteps: int, epochs: int) -> None:
        measured = measure_snn(net, test, timesteps, data.input_shape, progress=f"{config.name} test T={timesteps}")
        headline = config.attention and timesteps == params.final_t
        out.append(config_rows(rows, config, masks, net).snn(net, measured, timesteps, headline=headline,
                                                             extra={"step": "snn", **neuron_parameters(net), "epochs": epochs}))
        run.log_metrics({"snn_test_accuracy": measured.accuracy, "spikes_per_image": measured.metrics.spikes,
                         "synops_per_image": measured.metrics.synops, "energy_uj": measured.energy_j * 1e6}, step=timesteps)
        print(f"attention_pruning: {config.name} T={timesteps}: test {measured.accuracy:.4f}, {measured.metrics.spikes:.0f} spikes, "
              f"{measured.metrics.synops:.0f} SOPs, {measured.energy_j * 1e6:.3f} uJ/image")
        if timesteps == params.final_t:
            final["net"] = copy.deepcopy(net)
            run.log_params({f"learned_{k}": v for k, v in neuron_parameters(net, digits=5).items()})

    lower_timesteps(net, data, Schedule(params.timesteps, params.snn_epochs, params.step_epochs), params.tuning(device), seed=seed,
                    checkpoints=str(resume / f"{config.name}_"), run_at=lambda _: contextlib.nullcontext(child), on_trained=measured_at,
                    hooks=fixed_mask_hooks(masks), label=f"{config.name} SNN", desc=config.name, metric_prefix="snn_")
    return out, final["net"]  # validate() guarantees final_t is in the schedule


def run_config(meta_model: nn.Sequential, config: CompressionConfig, data: SplitData, test: Batch, params: AttentionPruningParams,
               seed: int, device: str, rows: MethodRows, resume: Path) -> ConfigResult:
    """Compression, conversion and DIET-SNN training of one configuration (one MLflow child run); its rows."""
    seed_everything(seed)
    with child_run(config.name, {"mode": config.mode, "density": config.density, "attention": config.attention}) as child:
        student, masks, ann_row = sparse_ann_phase(meta_model, config, data, test, params, seed, rows, child, resume)
        snn_rows, final = snn_phase(student, masks, config, data, test, params, seed, device, rows, child, resume)
    return ConfigResult(config, [ann_row, *snn_rows], final, masks)


# --- after every configuration: export, second library, ablation ---------------------------------

def export(result: ConfigResult, data: SplitData, final_t: int, rank: int) -> None:
    """Save the exported configuration's SNN for the hardware flow; mark its row with the model."""
    fields = dict(method=METHOD, dataset=data.dataset, split_hash=data.split_hash, input_shape=list(data.input_shape),
                  num_classes=data.num_classes, timesteps=final_t, weight_bits=32)
    meta = save_snn(paths.ATTENTION_MODEL, result.net, **fields) if rank == 0 else result.net.to_checkpoint(**fields)[1]
    row = result.snn_row(final_t)
    row.model_path = str(paths.ATTENTION_MODEL)
    row.mappable = all(v == 1.0 for v in meta["leaks"])  # the accelerator implements integrate-and-fire only


def snntorch_row(result: ConfigResult, test: Batch, final_t: int, data: SplitData, rows: MethodRows, run: StageRun) -> ResultRow:
    """The exported SNN through snntorch on the same test images: its row, with the comparison."""
    measured, comparison = compare_with_snntorch(result.net, test, final_t, data.input_shape)
    run.log_metrics({"snntorch_prediction_agreement": comparison["prediction_agreement"]})
    print(f"attention_pruning: snntorch vs engine at T={final_t}: {comparison['prediction_agreement'] * 100:.2f}% of predictions agree, "
          f"spike counts differ by {comparison['spike_count_relative_difference'] * 100:.4f}%")
    return config_rows(rows, result.config, result.masks, result.net).snn(
        result.net, measured, final_t, library="snntorch", headline=True,
        extra={"step": "snn", **neuron_parameters(result.net), **comparison, "config": "same SNN in snntorch"})


def report_ablation(results: list[ConfigResult], schedule: list[int], run: StageRun) -> None:
    """Spikes per image with and without attention guidance, beside the guided rows."""
    ablated = [r for r in results if not r.config.attention]
    if not ablated:
        return
    guided = next(r for r in results if r.config.attention and (r.config.mode, r.config.density) ==
                  (ablated[0].config.mode, ablated[0].config.density))
    for t in schedule:
        with_at, without = guided.snn_row(t), ablated[0].snn_row(t)
        with_at.extra["spikes_without_attention"] = round(without.spikes_per_image, 1)
        run.log_metrics({"spikes_with_attention": with_at.spikes_per_image, "spikes_without_attention": without.spikes_per_image}, step=t)
        print(f"attention_pruning: T={t} spikes/image with attention {with_at.spikes_per_image:.0f} vs without "
              f"{without.spikes_per_image:.0f}; accuracy {with_at.accuracy:.4f} vs {without.accuracy:.4f}")


# --- plots ----------------------------------------------------------------------------------------

def plot_accuracy(results: list[ConfigResult], reference: Reference, path: str | Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for result in results:
        points = sorted((r for r in result.rows if r.extra["step"] == "snn" and r.library == "spikebench"), key=lambda r: r.timesteps)
        label = f"{result.config.mode} {result.config.density:g} ({points[0].extra['compression']}x)" + \
            ("" if result.config.attention else ", no attention")
        style = "-" if result.config.attention else "--"
        left.plot([r.timesteps for r in points], [r.accuracy * 100 for r in points], style, marker="o", label=label)
        right.plot([r.timesteps for r in points], [r.spikes_per_image for r in points], style, marker="o", label=label)
    left.axhline(reference.accuracy * 100, color="k", ls=":", label="dense ANN")
    left.set(xlabel="timesteps T", ylabel="test accuracy (%)", title="compressed SNNs (learnt threshold + leak)")
    right.set(xlabel="timesteps T", ylabel="spikes / image", title="spike activity")
    steps = sorted({r.timesteps for result in results for r in result.rows if r.timesteps})
    for axis in (left, right):
        axis.set_xticks(steps, labels=[str(t) for t in steps])
        axis.legend(fontsize=7, loc="lower right")
    save(fig, path)


def plot_neurons(results: list[ConfigResult], final_t: int, path: str | Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    width = 0.8 / max(1, len(results))
    for j, result in enumerate(results):
        final = result.snn_row(final_t)
        label = result.config.name.replace("_", " ")
        layers = range(len(final.extra["spikes_per_layer"]))
        axes[0].bar([k + j * width for k in layers], final.extra["spikes_per_layer"], width=width, label=label)
        axes[1].bar([k + j * width for k in layers], final.extra["thresholds"], width=width, label=label)
        axes[2].bar([k + j * width for k in layers], final.extra["leaks"][:-1], width=width, label=label)
    axes[0].set(xlabel="spiking layer", ylabel="spikes / image", title=f"spikes per layer at T={final.timesteps}")
    axes[1].set(xlabel="spiking layer", ylabel="threshold", title="learnt thresholds")
    axes[2].set(xlabel="spiking layer", ylabel="leak (1 = IF)", title="learnt leaks", ylim=(0, 1.05))
    centres = [k + width * (len(results) - 1) / 2 for k in layers]
    for axis in axes:
        axis.set_xticks(centres, labels=[str(k + 1) for k in layers])
        axis.legend(fontsize=6, loc="lower right")
    save(fig, path)


# --- the stage ------------------------------------------------------------------------------------

def run_stage(seed: int, params: AttentionPruningParams, device: str, rank: int = 0) -> list[ResultRow]:
    """The stage's rows; under torchrun every process computes them and rank 0 alone writes them."""
    data = load_prepared()
    reference = load_reference(paths.BASELINE_RESULTS, data.dataset, data.split_hash)
    meta_model, ann_meta = load_ann(data)
    seed_everything(seed)
    test_index = fixed_subset(len(data.test[0]), params.test_images, seed)
    test = (data.test[0][test_index], data.test[1][test_index])
    configs = configurations(params)
    # SNN training checkpoints each epoch here (the short sparse-ANN phase is recomputed, deterministically)
    resume = resume_directory(METHOD, asdict(params), data.split_hash, seed, device, inputs=[paths.ANN_MODEL])
    with stage_run(METHOD, method=METHOD, library="spikebench", dataset=data.dataset,
                   split_hash=data.split_hash, params=params, enabled=rank == 0) as run:
        rows = MethodRows(RowContext.of(data, seed, run), reference, METHOD, ann_meta["arch"], len(test[1]), test_index=test_index)
        results = [run_config(meta_model, config, data, test, params, seed, device, rows, resume) for config in configs]
        exported = next(r for r in results if r.config == export_config(configs))
        export(exported, data, params.final_t, rank)
        all_rows = [row for result in results for row in result.rows]
        all_rows.append(snntorch_row(exported, test, params.final_t, data, rows, run))
        report_ablation(results, params.timesteps, run)
        if rank == 0:
            plot_accuracy(results, reference, paths.ATTENTION_ACCURACY_PLOT)
            plot_neurons(results, params.final_t, paths.ATTENTION_NEURONS_PLOT)
            for path in (paths.ATTENTION_ACCURACY_PLOT, paths.ATTENTION_NEURONS_PLOT):
                run.log_artifact(path, "plots")
            run.log_snn_model(paths.ATTENTION_MODEL, test[0][:2])
            write_rows(paths.ATTENTION_RESULTS, all_rows)
            run.log_headline(all_rows)
    barrier()  # under torchrun, no process still reads a checkpoint when rank 0 deletes them
    if rank == 0:
        discard_resume_directory(resume)
    return all_rows


@cli_main
def main() -> None:
    common, params = load_section(AttentionPruningParams, METHOD)
    device = resolve_device(common.device)
    rank, _ = init_from_env(device)  # under torchrun: data-parallel SNN training (spikebench.distributed)
    with rank_zero_output(rank):
        for row in (r for r in run_stage(common.seed, params, device, rank) if r.headline):
            print(f"attention_pruning: {row.library} {row.arch} T={row.timesteps}: accuracy {row.accuracy:.4f} (ANN {row.ann_accuracy:.4f}), "
                  f"{row.extra['compression']}x compression, {row.spikes_per_image:.0f} spikes/image, {row.extra['energy_ratio_vs_ann']}x less energy")
    shutdown()


if __name__ == "__main__":
    main()
