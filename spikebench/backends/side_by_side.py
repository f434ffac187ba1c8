"""Several simulators of one converted SNN run side by side on the same batches, and compared.

`run_side_by_side` runs our engine and the library adapters (`build_backend`) batch by batch
and compares every simulator's per-neuron spike counts with the first one's as it goes;
`run_libraries` does so for a list of libraries, pairing the hard-reset-only ones (norse)
with the engine's reset-to-zero twin; `compare_runs` turns two runs into accuracy per T,
identical-prediction fractions and spike-count differences per layer.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from spikebench.backends.steploop import build_backend
from spikebench.spiking import SpikingNetwork


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


@dataclass
class LibraryRun:
    """One library's run and the engine run it is compared with (same weights, same neuron, same images)."""

    reference_net: SpikingNetwork
    reference: RunRecord
    record: RunRecord
    images: torch.Tensor  # indices into the images both ran on
    hard_reset: bool


def run_libraries(net: SpikingNetwork, libraries: list[str], x: torch.Tensor, timesteps: int, batch_size: int,
                  fanouts: list[torch.Tensor], hard_index: torch.Tensor) -> tuple[RunRecord, dict[str, LibraryRun]]:
    """The engine and every library on `x`; hard-reset-only libraries run beside the engine's reset=zero
    twin on `x[hard_index]`. Returns the engine's (subtract) run and each library's comparison pair."""
    soft = [lib for lib in libraries if lib not in HARD_RESET_ONLY]
    hard = [lib for lib in libraries if lib in HARD_RESET_ONLY]
    runs = run_side_by_side({"engine": net, **{lib: build_backend(lib, net) for lib in soft}}, x, timesteps, batch_size,
                            fanouts, progress=" + ".join(["engine", *soft]))
    out = {lib: LibraryRun(net, runs["engine"], runs[lib], torch.arange(len(x)), False) for lib in soft}
    if hard:
        zero_net: SpikingNetwork = copy.deepcopy(net)
        zero_net.reset = "zero"
        runs_zero = run_side_by_side({"engine": zero_net, **{lib: build_backend(lib, zero_net) for lib in hard}}, x[hard_index],
                                     timesteps, batch_size, fanouts, progress=" + ".join(["engine reset=zero", *hard]))
        out.update({lib: LibraryRun(zero_net, runs_zero["engine"], runs_zero[lib], hard_index, True) for lib in hard})
    return runs["engine"], {lib: out[lib] for lib in libraries}


def library_entry(library: str, run: LibraryRun, engine: RunRecord, labels: torch.Tensor, timesteps: list[int]) -> dict:
    """`compare_runs` of one library against its reference, with what it was compared with and, for a
    hard-reset library, how often it agrees with the (subtract) engine anyway."""
    entry = compare_runs(run.record, run.reference, labels[run.images], timesteps)
    entry["images"] = len(run.images)
    entry["neuron"] = NEURON_NOTES[library]
    entry["compared_with"] = f"engine, reset={run.reference_net.reset}"
    if run.hard_reset:
        entry["identical_predictions_vs_engine_subtract"] = {
            t: float((run.record.predictions[t - 1] == engine.predictions[t - 1, run.images]).float().mean()) for t in timesteps}
    return entry
