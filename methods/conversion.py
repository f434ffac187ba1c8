"""Stage `conversion`: ANN -> SNN conversion (Rueckauer et al. 2017) and its sweep.

The main configuration (reset by subtraction at `main_percentile`) runs on `main_images`
test images (0: the full test split) up to T = `timesteps`; with `long_images` set (0: all),
only that many run to T_max and the rest stop at T = 64 (a step's result never depends on
later steps). The sweep (every reset x percentile) runs on a fixed, recorded subset of
`sweep_images` test images (the first images of the main run) up to `sweep_timesteps`.
One simulation per configuration gives the accuracy at every T in {1, 2, 4, ..., T_max}.
Rows record how many test images each accuracy is over (`test_images`), the
ANN's accuracy on the same images (`ann_accuracy`) and the class predicted for each of those
images (saved by `write_rows` under reports/predictions/conversion/, by test-split position).

Budget: the cost is ~3.6 M MACs per image and step (the second conv dominates). The default
runs the main configuration on the whole test split to T=64 and its first 1,000 images on to
T_max (0.83 M image-steps instead of 2.56 M at T=256): the headline rows (T <= 64) are over the
whole split, so the leaderboard compares them with the ANN on the same images, and the whole
pipeline stays within its 60 minutes. The sweep stays on its fixed subset.

Writes results/conversion.json (one row per configuration and T), models/conversion_snn.pt
(the main configuration, for the hardware) and reports/conversion_accuracy_vs_T.png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from baselines.models import load_ann
from spikebench import paths
from spikebench.convert import (
    MAXPOOL_STRATEGIES,
    ParsedAnn,
    TimestepEvaluation,
    activation_scales,
    evaluate_timesteps,
    main_and_sweep_order,
    normalised_snn,
    parse_ann,
    powers_of_two,
    subset_evaluation,
)
from spikebench.data import SplitData, load_prepared
from spikebench.errors import ParamsError, cli_main
from spikebench.params import constraint, load_section
from spikebench.plots import plot_accuracy_vs_timesteps
from spikebench.results import ResultRow, RowContext, write_rows
from spikebench.snn_rows import ann_accuracy_on, headline_timesteps, log_curve, snn_rows
from spikebench.spiking import RESETS, save_snn
from spikebench.tracking import child_run, stage_run
from spikebench.training import seed_everything


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


@dataclass
class Converted:
    """What every configuration of one run shares: the parsed ANN, its scales and the test images."""

    params: ConversionParams
    data: SplitData
    parsed: ParsedAnn
    main: tuple[torch.Tensor, torch.Tensor]  # the main configuration's test images (sweep images first)
    sweep: tuple[torch.Tensor, torch.Tensor]  # the sweep's fixed subset
    main_index: torch.Tensor  # test-split positions of `main`: the rows' predictions are saved by them
    sweep_index: torch.Tensor  # test-split positions of `sweep` (the first of `main_index`)
    long_images: int  # main configuration: images run to T_max
    context: RowContext
    arch: str
    scales: dict[float, list[float]] = field(default_factory=dict)  # percentile -> per-layer activation scale
    ann_accuracy: dict[int, float] = field(default_factory=dict)  # the ANN on the first n main images

    def calibrate(self, model: torch.nn.Module, run) -> None:
        """The activation scales of every percentile (training images) and the ANN's accuracy on the test subsets."""
        params, seed = self.params, self.context.seed
        self.context = RowContext.of(self.data, seed, run)
        self.scales = activation_scales(self.parsed, self.data.calibration(params.calibration_size, seed), params.percentiles)
        n_main = len(self.main[0])
        self.ann_accuracy = ann_accuracy_on(model, *self.main, {n_main, min(self.long_images, n_main), len(self.sweep[0])})


def run_main_configuration(job: Converted, run) -> tuple[TimestepEvaluation, list[ResultRow], dict]:
    """Reset by subtraction at `main_percentile` up to T_max; saves models/conversion_snn.pt."""
    params, data = job.params, job.data
    net = normalised_snn(job.parsed, job.scales[params.main_percentile], "subtract")
    evaluation = evaluate_timesteps(net, *job.main, powers_of_two(params.timesteps), data.input_shape, params.batch_size,
                                    long_images=job.long_images, progress="conversion main", indices=job.main_index)
    extra = {"config": "main", "reset": "subtract", "percentile": params.main_percentile, "scales": job.scales[params.main_percentile]}
    rows = snn_rows(job.context, "conversion", net, evaluation, job.arch, job.ann_accuracy, extra=extra,
                    headline=headline_timesteps(evaluation, params.timesteps), model_path=paths.CONVERSION_MODEL,
                    exported_timesteps=params.hardware_timesteps)
    log_curve(run, evaluation, "main_", synops=True)
    meta = save_snn(paths.CONVERSION_MODEL, net, method="conversion", dataset=data.dataset, split_hash=data.split_hash,
                    input_shape=list(data.input_shape), num_classes=data.num_classes, timesteps=params.hardware_timesteps,
                    percentile=params.main_percentile, ann_accuracy=job.ann_accuracy[len(job.main[0])])
    return evaluation, rows, meta


def sweep_configuration(job: Converted, reset: str, percentile: float, main: TimestepEvaluation) -> tuple[TimestepEvaluation, list[ResultRow]]:
    """One reset x percentile on the sweep subset (read off the main run where that run covers it)."""
    params = job.params
    net = normalised_snn(job.parsed, job.scales[percentile], reset)
    if reset == "subtract" and percentile == params.main_percentile and job.long_images >= len(job.sweep[0]):
        evaluation = subset_evaluation(main, len(job.sweep[0]), params.sweep_timesteps)  # the main run covers these images
    else:
        evaluation = evaluate_timesteps(net, *job.sweep, powers_of_two(params.sweep_timesteps), job.data.input_shape,
                                        params.batch_size, progress=f"sweep {reset} p{percentile:g}", indices=job.sweep_index)
    extra = {"config": "sweep", "reset": reset, "percentile": percentile, "test_subset_seed": job.context.seed}
    return evaluation, snn_rows(job.context, "conversion", net, evaluation, job.arch, job.ann_accuracy, extra=extra)


def run_sweep(job: Converted, main: TimestepEvaluation) -> tuple[list[ResultRow], dict[str, TimestepEvaluation]]:
    """Every reset x percentile, each logged as an MLflow child run."""
    rows, curves = [], {}
    for reset in job.params.resets:
        for percentile in job.params.percentiles:
            with child_run(f"conversion-{reset}-p{percentile:g}", {"reset": reset, "percentile": percentile}) as child:
                evaluation, config_rows = sweep_configuration(job, reset, percentile, main)
                log_curve(child, evaluation)
                rows += config_rows
                curves[f"{reset} p{percentile:g} ({len(job.sweep[0])} img)"] = evaluation
    return rows, curves


def prepare_job(params: ConversionParams, data: SplitData, seed: int) -> tuple[Converted, torch.nn.Module]:
    """Load and parse the ANN and fix the main and sweep test subsets."""
    model, ann_meta = load_ann(data)
    parsed = parse_ann(model, params.maxpool)
    x_test, y_test = data.test
    main_index, sweep_index = main_and_sweep_order(len(x_test), seed, params.sweep_images, params.main_images)
    job = Converted(params, data, parsed, (x_test[main_index], y_test[main_index]), (x_test[sweep_index], y_test[sweep_index]),
                    main_index, sweep_index, params.long_images or len(main_index), RowContext.of(data, seed), ann_meta["arch"])
    return job, model


@cli_main
def main() -> None:
    common, params = load_section(ConversionParams, "conversion")
    data = load_prepared()
    seed_everything(common.seed)
    job, model = prepare_job(params, data, common.seed)
    with stage_run("conversion", method="conversion", library="spikebench", dataset=data.dataset, split_hash=data.split_hash,
                   params=params) as run:
        started = time.perf_counter()
        job.calibrate(model, run)
        evaluation, rows, meta = run_main_configuration(job, run)
        main_seconds = time.perf_counter() - started
        sweep_rows, sweep_curves = run_sweep(job, evaluation)
        rows += sweep_rows
        n_main, ann = len(job.main[0]), job.ann_accuracy[len(job.main[0])]
        curves = {f"main: subtract p{params.main_percentile:g} ({n_main} img, T>64 on {job.long_images})": evaluation, **sweep_curves}
        plot_accuracy_vs_timesteps(curves, ann, paths.CONVERSION_PLOT, f"ANN->SNN conversion, {data.dataset}")
        write_rows(paths.CONVERSION_RESULTS, rows)
        run.log_headline(rows)
        run.log_snn_model(paths.CONVERSION_MODEL, data.test[0][:2])
        run.log_artifact(paths.CONVERSION_PLOT)
        run.log_artifact(paths.CONVERSION_RESULTS)
        seconds = time.perf_counter() - started
        run.log_metrics({"main_seconds": main_seconds, "seconds": seconds})
    best = {t: evaluation.accuracy[t] for t in (64, params.timesteps) if t in evaluation.accuracy}
    print(f"conversion: ANN {ann:.4f}; main (subtract, p{params.main_percentile:g}) accuracy {best}; "
          f"{len(rows)} rows, {seconds:.0f}s; saved {paths.CONVERSION_MODEL} (T={meta['timesteps']})")


if __name__ == "__main__":
    main()
