"""Stage `parity`: the converted SNN in snntorch, norse, spikingjelly and brian2 vs our engine.

The main converted network (models/conversion_snn.pt, reset by subtraction) runs on the
test split (`images`; 0 = all of it) in our engine and in each library's step-by-step form
(`spikebench.backends.build_backend`). Per library: accuracy at every T up to
`timesteps`, the fraction of images whose prediction equals the engine's, and per layer
the total spikes and the largest per-neuron spike-count difference. norse has only a
hard-reset IF, so it is compared with the engine running the same weights with reset to
zero (identical neuron) and, for information, with the subtract network, on a fixed subset
(`hard_reset_images`) to keep the stage inside its time budget. brian2
simulates the FC head on the engine's spikes (`spikebench.backends.brian2_if`).

Writes reports/parity.json and results/parity.json (per-library rows; only the rows at
T = `timesteps` enter the leaderboard table).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from baselines.training import seed_everything
from spikebench.backends.brian2_if import compare_head
from spikebench.backends.steploop import LIBRARIES, build_backend
from spikebench.convert import fixed_subset, powers_of_two
from spikebench.data import check_split_hash, load_prepared
from spikebench.energy import count_params, fanout_maps, snn_metrics_per_step
from spikebench.errors import cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import ResultRow, write_rows
from spikebench.spiking import SpikingNetwork, load_snn
from spikebench.tracking import child_run, stage_run

MODEL_PATH = "models/conversion_snn.pt"
REPORT_PATH = "reports/parity.json"
RESULTS_PATH = "results/parity.json"


@dataclass(frozen=True)
class ParityParams:
    libraries: list[str] = constraint(nonempty=True, choices=LIBRARIES)
    timesteps: int = constraint(min=1)
    images: int = constraint(min=0)  # fixed test subset; 0 = the whole split
    hard_reset_images: int = constraint(min=1)  # norse (hard-reset IF only): fixed subset of those images
    batch_size: int = constraint(min=1)
    brian2_images: int = constraint(min=1)
    brian2_timesteps: int = constraint(min=1)


@dataclass
class RunRecord:
    """What one simulator produced over the images, and how its spike counts compare with the reference's."""

    predictions: torch.Tensor  # (T, images)
    spikes_per_step: list[torch.Tensor]  # per layer, (T,) summed over images
    synops_per_step: list[torch.Tensor]
    spikes_per_layer: list[int]
    seconds: float  # in the simulator's own calls only
    max_count_difference: list[int]  # per layer, largest |count - reference count| of any neuron on any image
    differing_counts: list[int]  # per layer, (image, neuron) pairs whose count differs from the reference's


def _add(total: list | None, part: list) -> list:
    return list(part) if total is None else [a + b for a, b in zip(total, part, strict=True)]


def run_side_by_side(simulators: dict[str, Callable], x: torch.Tensor, timesteps: int, batch_size: int,
                     fanouts: list[torch.Tensor], progress: str | None = None) -> dict[str, RunRecord]:
    """Run every `simulate(x_batch, T, record_neurons=True, fanouts=...)` on each batch of `x`.

    The first simulator is the reference. Every other one's per-neuron spike counts are compared
    with it batch by batch, so no (images x neurons) count table is kept: on the whole test split
    that table would be gigabytes.
    """
    from tqdm.auto import tqdm

    names = list(simulators)
    state: dict[str, dict] = {name: {"predictions": [], "spikes": None, "synops": None, "totals": None, "max": None,
                                     "differing": None, "seconds": 0.0} for name in names}
    with torch.no_grad():
        for start in tqdm(range(0, len(x), batch_size), desc=progress, disable=progress is None, mininterval=5):
            batch = x[start : start + batch_size]
            reference_counts: list[torch.Tensor] = []
            for name in names:
                began = time.perf_counter()
                result = simulators[name](batch, timesteps, record_neurons=True, fanouts=fanouts)
                record = state[name]
                record["seconds"] += time.perf_counter() - began
                counts = [c.flatten(1) for c in result.neuron_counts]
                record["predictions"].append(result.predictions_per_step())
                record["spikes"] = _add(record["spikes"], result.spikes_per_step)
                record["synops"] = _add(record["synops"], result.synops_per_step)
                record["totals"] = _add(record["totals"], [int(c.sum()) for c in counts])
                reference_counts = reference_counts or counts
                differences = [(a - b).abs() for a, b in zip(counts, reference_counts, strict=True)]
                batch_max = [int(d.max()) for d in differences]
                record["max"] = batch_max if record["max"] is None else [max(a, b) for a, b in zip(record["max"], batch_max, strict=True)]
                record["differing"] = _add(record["differing"], [int((d > 0).sum()) for d in differences])
    return {name: RunRecord(torch.cat(r["predictions"], 1), r["spikes"], r["synops"], r["totals"], r["seconds"], r["max"], r["differing"])
            for name, r in state.items()}


def compare_runs(library: RunRecord, engine: RunRecord, labels: torch.Tensor, timesteps: list[int]) -> dict:
    """Accuracy per T, identical-prediction fraction per T and spike-count differences per layer."""
    return {
        "accuracy": {t: float((library.predictions[t - 1] == labels).float().mean()) for t in timesteps},
        "engine_accuracy": {t: float((engine.predictions[t - 1] == labels).float().mean()) for t in timesteps},
        "identical_predictions": {t: float((library.predictions[t - 1] == engine.predictions[t - 1]).float().mean()) for t in timesteps},
        "spikes_per_layer": library.spikes_per_layer,
        "engine_spikes_per_layer": engine.spikes_per_layer,
        "max_spike_count_difference_per_layer": library.max_count_difference,
        "differing_neuron_counts_per_layer": library.differing_counts,
        "seconds": round(library.seconds, 2),
    }


HARD_RESET_ONLY = ("norse",)  # libraries without a soft-reset IF neuron
NEURON_NOTES = {
    "snntorch": "snn.Leaky(beta=1, reset_mechanism=subtract): same soft-reset IF; fires on v > threshold (engine: >=)",
    "spikingjelly": "IFNode(v_reset=None), single-step mode: same soft-reset IF, fires on v >= threshold",
    "norse": "IAFCell: IF with hard reset to 0 (norse 1.1.0 has no soft reset), fires on v > threshold; "
             "compared with the engine running the same weights with reset=zero",
}


@cli_main
def main() -> None:
    common, params = load_section(ParityParams, "parity")
    data = load_prepared()
    seed_everything(common.seed)
    net, meta = load_snn(MODEL_PATH)
    check_split_hash(data.split_hash, meta.get("split_hash", ""), MODEL_PATH)
    x_test, y_test = data.test
    index = fixed_subset(len(x_test), params.images, common.seed)
    x, y = x_test[index], y_test[index]
    timesteps = powers_of_two(params.timesteps)
    t_max = timesteps[-1]
    fanouts = fanout_maps(net, data.input_shape)
    zero_net: SpikingNetwork = copy.deepcopy(net)
    zero_net.reset = "zero"
    total, nonzero = count_params(net)

    with stage_run("parity", method="conversion", library="all", dataset=data.dataset, split_hash=data.split_hash, params=params) as run:
        started = time.perf_counter()
        # libraries whose neuron matches the engine's run beside it on the same batches; norse (hard reset
        # only) runs beside the engine's reset=zero twin on a fixed subset
        soft = [lib for lib in params.libraries if lib not in HARD_RESET_ONLY]
        hard = [lib for lib in params.libraries if lib in HARD_RESET_ONLY]
        runs = run_side_by_side({"engine": net, **{lib: build_backend(lib, net) for lib in soft}}, x, t_max, params.batch_size,
                                fanouts, progress=" + ".join(["engine", *soft]))
        hard_index = fixed_subset(len(x), params.hard_reset_images, common.seed)
        if hard:
            runs_zero = run_side_by_side({"engine": zero_net, **{lib: build_backend(lib, zero_net) for lib in hard}}, x[hard_index],
                                         t_max, params.batch_size, fanouts, progress=" + ".join(["engine reset=zero", *hard]))
        engine = runs["engine"]
        report = {"model": MODEL_PATH, "images": len(x), "test_subset_seed": common.seed, "timesteps": t_max,
                  "engine_seconds": round(engine.seconds, 2), "libraries": {}}
        rows = []
        for library in params.libraries:
            with child_run(f"parity-{library}", {"library": library}) as child:
                hard_reset = library in hard
                reference_net, reference, record = (zero_net, runs_zero["engine"], runs_zero[library]) if hard_reset else (
                    net, engine, runs[library])
                images = hard_index if hard_reset else torch.arange(len(x))
                entry = compare_runs(record, reference, y[images], timesteps)
                entry["images"] = len(images)
                entry["neuron"] = NEURON_NOTES[library]
                entry["compared_with"] = f"engine, reset={reference_net.reset}"
                if hard_reset:
                    entry["identical_predictions_vs_engine_subtract"] = {
                        t: float((record.predictions[t - 1] == engine.predictions[t - 1, images]).float().mean()) for t in timesteps}
                report["libraries"][library] = entry
                child.log_metrics({"identical_predictions": entry["identical_predictions"][t_max], "accuracy": entry["accuracy"][t_max]})
                per_step = snn_metrics_per_step(reference_net, data.input_shape, record.spikes_per_step, record.synops_per_step, len(images))
                for t in timesteps:
                    metrics = per_step[t - 1]
                    rows.append(ResultRow(
                        method="conversion", library=library, dataset=data.dataset, split_hash=data.split_hash, arch=meta.get("arch", "cnn"),
                        timesteps=t, accuracy=entry["accuracy"][t], ann_accuracy=meta.get("ann_accuracy"),
                        spikes_per_image=metrics.spikes, synops_per_image=metrics.synops, macs_per_image=metrics.macs,
                        energy_per_image_j=metrics.energy_j, params=total, nonzero_params=nonzero, weight_bits=32, seed=common.seed,
                        mlflow_run_id=run.run_id, mlflow_experiment_id=run.experiment_id,
                        extra={"config": "parity", "reset": reference_net.reset, "percentile": meta.get("percentile"),
                               "test_images": len(images), "identical_predictions": entry["identical_predictions"][t],
                               "leaderboard": t == t_max, **metrics.as_extra()},
                    ))
        brian2_started = time.perf_counter()
        b2_index = fixed_subset(len(x_test), params.brian2_images, common.seed)
        comparison = compare_head(net, x_test[b2_index], params.brian2_timesteps)
        report["brian2"] = {**comparison.summary(), "seconds": round(time.perf_counter() - brian2_started, 1),
                            "setup": "FC head fed by the engine's conv spikes (pooling folded into the synapses), float64, numpy codegen"}
        report["seconds"] = round(time.perf_counter() - started, 1)
        atomic_write_json(REPORT_PATH, report)
        write_rows(RESULTS_PATH, rows)
        run.log_artifact(REPORT_PATH)
        run.log_metrics({"seconds": report["seconds"], "brian2_differing_counts": sum(comparison.differing_counts())})
    summary = {lib: e["identical_predictions"][t_max] for lib, e in report["libraries"].items()}
    print(f"parity: identical predictions at T={t_max} {summary}; brian2 differing counts {comparison.differing_counts()}; {report['seconds']}s")


if __name__ == "__main__":
    main()
