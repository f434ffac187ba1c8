"""Stage `rmp`: RMP-SNN (Han, Srinivasan, Roy, CVPR 2020).

Residual-membrane-potential neurons are IF neurons with reset by subtraction (soft
reset): the membrane keeps what exceeds the threshold. The ANN's weights are kept
unchanged and each layer's threshold is set by threshold balancing *on the spiking
network*, layer by layer: with the thresholds of the earlier layers fixed, the SNN runs
`balance_timesteps` steps on training calibration images and layer l's threshold becomes
the maximum synaptic input current (weighted spikes + bias) any of its neurons receives
at any step. All thresholds are then multiplied by a threshold scale s <= 1, trading
accuracy for latency (lower thresholds fire sooner).

The main scale (`main_scale`) runs on `main_images` test images (0: the whole test split, so
its headline rows compare with the ANN on the same images), its first `long_images` of them up
to T_max and the rest to T=64 (the time budget; 0: all to T_max); every other scale in
`threshold_scales` runs on a fixed test subset (`images`) that starts with the conversion
sweep's images, and the main run's images start with that subset. Each scale gives rows per
T, each with the class predicted for every image it is over. The latency factor is the ratio
of the timesteps a hard-reset (reset-to-zero) SNN and RMP need to reach a target accuracy
(ANN - gap), read at every T from 1 to T_max on the `images` subset (the main run read on
its first images). Three hard-reset baselines:
  - balanced thresholds unscaled (Sengupta et al. 2019): the conversion the paper compares with;
  - RMP's own scaled thresholds: isolates what the soft reset alone buys;
  - the strongest reset-to-zero percentile conversion (results/conversion.json, shared images).
All go to reports/rmp_latency.json and the main rows' `latency_factors`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from baselines.models import load_ann
from spikebench import paths
from spikebench.convert import (
    ParsedAnn,
    TimestepEvaluation,
    balance_thresholds,
    evaluate_timesteps,
    fixed_subset,
    parse_ann,
    powers_of_two,
    shared_first,
    subset_evaluation,
    unnormalised_snn,
)
from spikebench.data import SplitData, load_prepared
from spikebench.errors import ParamsError, cli_main
from spikebench.io import atomic_write_json
from spikebench.latency import best_percentile_curve, comparison_summary, conversion_sweep_rows, latency_factors, sweep_images
from spikebench.params import constraint, load_section
from spikebench.plots import plot_accuracy_vs_timesteps
from spikebench.results import ResultRow, RowContext, read_rows, write_rows
from spikebench.snn_rows import ann_accuracy_on, headline_timesteps, log_curve, snn_rows
from spikebench.spiking import save_snn
from spikebench.tracking import child_run, stage_run
from spikebench.training import seed_everything

# Han et al. compare RMP with hard-reset conversion whose thresholds come from the same spike-based
# balancing but unscaled (Sengupta et al. 2019): that is the headline. Hard reset with RMP's own scaled
# thresholds isolates what the soft reset alone buys.
HEADLINE_BASELINE = "hard_reset_unscaled"
BASELINE_LABELS = {
    "hard_reset_unscaled": "hard reset, balanced thresholds unscaled (Sengupta 2019, the paper's baseline)",
    "hard_reset_same_thresholds": "hard reset, RMP's thresholds (scale {scale:g})",
}


@dataclass(frozen=True)
class RmpParams:
    threshold_scales: list[float] = constraint(nonempty=True, min_exclusive=0.0, max=1.0)
    main_scale: float = constraint(min_exclusive=0.0, max=1.0)
    timesteps: int = constraint(min=1)
    balance_timesteps: int = constraint(min=1)
    calibration_size: int = constraint(min=1)
    main_images: int = constraint(min=0)  # main_scale: fixed test subset starting with `images`'s; 0 = the whole split
    long_images: int = constraint(min=0)  # main_scale: only its first long_images run to T_max, the rest to T=64; 0 = all
    images: int = constraint(min=0)  # other scales, latency: fixed test subset (its first conversion.sweep_images are the conversion sweep's)
    accuracy_gaps: list[float] = constraint(nonempty=True, min_exclusive=0.0)  # targets: ANN - gap
    hardware_timesteps: int = constraint(min=1)
    batch_size: int = constraint(min=1)

    def validate(self, prefix: str) -> None:
        if self.main_scale not in self.threshold_scales:
            raise ParamsError(f"params.yaml: {prefix}.main_scale {self.main_scale} must be one of {prefix}.threshold_scales {self.threshold_scales}")
        if self.long_images and self.long_images < self.images:
            raise ParamsError(f"params.yaml: {prefix}.long_images {self.long_images} must be 0 or at least {prefix}.images "
                              f"({self.images}): the latency comparison reads the main run to T_max on those images")


@dataclass
class RmpJob:
    """What every threshold scale and baseline of one run shares."""

    params: RmpParams
    data: SplitData
    parsed: ParsedAnn
    main_index: torch.Tensor  # test-split positions of the main scale's images: `index` first, then the rest
    images: int  # the other scales' and the latency comparisons' subset: the first `images` of `main_index`
    shared: int  # how many of its first images the conversion sweep also ran on
    context: RowContext
    arch: str
    balanced: list[float] = field(default_factory=list)  # the balanced thresholds (scale 1)
    ann_accuracy: dict[int, float] = field(default_factory=dict)  # the ANN on the first n images of `main_index`

    @property
    def index(self) -> torch.Tensor:
        """Test-split positions of the fixed subset (the conversion sweep's images first)."""
        return self.main_index[: self.images]

    def calibrate(self, model: torch.nn.Module, run) -> None:
        """Threshold balancing on training images, and the ANN's accuracy on the main images, the subset and its shared part."""
        params, seed = self.params, self.context.seed
        self.context = RowContext.of(self.data, seed, run)
        self.balanced = balance_thresholds(self.parsed, self.data.calibration(params.calibration_size, seed), params.balance_timesteps)
        x, y = self.data.test[0][self.main_index], self.data.test[1][self.main_index]
        long = min(self.params.long_images, len(self.main_index))
        self.ann_accuracy = ann_accuracy_on(model, x, y, {len(self.main_index), long, self.images, self.shared} - {0})

    def evaluate(self, scale: float, reset: str, progress: str, main: bool = False) -> tuple[torch.nn.Module, TimestepEvaluation]:
        """One simulation read at every T, on the main images (`main`) or on the fixed subset."""
        net = unnormalised_snn(self.parsed, [t * scale for t in self.balanced], reset=reset)
        timesteps = powers_of_two(self.params.timesteps)
        index = self.main_index if main else self.index
        x, y = self.data.test[0][index], self.data.test[1][index]
        long_images = (self.params.long_images or None) if main else None
        return net, evaluate_timesteps(net, x, y, timesteps, self.data.input_shape, self.params.batch_size,
                                       long_images=long_images, progress=progress, indices=index)


def test_subset(data: SplitData, images: int, shared_images: int, seed: int) -> tuple[torch.Tensor, int]:
    """The fixed test subset of `images` images, starting with the conversion sweep's `shared_images` (same seed)."""
    total = len(data.test[0])
    index = fixed_subset(total, images, seed)
    shared = fixed_subset(total, shared_images, seed) if shared_images else index[:0]
    return shared_first(index, shared), len(shared)


def main_order(data: SplitData, main_images: int, subset: torch.Tensor, seed: int) -> torch.Tensor:
    """The main scale's test images: the fixed subset first (so the main run read on its first images is the
    subset's), then the rest of a fixed subset of `main_images` (0: the whole split); never fewer than the subset."""
    return shared_first(fixed_subset(len(data.test[0]), main_images, seed), subset)


def run_scale(job: RmpJob, scale: float, run) -> tuple[TimestepEvaluation, list[ResultRow]]:
    """RMP at one threshold scale; the main scale's network is saved as models/rmp_snn.pt."""
    params = job.params
    main = scale == params.main_scale
    with child_run(f"rmp-scale{scale:g}", {"threshold_scale": scale}) as child:
        net, evaluation = job.evaluate(scale, "subtract", f"rmp scale {scale:g}", main=main)
        log_curve(child, evaluation)
    extra = {"config": "main" if main else "sweep", "threshold_scale": scale, "balanced_thresholds": job.balanced,
             "balance_timesteps": params.balance_timesteps}
    rows = snn_rows(job.context, "rmp", net, evaluation, job.arch, job.ann_accuracy, extra=extra,
                    headline=headline_timesteps(evaluation, params.timesteps) if main else (),
                    model_path=paths.RMP_MODEL if main else "", exported_timesteps=params.hardware_timesteps)
    if main:
        log_curve(run, evaluation, "main_")
        save_snn(paths.RMP_MODEL, net, method="rmp", dataset=job.data.dataset, split_hash=job.data.split_hash,
                 input_shape=list(job.data.input_shape), num_classes=job.data.num_classes, timesteps=params.hardware_timesteps,
                 threshold_scale=scale)
    return evaluation, rows


def hard_reset_baselines(job: RmpJob, rmp: TimestepEvaluation, curves: dict[str, TimestepEvaluation]) -> dict[str, dict]:
    """Reset-to-zero networks on the same images (the subset), compared with RMP at every T from 1 to T_max."""
    params, ann = job.params, job.ann_accuracy[job.images]
    rmp_steps = rmp.every_step_accuracy()
    by_scale: dict[float, TimestepEvaluation] = {}
    baselines = {}
    for key, scale in (("hard_reset_unscaled", 1.0), ("hard_reset_same_thresholds", params.main_scale)):
        label = BASELINE_LABELS[key].format(scale=scale)
        if scale not in by_scale:
            by_scale[scale] = job.evaluate(scale, "zero", label)[1]
            curves[label] = by_scale[scale]
        hard = by_scale[scale]
        baselines[key] = {"baseline": label, "threshold_scale": scale, "curve": hard.accuracy,
                          "comparisons": latency_factors(rmp_steps, hard.every_step_accuracy(), ann, params.accuracy_gaps)}
    return baselines


def percentile_conversion_baseline(job: RmpJob, rmp: TimestepEvaluation, sweep_rows: list[ResultRow]) -> dict | None:
    """The strongest reset-to-zero percentile conversion (results/conversion.json) on the images both stages
    share; its rows exist at powers of two only, so RMP is read on the same grid. None without shared images."""
    best = best_percentile_curve(sweep_rows, "zero")
    if not job.shared or best is None:
        return None
    percentile, curve = best
    ann = job.ann_accuracy.get(job.shared, job.ann_accuracy[job.images])
    return {"baseline": f"conversion reset=zero p{percentile:g} ({paths.CONVERSION_RESULTS}), powers of two", "images": job.shared,
            "curve": curve, "comparisons": latency_factors(rmp.subset_accuracy(job.shared), curve, ann, job.params.accuracy_gaps)}


def latency_report(job: RmpJob, rmp: TimestepEvaluation, baselines: dict[str, dict]) -> dict:
    """`rmp`: the main scale on the subset the baselines ran on."""
    return {"images": job.images, "ann_accuracy": job.ann_accuracy[job.images], "balanced_thresholds": job.balanced,
            "rmp": f"rmp scale {job.params.main_scale:g}", "rmp_curve": rmp.accuracy,
            "factor_grid": f"every T from 1 to {max(powers_of_two(job.params.timesteps))}", "headline": HEADLINE_BASELINE,
            "baselines": baselines}


def attach_latency_factors(rows: list[ResultRow], report: dict) -> dict[str, list[dict]]:
    """Every main row's `extra.latency_factors`: the targets, T and factors against each baseline."""
    summary = comparison_summary(report["baselines"])
    for row in rows:
        if row.extra["config"] == "main":
            row.extra["latency_factors"] = {"baselines": {k: report["baselines"][k]["baseline"] for k in summary},
                                            "images": report["images"], "headline": HEADLINE_BASELINE, **summary}
    return summary


def prepare_job(params: RmpParams, data: SplitData, seed: int, sweep_rows: list[ResultRow]) -> tuple[RmpJob, torch.nn.Module]:
    """Load and parse the ANN and fix the test images: the main scale's, starting with the subset (the
    conversion sweep's images first)."""
    model, ann_meta = load_ann(data)
    index, shared = test_subset(data, params.images, sweep_images(sweep_rows), seed)
    main_index = main_order(data, params.main_images, index, seed)
    return RmpJob(params, data, parse_ann(model), main_index, len(index), shared, RowContext.of(data, seed), ann_meta["arch"]), model


@cli_main
def main() -> None:
    common, params = load_section(RmpParams, "rmp")
    data = load_prepared()
    seed_everything(common.seed)
    sweep_rows = conversion_sweep_rows(read_rows(paths.CONVERSION_RESULTS))  # the conversion sweep: shared images, percentile baseline
    job, model = prepare_job(params, data, common.seed, sweep_rows)
    with stage_run("rmp", method="rmp", library="spikebench", dataset=data.dataset, split_hash=data.split_hash, params=params) as run:
        started = time.perf_counter()
        job.calibrate(model, run)
        rows, curves, evaluations = [], {}, {}
        for scale in params.threshold_scales:
            evaluations[scale], scale_rows = run_scale(job, scale, run)
            evaluation = evaluations[scale]
            longer = f", T>64 on {evaluation.images[max(evaluation.timesteps)]}" if len(set(evaluation.images.values())) > 1 else ""
            curves[f"rmp scale {scale:g} ({len(evaluation.labels)} img{longer})"] = evaluation
            rows += scale_rows
        rmp = subset_evaluation(evaluations[params.main_scale], job.images)  # the latency comparisons' images
        baselines = hard_reset_baselines(job, rmp, curves)
        percentile = percentile_conversion_baseline(job, rmp, sweep_rows)
        if percentile is not None:
            baselines["percentile_conversion"] = percentile
        report = latency_report(job, rmp, baselines)
        summary = attach_latency_factors(rows, report)
        plot_accuracy_vs_timesteps(curves, report["ann_accuracy"], paths.RMP_PLOT, f"RMP-SNN, {data.dataset}")
        atomic_write_json(paths.RMP_LATENCY, report)
        write_rows(paths.RMP_RESULTS, rows)
        run.log_headline(rows)
        run.log_snn_model(paths.RMP_MODEL, data.test[0][:2])
        for path in (paths.RMP_PLOT, paths.RMP_LATENCY, paths.RMP_RESULTS):
            run.log_artifact(path)
        seconds = time.perf_counter() - started
        run.log_metrics({"seconds": seconds})
    factors = {key: [c["factor"] and round(c["factor"], 2) for c in comparisons] for key, comparisons in summary.items()}
    print(f"rmp: thresholds {[round(t, 3) for t in job.balanced]}; latency factors {factors}; {len(rows)} rows, {seconds:.0f}s")


if __name__ == "__main__":
    main()
