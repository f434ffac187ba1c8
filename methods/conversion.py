"""Stage `conversion`: ANN -> SNN conversion (Rueckauer et al. 2017) and its sweep.

The main configuration (reset by subtraction at `main_percentile`) runs on `main_images`
test images (0: the full test split) up to T = `timesteps`; with `long_images` set, only
that many run to T_max and the rest stop at T = 64 (a step's result never depends on later
steps). The sweep (every reset x percentile) runs on a fixed, recorded subset of
`sweep_images` test images (the first images of the main run) up to `sweep_timesteps`.
One simulation per configuration gives the accuracy at every T in {1, 2, 4, ..., T_max}.
Rows record how many test images each accuracy is over (`extra.test_images`) and the
ANN's accuracy on the same images (`ann_accuracy`).

Budget: the cost is ~3.6 M MACs per image and step (the second conv dominates); the engine
runs ~3-6 k image-steps/s on 2 idle cores, so the full split to T=256 (2.56 M image-steps)
does not fit a 10-minute budget; the defaults use fixed subsets (see params.yaml).

Writes results/conversion.json (one row per configuration and T), models/conversion_snn.pt
(the main configuration, for the hardware) and reports/conversion_accuracy_vs_T.png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from baselines.models import ArchConfig, build_model
from baselines.training import accuracy, seed_everything
from spikebench.convert import (
    MAXPOOL_STRATEGIES,
    PERCENTILES,
    TimestepEvaluation,
    activation_scales,
    evaluate_timesteps,
    fixed_subset,
    normalised_snn,
    parse_ann,
    powers_of_two,
    subset_evaluation,
)
from spikebench.data import SplitData, check_split_hash, load_prepared
from spikebench.energy import count_params
from spikebench.errors import ParamsError, cli_main
from spikebench.io import load_checkpoint
from spikebench.params import constraint, load_section
from spikebench.plots import plt, save
from spikebench.results import ResultRow, write_rows
from spikebench.spiking import RESETS, SpikingNetwork, save_snn
from spikebench.tracking import child_run, stage_run

ANN_PATH = "models/ann.pt"
MODEL_PATH = "models/conversion_snn.pt"
RESULTS_PATH = "results/conversion.json"
PLOT_PATH = "reports/conversion_accuracy_vs_T.png"


@dataclass(frozen=True)
class ConversionParams:
    percentiles: list[float] = constraint(nonempty=True, min_exclusive=0.0, max=100.0)
    resets: list[str] = constraint(nonempty=True, choices=RESETS)
    main_percentile: float = constraint(min_exclusive=0.0, max=100.0)
    timesteps: int = constraint(min=1)  # T_max
    main_images: int = constraint(min=0)  # main config: fixed test subset; 0 = the full test split
    long_images: int = constraint(min=0)  # main config: images run to T_max (the rest to T=64); 0 = all
    sweep_images: int = constraint(min=0)  # sweep: fixed test subset; 0 = all
    sweep_timesteps: int = constraint(min=1)  # sweep T_max
    calibration_size: int = constraint(min=1)
    hardware_timesteps: int = constraint(min=1)  # T recorded in models/conversion_snn.pt
    batch_size: int = constraint(min=1)
    maxpool: str | None = constraint(choices=MAXPOOL_STRATEGIES)

    def validate(self, prefix: str) -> None:
        if self.main_percentile not in self.percentiles:
            raise ParamsError(f"params.yaml: {prefix}.main_percentile {self.main_percentile} must be one of {prefix}.percentiles {self.percentiles}")
        if "subtract" not in self.resets:
            raise ParamsError(f"params.yaml: {prefix}.resets must include subtract (the main configuration)")


def load_ann(data: SplitData, path: str = ANN_PATH) -> tuple[torch.nn.Sequential, dict]:
    """The baseline ANN in eval mode, checked against the prepared split."""
    state, meta = load_checkpoint(path)
    check_split_hash(data.split_hash, meta.get("split_hash", ""), path)
    model = build_model(ArchConfig.from_meta(meta))
    model.load_state_dict(state)
    return model.eval(), meta


def snn_rows(method: str, net: SpikingNetwork, evaluation: TimestepEvaluation, data: SplitData, ann_meta: dict,
             ann_accuracy: dict[int, float], seed: int, run_ids: tuple[str, str], extra: dict, headline: set[int]) -> list[ResultRow]:
    """One result row per evaluated T (`ann_accuracy[images]`: the ANN on the same images)."""
    total, nonzero = count_params(net)
    rows = []
    for t in evaluation.timesteps:
        metrics = evaluation.metrics[t]
        images = evaluation.images[t]
        rows.append(ResultRow(
            method=method, library="spikebench", dataset=data.dataset, split_hash=data.split_hash, arch=ann_meta["arch"],
            timesteps=t, accuracy=evaluation.accuracy[t], ann_accuracy=ann_accuracy[images],
            spikes_per_image=metrics.spikes, synops_per_image=metrics.synops, macs_per_image=metrics.macs,
            energy_per_image_j=metrics.energy_j, params=total, nonzero_params=nonzero, weight_bits=32, seed=seed,
            mlflow_run_id=run_ids[0], mlflow_experiment_id=run_ids[1],
            extra={**extra, **metrics.as_extra(), "test_images": images, "leaderboard": t in headline},
        ))
    return rows


def ann_accuracy_on(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: set[int]) -> dict[int, float]:
    """The ANN's accuracy on the first `n` images of (x, y), for each n in sizes."""
    return {n: accuracy(model, (x[:n], y[:n])) for n in sizes}


def plot_accuracy_vs_timesteps(curves: dict[str, TimestepEvaluation], ann: float, path: str, title: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, evaluation in curves.items():
        ts = evaluation.timesteps
        style = "-" if "subtract" in label or "rmp" in label else "--"
        ax.plot(ts, [evaluation.accuracy[t] * 100 for t in ts], style, marker="o", markersize=3, label=label)
    ax.axhline(ann * 100, color="black", linewidth=1, linestyle=":", label="ANN")
    ax.set(xscale="log", xlabel="timesteps T", ylabel="test accuracy (%)", title=title)
    ax.set_xscale("log", base=2)
    ax.set_ylim(max(0.0, ann * 100 - 40), min(100.0, ann * 100 + 3))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save(fig, path)


@cli_main
def main() -> None:
    common, params = load_section(ConversionParams, "conversion")
    data = load_prepared()
    seed_everything(common.seed)
    model, ann_meta = load_ann(data)
    parsed = parse_ann(model, params.maxpool)
    x_test, y_test = data.test
    order = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(common.seed))  # a fixed order of the split
    sweep_index = fixed_subset(len(x_test), params.sweep_images, common.seed)
    long_order = torch.cat([sweep_index, order[~torch.isin(order, sweep_index)]])  # sweep images first: comparable curves
    if params.main_images:
        long_order = long_order[: max(params.main_images, len(sweep_index))]
    x_main, y_main = x_test[long_order], y_test[long_order]
    x_sweep, y_sweep = x_test[sweep_index], y_test[sweep_index]
    timesteps = powers_of_two(params.timesteps)
    sweep_timesteps = powers_of_two(params.sweep_timesteps)
    long_images = params.long_images or len(x_main)

    with stage_run("conversion", method="conversion", library="spikebench", dataset=data.dataset, split_hash=data.split_hash,
                   params=params) as run:
        started = time.perf_counter()
        scales = activation_scales(parsed, data.calibration(params.calibration_size, common.seed), params.percentiles)
        ann_acc = ann_accuracy_on(model, x_main, y_main, {len(x_main), min(long_images, len(x_main)), len(x_sweep)})
        run_ids = (run.run_id, run.experiment_id)
        rows, curves = [], {}

        main_net = normalised_snn(parsed, scales[params.main_percentile], "subtract")
        evaluation = evaluate_timesteps(main_net, x_main, y_main, timesteps, data.input_shape, params.batch_size,
                                        long_images=long_images, progress="conversion main")
        extra = {"config": "main", "reset": "subtract", "percentile": params.main_percentile, "scales": scales[params.main_percentile]}
        headline = {t for t in (32, 64, params.timesteps) if t in evaluation.timesteps}
        rows += snn_rows("conversion", main_net, evaluation, data, ann_meta, ann_acc, common.seed, run_ids, extra, headline)
        curves[f"main: subtract p{params.main_percentile:g} ({len(x_main)} img, T>64 on {long_images})"] = evaluation
        for t in evaluation.timesteps:
            run.log_metrics({"main_accuracy": evaluation.accuracy[t], "main_synops": evaluation.metrics[t].synops}, step=t)
        hardware_t = params.hardware_timesteps
        main_meta = save_snn(MODEL_PATH, main_net, method="conversion", dataset=data.dataset, split_hash=data.split_hash,
                             input_shape=list(data.input_shape), num_classes=data.num_classes, timesteps=hardware_t,
                             percentile=params.main_percentile, ann_accuracy=ann_acc[len(x_main)])
        for row in rows:
            if row.timesteps == hardware_t:
                row.extra.update({"model_path": MODEL_PATH, "mappable": True})
        main_seconds = time.perf_counter() - started

        for reset in params.resets:
            for percentile in params.percentiles:
                with child_run(f"conversion-{reset}-p{percentile:g}", {"reset": reset, "percentile": percentile}) as child:
                    net = normalised_snn(parsed, scales[percentile], reset)
                    if reset == "subtract" and percentile == params.main_percentile and long_images >= len(x_sweep):
                        sweep = subset_evaluation(evaluation, len(x_sweep), params.sweep_timesteps)  # the main run covers these images
                    else:
                        sweep = evaluate_timesteps(net, x_sweep, y_sweep, sweep_timesteps, data.input_shape, params.batch_size,
                                                   progress=f"sweep {reset} p{percentile:g}")
                    for t in sweep.timesteps:
                        child.log_metrics({"accuracy": sweep.accuracy[t]}, step=t)
                    extra = {"config": "sweep", "reset": reset, "percentile": percentile, "test_subset_seed": common.seed}
                    rows += snn_rows("conversion", net, sweep, data, ann_meta, ann_acc, common.seed, run_ids, extra, set())
                    curves[f"{reset} p{percentile:g} ({len(x_sweep)} img)"] = sweep

        plot_accuracy_vs_timesteps(curves, ann_acc[len(x_main)], PLOT_PATH, f"ANN->SNN conversion, {data.dataset}")
        write_rows(RESULTS_PATH, rows)
        run.log_artifact(PLOT_PATH)
        run.log_artifact(RESULTS_PATH)
        seconds = time.perf_counter() - started
        run.log_metrics({"main_seconds": main_seconds, "seconds": seconds})
    best = {t: evaluation.accuracy[t] for t in (64, params.timesteps) if t in evaluation.accuracy}
    print(f"conversion: ANN {ann_acc[len(x_main)]:.4f}; main (subtract, p{params.main_percentile:g}) accuracy {best}; "
          f"{len(rows)} rows, {seconds:.0f}s; saved {MODEL_PATH} (T={main_meta['timesteps']})")


if __name__ == "__main__":
    main()
