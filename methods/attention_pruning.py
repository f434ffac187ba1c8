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

Rows per (mode, density, T) carry accuracy, compression (dense / non-zero synaptic params),
spikes, SOPs over non-zero synapses only, and energy on the 45 nm op model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from baselines.training import accuracy, seed_everything
from methods.st_pruning import ANN_PATH, Reference, load_ann, load_reference, synaptic_params
from spikebench.attention import attention_maps, attention_transfer_loss
from spikebench.convert import convert, fixed_subset
from spikebench.data import SplitData, load_prepared
from spikebench.distributed import barrier, init_from_env, rank_zero_output, shutdown
from spikebench.energy import MacCounter, energy_joules, fanout_maps, footprint_bytes, snn_metrics_per_step
from spikebench.errors import ParamsError, cli_main
from spikebench.params import constraint, load_section, resolve_device
from spikebench.plots import plt, save
from spikebench.results import ResultRow, write_rows
from spikebench.snn_training import SnnEpochStats, SnnMeasurement, evaluate_snn, measure_snn, train_snn, trainable
from spikebench.sparse_masks import MODES, SparseEpochStats, SparseMasks, check_connected, irregular_masks, structured_masks, synaptic_layers, train_sparse
from spikebench.spiking import SURROGATES, SpikingNetwork, save_snn, simulate
from spikebench.tracking import StageRun, child_run, stage_run
from spikebench.training_state import discard_resume_directory, resume_directory

MODEL_PATH = "models/attention_pruning_snn.pt"
RESULTS_PATH = "results/attention_pruning.json"
PLOT_ACCURACY = "reports/attention_pruning_accuracy_vs_T.png"
PLOT_NEURONS = "reports/attention_pruning_neurons.png"


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


@dataclass(frozen=True)
class Config:
    """One compression configuration: mode, target density, with or without attention guidance."""

    mode: str
    density: float
    attention: bool

    @property
    def name(self) -> str:
        return f"{self.mode}_d{self.density:g}" + ("" if self.attention else "_no_attention")


def configurations(params: AttentionPruningParams) -> list[Config]:
    configs = [Config(mode, d, True) for mode in params.modes for d in params.densities(mode)]
    if params.ablation and params.attention_weight > 0:
        first = next((c for c in configs if c.mode == "irregular"), configs[0])
        configs.append(Config(first.mode, first.density, False))
    return configs


def export_config(configs: list[Config]) -> Config:
    """The SNN saved for the hardware flow and run through snntorch: the first irregular configuration."""
    return next((c for c in configs if c.mode == "irregular" and c.attention), configs[0])


# --- the compression phase --------------------------------------------------------------------

def attention_loss_fn(meta_model: nn.Sequential, p: float, weight: float) -> Callable:
    """Task loss plus `weight` x attention transfer towards the meta-model's maps (loss_fn of train_sparse)."""
    meta_model = meta_model.eval()

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, maps = attention_maps(model, x, p)
        with torch.no_grad():
            _, targets = attention_maps(meta_model, x, p)
        loss = nn.functional.cross_entropy(logits, y) + weight * attention_transfer_loss(maps, targets)
        return loss, logits

    return loss_fn


def build_masks(model: nn.Sequential, config: Config, input_shape: tuple[int, ...], dense_first_last: bool) -> SparseMasks:
    modules = list(model.children())
    if config.mode == "irregular":
        masks = irregular_masks(modules, config.density, dense_first_last)
    else:
        masks = structured_masks(modules, input_shape, config.density)
    check_connected(masks, modules, input_shape)
    return masks


def compress(meta_model: nn.Sequential, config: Config, data: SplitData, params: AttentionPruningParams, seed: int,
             run: StageRun) -> tuple[nn.Sequential, SparseMasks, list[SparseEpochStats]]:
    """The sparse student: warm-started from the meta-model, pruned and trained by sparse learning."""
    student = copy.deepcopy(meta_model).train()
    masks = build_masks(student, config, data.input_shape, params.dense_first_last)
    loss_fn = attention_loss_fn(meta_model, params.attention_p, params.attention_weight) if config.attention else None

    def log(stats: SparseEpochStats) -> None:
        run.log_metrics({"ann_train_loss": stats.train_loss, "ann_val_accuracy": stats.val_accuracy, "ann_regrown": stats.regrown,
                         "ann_epoch_seconds": stats.seconds}, step=stats.epoch)
        print(f"  {config.name} sparse ANN epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} "
              f"regrown {stats.regrown} ({stats.seconds:.1f}s)")

    history = train_sparse(student, masks, data.train, data.val, input_shape=data.input_shape, epochs=params.ann_epochs,
                           batch_size=params.ann_batch_size, lr=params.ann_lr, seed=seed, loss_fn=loss_fn,
                           update_interval=params.update_interval, update_until=params.update_until, regrow_fraction=params.regrow_fraction,
                           train_subset=params.ann_train_subset, on_epoch=log, desc=config.name)
    check_connected(masks, list(student.children()), data.input_shape)
    return student.eval(), masks, history


def sparse_macs(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """MACs per image of a pruned ANN counting only non-zero weights (layer MACs x layer density)."""
    counter = MacCounter(model)
    counter.count(input_shape)
    modules = dict(model.named_modules())
    return float(sum(macs * float((modules[name].weight != 0).float().mean()) for name, macs in counter.per_layer.items()))


# --- the SNN phase ------------------------------------------------------------------------------

def snn_hooks(masks: SparseMasks) -> tuple[Callable[[SpikingNetwork], None], Callable[[SpikingNetwork], None]]:
    """(before_step, after_step) of train_snn: the sparsity mask stays fixed; the read-out never leaks."""

    def before_step(net: SpikingNetwork) -> None:
        masks.mask_gradients(synaptic_layers(net.layers))

    def after_step(net: SpikingNetwork) -> None:
        masks.apply(synaptic_layers(net.layers))
        if isinstance(net.leaks, nn.Parameter):  # the output layer's membrane is the accumulated read-out
            with torch.no_grad():
                net.leaks[-1] = 1.0

    return before_step, after_step


def log_snn_epoch(run: StageRun, name: str, offset: int) -> Callable[[SnnEpochStats], None]:
    def log(stats: SnnEpochStats) -> None:
        metrics = {"snn_train_loss": stats.train_loss, "snn_val_accuracy": stats.val_accuracy, "snn_epoch_seconds": stats.seconds}
        metrics.update({f"threshold_{k}": v for k, v in enumerate(stats.thresholds)})
        metrics.update({f"leak_{k}": v for k, v in enumerate(stats.leaks[:-1])})
        run.log_metrics(metrics, step=offset + stats.epoch)
        print(f"  {name} SNN T={stats.timesteps} epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} "
              f"({stats.seconds:.1f}s)")

    return log


@dataclass
class ConfigResult:
    config: Config
    rows: list[ResultRow]
    net: SpikingNetwork  # the SNN at the final T (a copy taken before T was lowered further)
    masks: SparseMasks


class RowMaker:
    """The stage's result rows with the shared provenance fields filled in."""

    def __init__(self, data: SplitData, reference: Reference, seed: int, run: StageRun, base_arch: str) -> None:
        self.data, self.reference, self.seed, self.run, self.base_arch = data, reference, seed, run, base_arch

    def extra(self, config: Config, masks: SparseMasks, nonzero: int) -> dict:
        return {"mode": config.mode, "density": config.density, "attention": config.attention,
                "compression": round(self.reference.params / nonzero, 2), "weight_density": round(masks.weight_density(), 5),
                "layer_densities": [round(d, 4) for d in masks.layer_densities()], "active_channels": masks.active_channels()}

    def arch(self, config: Config) -> str:
        return f"{self.base_arch} {config.mode} {config.density:g}"

    def ann_row(self, model: nn.Module, config: Config, masks: SparseMasks, test_accuracy: float) -> ResultRow:
        total, nonzero = synaptic_params(model)
        macs = sparse_macs(model, self.data.input_shape)
        return ResultRow(
            method="attention_pruning", library="torch", dataset=self.data.dataset, split_hash=self.data.split_hash, arch=self.arch(config),
            timesteps=0, accuracy=test_accuracy, ann_accuracy=self.reference.accuracy, spikes_per_image=0.0, synops_per_image=0.0,
            macs_per_image=macs, energy_per_image_j=energy_joules(macs, 0), params=total, nonzero_params=nonzero, weight_bits=32,
            seed=self.seed, mlflow_run_id=self.run.run_id, mlflow_experiment_id=self.run.experiment_id,
            extra={**self.extra(config, masks, nonzero), "step": "sparse_ann", "config": "sparse ANN (non-zero MACs)", "leaderboard": False},
        )

    def snn_row(self, net: SpikingNetwork, measured: SnnMeasurement, timesteps: int, config: Config, masks: SparseMasks,
                library: str = "spikebench", extra: dict | None = None) -> ResultRow:
        total, nonzero = synaptic_params(net)
        metrics = measured.metrics
        return ResultRow(
            method="attention_pruning", library=library, dataset=self.data.dataset, split_hash=self.data.split_hash, arch=self.arch(config),
            timesteps=timesteps, accuracy=measured.accuracy, ann_accuracy=self.reference.accuracy, spikes_per_image=metrics.spikes,
            synops_per_image=metrics.synops, macs_per_image=metrics.macs, energy_per_image_j=metrics.energy_j, params=total,
            nonzero_params=nonzero, weight_bits=32, seed=self.seed, mlflow_run_id=self.run.run_id, mlflow_experiment_id=self.run.experiment_id,
            extra={**self.extra(config, masks, nonzero), **metrics.as_extra(), "step": "snn",
                   "energy_ratio_vs_ann": round(self.reference.energy_j / metrics.energy_j, 2), "footprint_bytes": footprint_bytes(net),
                   "thresholds": [round(float(t), 4) for t in net.thresholds.detach()],
                   "leaks": [round(float(v), 4) for v in net.leaks.detach()], **(extra or {})},
        )


def run_config(meta_model: nn.Sequential, config: Config, data: SplitData, test: tuple[torch.Tensor, torch.Tensor],
               params: AttentionPruningParams, seed: int, device: str, maker: RowMaker, final_t: int, resume: Path) -> ConfigResult:
    """Compression, conversion and DIET-SNN training of one configuration; its rows."""
    rows: list[ResultRow] = []
    with child_run(config.name, tags={"mode": config.mode, "density": config.density, "attention": config.attention}) as child:
        student, masks, _ = compress(meta_model, config, data, params, seed, child)
        student_accuracy = accuracy(student, test)
        rows.append(maker.ann_row(student, config, masks, student_accuracy))
        print(f"attention_pruning: {config.name}: sparse ANN test {student_accuracy:.4f}, compression {rows[-1].extra['compression']}x")
        child.log_metrics({"sparse_ann_test_accuracy": student_accuracy, "compression": rows[-1].extra["compression"]})

        snn = convert(student, data.calibration(params.calibration_size, seed), params.percentile, "subtract")
        masks.apply(synaptic_layers(snn.layers))  # normalisation keeps zeros zero; this makes it explicit
        child.log_metrics({"converted_val_accuracy": evaluate_snn(snn, data.val, params.timesteps[0])})
        net = trainable(snn, learn_threshold=True, learn_leak=params.learn_leak, surrogate=params.surrogate,
                        surrogate_alpha=params.surrogate_alpha)
        before_step, after_step = snn_hooks(masks)
        offset = 0
        final: SpikingNetwork | None = None
        for step, timesteps in enumerate(params.timesteps):
            epochs = params.snn_epochs if step == 0 else params.step_epochs
            train_snn(net, data.train, data.val, timesteps=timesteps, epochs=epochs, batch_size=params.batch_size, lr=params.lr,
                      neuron_lr=params.neuron_lr, seed=seed + step, train_subset=params.train_subset, val_subset=params.val_subset,
                      device=device, before_step=before_step, after_step=after_step,
                      on_epoch=log_snn_epoch(child, config.name, offset), desc=config.name,
                      checkpoint=resume / f"{config.name}_T{timesteps}.pt")
            offset += epochs
            net.cpu()
            measured = measure_snn(net, test, timesteps, data.input_shape, progress=f"{config.name} test T={timesteps}")
            headline = config.attention and timesteps == final_t
            rows.append(maker.snn_row(net, measured, timesteps, config, masks, extra={"leaderboard": headline, "epochs": epochs}))
            child.log_metrics({"snn_test_accuracy": measured.accuracy, "spikes_per_image": measured.metrics.spikes,
                               "synops_per_image": measured.metrics.synops, "energy_uj": measured.energy_j * 1e6}, step=timesteps)
            print(f"attention_pruning: {config.name} T={timesteps}: test {measured.accuracy:.4f}, {measured.metrics.spikes:.0f} spikes, "
                  f"{measured.metrics.synops:.0f} SOPs, {measured.energy_j * 1e6:.3f} uJ/image")
            if timesteps == final_t:
                final = copy.deepcopy(net)
                child.log_params({"learned_thresholds": [round(float(t), 5) for t in net.thresholds.detach()],
                                  "learned_leaks": [round(float(v), 5) for v in net.leaks.detach()]})
    assert final is not None  # validate() guarantees final_t is in the schedule
    return ConfigResult(config, rows, final, masks)


# --- the second library -------------------------------------------------------------------------

def library_comparison(net: SpikingNetwork, test: tuple[torch.Tensor, torch.Tensor], timesteps: int,
                       input_shape: tuple[int, ...]) -> tuple[SnnMeasurement, dict]:
    """The SNN through snntorch (`Leaky`, learnable beta/threshold) vs our engine on the same images."""
    from spikebench.backends.snntorch_leaky import build_snntorch_leaky

    x, y = test
    fanouts = fanout_maps(net, input_shape)
    engine = simulate(net, x, timesteps, fanouts=fanouts)
    other_net = build_snntorch_leaky(net)
    other = simulate(other_net, x, timesteps, fanouts=fanouts, progress="snntorch")
    predictions, reference = other.predictions(), engine.predictions()
    metrics = snn_metrics_per_step(net, input_shape, other.spikes_per_step, other.synops_per_step, len(x))[timesteps - 1]
    engine_spikes = sum(float(s.sum()) for s in engine.spikes_per_step)
    other_spikes = sum(float(s.sum()) for s in other.spikes_per_step)
    comparison = {
        "prediction_agreement": float((predictions == reference).float().mean()),
        "engine_accuracy": float((reference == y).float().mean()),
        "spike_count_engine": engine_spikes,
        "spike_count_library": other_spikes,
        "spike_count_relative_difference": abs(other_spikes - engine_spikes) / max(engine_spikes, 1.0),
        "snntorch_neuron": "snn.Leaky(learn_beta=True, learn_threshold=True) + (1 - beta) theta s[t-1] reset-order current",
    }
    return SnnMeasurement(float((predictions == y).float().mean()), metrics), comparison


# --- plots --------------------------------------------------------------------------------------

def plot_accuracy(results: list[ConfigResult], reference: Reference, path: str) -> None:
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


def plot_neurons(results: list[ConfigResult], final_t: int, path: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    width = 0.8 / max(1, len(results))
    for j, result in enumerate(results):
        final = next(r for r in result.rows if r.extra["step"] == "snn" and r.library == "spikebench" and r.timesteps == final_t)
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


# --- the stage ----------------------------------------------------------------------------------

def run_stage(seed: int, params: AttentionPruningParams, device: str, rank: int = 0) -> list[ResultRow]:
    """The stage's rows; under torchrun every process computes them and rank 0 alone writes them."""
    data = load_prepared()
    reference = load_reference(data)
    meta_model, ann_meta = load_ann(data)
    seed_everything(seed)
    test_index = fixed_subset(len(data.test[0]), params.test_images, seed)
    test = (data.test[0][test_index], data.test[1][test_index])
    configs = configurations(params)
    final_t = params.final_t
    results: list[ConfigResult] = []
    rows: list[ResultRow] = []
    # SNN training checkpoints each epoch here (the short sparse-ANN phase is recomputed, deterministically)
    resume = resume_directory("attention_pruning", asdict(params), data.split_hash, seed, device, inputs=[ANN_PATH])
    with stage_run("attention_pruning", method="attention_pruning", library="spikebench", dataset=data.dataset,
                   split_hash=data.split_hash, params=params, enabled=rank == 0) as run:
        maker = RowMaker(data, reference, seed, run, ann_meta["arch"])
        for config in configs:
            seed_everything(seed)
            result = run_config(meta_model, config, data, test, params, seed, device, maker, final_t, resume)
            results.append(result)
            rows += result.rows

        exported = export_config(configs)
        final = next(r for r in results if r.config == exported)
        fields = dict(method="attention_pruning", dataset=data.dataset, split_hash=data.split_hash,
                      input_shape=list(data.input_shape), num_classes=data.num_classes, timesteps=final_t, weight_bits=32)
        meta = save_snn(MODEL_PATH, final.net, **fields) if rank == 0 else final.net.to_checkpoint(**fields)[1]
        final_row = next(r for r in final.rows if r.extra["step"] == "snn" and r.timesteps == final_t)
        # the accelerator implements integrate-and-fire only: a learnt leak below 1 is not mappable
        final_row.extra.update({"model_path": MODEL_PATH, "mappable": all(v == 1.0 for v in meta["leaks"])})

        measured, comparison = library_comparison(final.net, test, final_t, data.input_shape)
        rows.append(maker.snn_row(final.net, measured, final_t, exported, final.masks, library="snntorch",
                                  extra={**comparison, "leaderboard": True, "config": "same SNN in snntorch"}))
        run.log_metrics({"snntorch_prediction_agreement": comparison["prediction_agreement"]})
        print(f"attention_pruning: snntorch vs engine at T={final_t}: {comparison['prediction_agreement'] * 100:.2f}% of predictions agree, "
              f"spike counts differ by {comparison['spike_count_relative_difference'] * 100:.4f}%")

        ablated = [r for r in results if not r.config.attention]
        if ablated:
            guided = next(r for r in results if r.config.attention and (r.config.mode, r.config.density) ==
                          (ablated[0].config.mode, ablated[0].config.density))
            for t in params.timesteps:
                with_at = next(r for r in guided.rows if r.extra["step"] == "snn" and r.library == "spikebench" and r.timesteps == t)
                without = next(r for r in ablated[0].rows if r.extra["step"] == "snn" and r.timesteps == t)
                with_at.extra["spikes_without_attention"] = round(without.spikes_per_image, 1)
                run.log_metrics({"spikes_with_attention": with_at.spikes_per_image, "spikes_without_attention": without.spikes_per_image},
                                step=t)
                print(f"attention_pruning: T={t} spikes/image with attention {with_at.spikes_per_image:.0f} vs without "
                      f"{without.spikes_per_image:.0f}; accuracy {with_at.accuracy:.4f} vs {without.accuracy:.4f}")

        if rank == 0:
            plot_accuracy(results, reference, PLOT_ACCURACY)
            plot_neurons(results, final_t, PLOT_NEURONS)
            for path in (PLOT_ACCURACY, PLOT_NEURONS):
                run.log_artifact(path, "plots")
            run.log_artifact(MODEL_PATH, "model")
            write_rows(RESULTS_PATH, rows)
    barrier()  # under torchrun, no process still reads a checkpoint when rank 0 deletes them
    if rank == 0:
        discard_resume_directory(resume)
    return rows


@cli_main
def main() -> None:
    common, params = load_section(AttentionPruningParams, "attention_pruning")
    device = resolve_device(common.device)
    rank, _ = init_from_env(device)  # under torchrun: data-parallel SNN training (spikebench.distributed)
    with rank_zero_output(rank):
        rows = run_stage(common.seed, params, device, rank)
        for row in rows:
            if row.extra.get("leaderboard"):
                print(f"attention_pruning: {row.library} {row.arch} T={row.timesteps}: accuracy {row.accuracy:.4f} (ANN {row.ann_accuracy:.4f}), "
                      f"{row.extra['compression']}x compression, {row.spikes_per_image:.0f} spikes/image, {row.extra['energy_ratio_vs_ann']}x less energy")
    shutdown()


if __name__ == "__main__":
    main()
