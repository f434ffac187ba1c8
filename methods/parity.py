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
T = `timesteps` enter the leaderboard table), each row with the library's predicted class for
every image it is over (saved by test-split position). brian2 checks spike counts of the FC head
only and writes no row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from spikebench import paths
from spikebench.backends.brian2_if import compare_head
from spikebench.backends.side_by_side import LibraryRun, library_entry, run_libraries
from spikebench.backends.steploop import LIBRARIES
from spikebench.convert import fixed_subset, powers_of_two
from spikebench.data import SplitData, check_split_hash, load_prepared
from spikebench.energy import count_params, fanout_maps, snn_metrics_per_step
from spikebench.errors import cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, RowContext, write_rows
from spikebench.spiking import SpikingNetwork, load_snn
from spikebench.tracking import child_run, stage_run
from spikebench.training import seed_everything


@dataclass(frozen=True)
class ParityParams:
    libraries: list[str] = constraint(nonempty=True, choices=LIBRARIES)
    timesteps: int = constraint(min=1)
    images: int = constraint(min=0)  # fixed test subset; 0 = the whole split
    hard_reset_images: int = constraint(min=1)  # norse (hard-reset IF only): fixed subset of those images
    batch_size: int = constraint(min=1)
    brian2_images: int = constraint(min=1)
    brian2_timesteps: int = constraint(min=1)


def library_rows(context: RowContext, library: str, run: LibraryRun, entry: dict, meta: dict, input_shape: tuple[int, ...],
                 timesteps: list[int], test_index: torch.Tensor) -> list[ResultRow]:
    """One row per T for one library; only the row at T_max is a headline row.

    `test_index`: the test-split positions of the images the libraries ran on (`run.images` index into them).
    """
    net = run.reference_net
    images = test_index[run.images]
    per_step = snn_metrics_per_step(net, input_shape, run.record.spikes_per_step, run.record.synops_per_step, len(run.images))
    params = count_params(net)
    rows = []
    for t in timesteps:
        metrics = per_step[t - 1]
        rows.append(context.row(
            "conversion", library, meta.get("arch", "cnn"), timesteps=t, accuracy=entry["accuracy"][t], test_images=len(run.images),
            ann_accuracy=meta.get("ann_accuracy"), ops=metrics, params=params, weight_bits=32, headline=t == timesteps[-1],
            extra={"config": "parity", "reset": net.reset, "percentile": meta.get("percentile"),
                   "identical_predictions": entry["identical_predictions"][t], **metrics.as_extra()},
            predictions=Predictions.of(run.record.predictions[t - 1], images),  # what entry["accuracy"][t] is computed from
        ))
    return rows


def compare_libraries(params: ParityParams, context: RowContext, net: SpikingNetwork, meta: dict, data: SplitData,
                      test_index: torch.Tensor) -> tuple[dict, list[ResultRow]]:
    """Every library against the engine on the test images `test_index`: the report's entries and the result rows."""
    x, y = data.test[0][test_index], data.test[1][test_index]
    timesteps = powers_of_two(params.timesteps)
    hard_index = fixed_subset(len(x), params.hard_reset_images, context.seed)
    engine, runs = run_libraries(net, params.libraries, x, timesteps[-1], params.batch_size, fanout_maps(net, data.input_shape),
                                 hard_index)
    report = {"model": str(paths.CONVERSION_MODEL), "images": len(x), "test_subset_seed": context.seed, "timesteps": timesteps[-1],
              "engine_seconds": round(engine.seconds, 2), "libraries": {}}
    rows = []
    for library, run in runs.items():
        with child_run(f"parity-{library}", {"library": library}, tags={"library": library}) as child:
            entry = library_entry(library, run, engine, y, timesteps)
            report["libraries"][library] = entry
            child.log_metrics({"identical_predictions": entry["identical_predictions"][timesteps[-1]],
                               "accuracy": entry["accuracy"][timesteps[-1]]})
            rows += library_rows(context, library, run, entry, meta, data.input_shape, timesteps, test_index)
    return report, rows


def brian2_check(params: ParityParams, net: SpikingNetwork, data: SplitData, seed: int):
    """brian2 simulating the FC head on the engine's spikes: (report entry, comparison)."""
    started = time.perf_counter()
    x_test = data.test[0]
    comparison = compare_head(net, x_test[fixed_subset(len(x_test), params.brian2_images, seed)], params.brian2_timesteps)
    entry = {**comparison.summary(), "seconds": round(time.perf_counter() - started, 1),
             "setup": "FC head fed by the engine's conv spikes (pooling folded into the synapses), float64, numpy codegen"}
    return entry, comparison


@cli_main
def main() -> None:
    common, params = load_section(ParityParams, "parity")
    data = load_prepared()
    seed_everything(common.seed)
    net, meta = load_snn(paths.CONVERSION_MODEL)
    check_split_hash(data.split_hash, meta.get("split_hash", ""), str(paths.CONVERSION_MODEL))
    index = fixed_subset(len(data.test[0]), params.images, common.seed)

    with stage_run("parity", method="conversion", library="all", dataset=data.dataset, split_hash=data.split_hash, params=params) as run:
        started = time.perf_counter()
        report, rows = compare_libraries(params, RowContext.of(data, common.seed, run), net, meta, data, index)
        report["brian2"], comparison = brian2_check(params, net, data, common.seed)
        report["seconds"] = round(time.perf_counter() - started, 1)
        atomic_write_json(paths.PARITY_REPORT, report)
        write_rows(paths.PARITY_RESULTS, rows)
        run.log_headline(rows)
        run.log_artifact(paths.PARITY_REPORT)
        run.log_metrics({"seconds": report["seconds"], "brian2_differing_counts": sum(comparison.differing_counts())})
    summary = {lib: e["identical_predictions"][report["timesteps"]] for lib, e in report["libraries"].items()}
    print(f"parity: identical predictions at T={report['timesteps']} {summary}; brian2 differing counts {comparison.differing_counts()}; "
          f"{report['seconds']}s")


if __name__ == "__main__":
    main()
