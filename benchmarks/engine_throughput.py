"""Engine throughput vs snntorch, norse and spikingjelly on the same converted CNN (not a test).

    python -m benchmarks.engine_throughput [--repeats 5] [--batch 128]

Beside the step-loop backends, each peer's fastest documented CPU form is timed too
(`FAST_FORMS`: spikingjelly multi-step with `SeqToANNContainer`, torch.compile'd snntorch;
built by `benchmarks.training_throughput.build_form`, predictions checked against the engine's).
Every implementation simulates the same network (models/conversion_snn.pt: the default
Fashion-MNIST CNN converted by the `conversion` stage) on the same batch of test images
at T = 8 and T = 32. Repetitions are interleaved (engine, snntorch, norse, spikingjelly,
ANN, then again, rotating the order) so that load changes on the shared machine hit all
of them alike; images/s are medians over repetitions. The dense limit is the ANN's
forward images/s divided by T. Writes benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmarks.training_throughput import build_form
from spikebench.backends.steploop import LIBRARIES, build_backend
from spikebench.data import load_prepared
from spikebench.io import atomic_write_json
from spikebench.spiking import load_snn

RESULTS_PATH = Path("benchmarks/results.json")
MODEL_PATH = "models/conversion_snn.pt"
# the peers' fastest documented CPU forms (spikingjelly multi-step, torch.compile'd snntorch)
FAST_FORMS = ("spikingjelly_multistep", "snntorch_step_compiled")


def _timed(run, x: torch.Tensor) -> float:
    started = time.perf_counter()
    with torch.no_grad():
        run(x)
    return len(x) / (time.perf_counter() - started)


def _load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def benchmark(batch: int, repeats: int, timesteps: list[int], fast_forms: tuple[str, ...] = FAST_FORMS) -> dict:
    """Interleaved images/s of the engine, the step-loop backends and `fast_forms` at each T (medians)."""
    net, meta = load_snn(MODEL_PATH)
    data = load_prepared()
    x = data.test[0][:batch]
    from baselines.models import load_ann

    ann, _ = load_ann(data)
    implementations = {"engine": lambda t: (lambda inputs: net(inputs, t))}
    for library in LIBRARIES:
        backend = build_backend(library, net)
        implementations[library] = lambda t, b=backend: (lambda inputs: b(inputs, t))
    fast_checks = {}
    for form in fast_forms:  # each peer's fastest documented form (see benchmarks.training_throughput)
        by_t = {t: build_form(form, t)[1] for t in timesteps}
        with torch.no_grad():
            for t, forward in by_t.items():
                agree = float((forward(x).argmax(-1) == net(x, t).predictions()).float().mean())
                fast_checks[f"{form}_T{t}"] = agree
                if agree < 0.99:
                    raise SystemExit(f"{form} at T={t}: predictions agree with the engine's on only {agree:.1%} of the batch")
        implementations[form] = lambda t, f=by_t: f[t]
    results: dict = {"T" + str(t): {name: [] for name in [*implementations, "ann"]} for t in timesteps}
    load_before = _load_average()
    for t in timesteps:
        for run in [*implementations.values()]:
            _timed(run(t), x)  # warm-up (allocator, oneDNN primitive caches)
        names = [*implementations, "ann"]
        for repeat in range(repeats):
            order = names[repeat % len(names):] + names[: repeat % len(names)]
            for name in order:
                run = (lambda inputs: ann(inputs)) if name == "ann" else implementations[name](t)
                results["T" + str(t)][name].append(_timed(run, x))
    summary: dict = {"speedup_vs_fastest_peer": {}, "images_per_second": {}, "dense_limit_images_per_second": {}, "samples": results}
    for t in timesteps:
        key = "T" + str(t)
        medians = {name: statistics.median(values) for name, values in results[key].items()}
        peers = {name: medians[name] for name in [*LIBRARIES, *fast_forms]}
        fastest = max(peers, key=peers.get)
        summary["images_per_second"][key] = {name: round(v, 1) for name, v in medians.items() if name != "ann"}
        summary["dense_limit_images_per_second"][key] = round(medians["ann"] / t, 1)
        summary["speedup_vs_fastest_peer"][key] = round(medians["engine"] / peers[fastest], 3)
        summary.setdefault("fastest_peer", {})[key] = fastest
        summary.setdefault("ratios_vs_engine", {})[key] = {name: round(medians["engine"] / v, 3) for name, v in peers.items()}
    summary["conditions"] = {
        "batch": batch, "repeats": repeats, "model": MODEL_PATH, "model_dataset": meta.get("dataset"),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "load_average_before": load_before, "load_average_after": _load_average(),
        "note": "wall-clock images/s on a shared 2-core machine; medians of interleaved repetitions",
        "fast_forms_prediction_agreement": fast_checks,
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--fast-forms", nargs="*", default=list(FAST_FORMS), help="peer forms of benchmarks.training_throughput to add")
    args = parser.parse_args()
    summary = benchmark(args.batch, args.repeats, args.timesteps, tuple(args.fast_forms))
    kept = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    # the training benchmark's keys stay (benchmarks.training_throughput writes them)
    atomic_write_json(RESULTS_PATH, {**{k: v for k, v in kept.items() if k.startswith("training")}, **summary})
    for key, values in summary["images_per_second"].items():
        print(f"{key}: images/s {values}; dense limit {summary['dense_limit_images_per_second'][key]}; "
              f"engine / fastest peer ({summary['fastest_peer'][key]}) = {summary['speedup_vs_fastest_peer'][key]}x")
    print(f"load average before {summary['conditions']['load_average_before']}, after {summary['conditions']['load_average_after']}")


if __name__ == "__main__":
    main()
