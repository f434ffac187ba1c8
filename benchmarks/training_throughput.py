"""BPTT training-step throughput: the engine vs snntorch, spikingjelly and norse in their fastest forms (not a test).

    python -m benchmarks.training_throughput [--repeats 7] [--batch 128] [--timesteps 4 8] [--forms ...]

One training step = forward over T steps, cross-entropy on the output membrane after T
steps / T, surrogate-gradient backward, Adam step; the same CNN (models/conversion_snn.pt,
the converted default Fashion-MNIST CNN: IF neurons, soft reset, thresholds from the
checkpoint) on the same batch of test images. Every form hoists the first layer out of the
time loop (the input is a constant analog current; spikingjelly's own conv tutorial does so),
so peers are not charged for recomputing it. Surrogate: ATan(alpha=2) wherever the library
has it (engine, snntorch `surrogate.atan`, spikingjelly `surrogate.ATan`); norse uses its
default SuperSpike (the engine's fast_sigmoid), and reset-to-zero IAF (norse has no soft reset).

Each form runs in its own worker process, all alive at once; the parent asks them for one
timed step each in a rotating order (interleaved repetitions, so load changes hit all forms
alike) and takes medians. Peak memory per form: the worker's maximum resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`), and that peak minus the worker's resident size
after set-up and the correctness check, just before its first training step
(`step_peak_rss_mb`: what the training step itself adds). Before timing, every form's
forward loss and predictions at the initial weights are checked against the engine's.
`synaptic_floor` runs the synaptic layers alone as the engine does (no neurons): the work
every form does, so floor / fastest peer bounds what any neuron implementation can gain.
Allocator (`--allocator`, default retain-all): every worker calls
`spikebench.multistep.retain_freed_memory` after its check (as `train_snn` does), so no form
pays page faults on its large per-step tensors; `default` leaves glibc's settings.
Gradients are each library's own: snntorch detaches the reset from the graph, spikingjelly
(detach_reset=False) and the engine do not; the forward (loss, predictions) is the same.
Writes the `training` key of benchmarks/results.json (other keys kept), or
`training_allocator_<name>` for a non-default allocator.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

RESULTS_PATH = Path("benchmarks/results.json")
MODEL_PATH = "models/conversion_snn.pt"
FORMS = ("engine_fused", "engine_fused_compiled", "engine_fused_learn_neurons", "engine_stepwise", "snntorch_step",
         "snntorch_step_compiled", "spikingjelly_multistep", "spikingjelly_multistep_compiled", "norse_step", "synaptic_floor")
ENGINE_FORMS = ("engine_fused", "engine_fused_compiled", "engine_fused_learn_neurons", "engine_stepwise")
NOT_PEERS = (*ENGINE_FORMS, "synaptic_floor")
# torch.compile of the whole engine step loses (graph breaks at the neuron node's Python loop:
# 327 vs 671 images/s at T = 4), so it is timed only on request
OPTIONAL_FORMS = ("engine_fused_compiled",)
ALLOCATORS = ("retain-all", "retain-engine", "default")
COMPILE_BUDGET_S = 240  # a compiled form whose first (compiling) step takes longer is dropped


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --- the forms: each returns (params, forward(x) -> logits) -----------------------------------


def _engine(form: str, timesteps: int, reset: str) -> tuple[list, Callable]:
    import torch

    from spikebench.snn_training import output_logits, trainable
    from spikebench.spiking import load_snn

    net, _ = load_snn(MODEL_PATH)
    learn = form == "engine_fused_learn_neurons"
    net = trainable(net, learn_threshold=learn, learn_leak=learn, surrogate="atan", surrogate_alpha=2.0).train()
    net.reset = reset
    net.fused_bptt = form != "engine_stepwise"

    def forward(x):
        return output_logits(net(x, timesteps))

    return list(net.parameters()), (torch.compile(forward) if form.endswith("compiled") else forward)


def _synaptic_floor(timesteps: int) -> tuple[list, Callable]:
    """The synaptic layers alone, as the engine runs them (first layer once, the rest over T x B, NHWC
    convolutions), with no neuron at all: the work every form does, a lower bound on a step's time."""
    import torch
    from torch import nn

    from spikebench.spiking import load_snn

    net, _ = load_snn(MODEL_PATH)
    stages = nn.ModuleList(_stages(list(net.layers), list(net.synaptic)))  # convs stay channels-last

    def forward(x: torch.Tensor) -> torch.Tensor:
        first = stages[0](x.contiguous(memory_format=torch.channels_last))
        b, c, height, width = first.shape
        # T copies of the first layer's output, stored NHWC in one copy (as the engine's spikes are)
        h = first.unsqueeze(0).expand(timesteps, b, c, height, width).permute(0, 1, 3, 4, 2)
        h = h.reshape(timesteps * b, height, width, c).permute(0, 3, 1, 2)
        for stage in stages[1:]:
            h = stage(h)
        return h.view(timesteps, -1, h.shape[-1]).mean(0)

    return list(stages.parameters()), forward


def _layers_and_thresholds() -> tuple:
    """Plain NCHW copies of the checkpoint's layers, as a library user builds them, and its thresholds."""
    import torch
    from torch import nn

    from spikebench.spiking import load_snn

    net, _ = load_snn(MODEL_PATH)
    layers = [layer for layer in net.layers]
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            layer.to(memory_format=torch.contiguous_format)
    return layers, [float(t) for t in net.thresholds], list(net.synaptic)


def _stages(layers: list, synaptic: list[int]) -> list:
    """The layers grouped into synaptic stages: each synaptic layer with the pooling/flatten layers before it."""
    from torch import nn

    stages, pending = [], []
    for index, layer in enumerate(layers):
        pending.append(layer)
        if index in synaptic:
            stages.append(nn.Sequential(*pending))
            pending = []
    return stages


def _snntorch(timesteps: int, compiled: bool) -> tuple[list, Callable]:
    import snntorch as snn
    import torch
    from snntorch import surrogate
    from torch import nn

    layers, thresholds, synaptic = _layers_and_thresholds()
    stages = nn.ModuleList(_stages(layers, synaptic))
    neurons = nn.ModuleList(snn.Leaky(beta=1.0, threshold=t, spike_grad=surrogate.atan(alpha=2.0), reset_mechanism="subtract")
                            for t in thresholds)

    def forward(x: torch.Tensor) -> torch.Tensor:
        first = stages[0](x)  # constant analog current, computed once
        mems = [torch.zeros_like(first)] + [None] * (len(neurons) - 1)
        out = 0.0
        for _ in range(timesteps):
            h = first
            for k, neuron in enumerate(neurons):
                if k:
                    h = stages[k](h)
                    if mems[k] is None:
                        mems[k] = torch.zeros_like(h)
                h, mems[k] = neuron(h, mems[k])
            out = out + stages[-1](h)
        return out / timesteps

    module = nn.ModuleList([stages, neurons])
    return list(module.parameters()), (torch.compile(forward) if compiled else forward)


def _spikingjelly(timesteps: int, compiled: bool) -> tuple[list, Callable]:
    import torch
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from torch import nn

    layers, thresholds, synaptic = _layers_and_thresholds()
    stages = _stages(layers, synaptic)
    seq: list[nn.Module] = []
    for k, threshold in enumerate(thresholds):
        if k:
            seq.append(layer.SeqToANNContainer(stages[k]))
        seq.append(neuron.IFNode(v_threshold=threshold, v_reset=None, surrogate_function=surrogate.ATan(alpha=2.0),
                                 step_mode="m"))
    seq.append(layer.SeqToANNContainer(stages[-1]))
    body = nn.Sequential(*seq)
    static = stages[0]

    def forward(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(body)
        x_seq = static(x).unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)  # the tutorial's static conv, repeated over T
        return body(x_seq).mean(0)

    module = nn.ModuleList([static, body])
    return list(module.parameters()), (torch.compile(forward) if compiled else forward)


def _norse(timesteps: int) -> tuple[list, Callable]:
    import torch
    from norse.torch import IAFCell, IAFParameters
    from torch import nn

    layers, thresholds, synaptic = _layers_and_thresholds()
    stages = nn.ModuleList(_stages(layers, synaptic))
    # SuperSpike with the engine's fast_sigmoid alpha; reset to 0 (norse's IAF has no soft reset)
    cells = nn.ModuleList(IAFCell(p=IAFParameters(v_th=torch.as_tensor(t), v_reset=torch.as_tensor(0.0), method="super",
                                                   alpha=torch.as_tensor(2.0))) for t in thresholds)

    def forward(x: torch.Tensor) -> torch.Tensor:
        first = stages[0](x)
        states = [None] * len(cells)
        out = 0.0
        for _ in range(timesteps):
            h = first
            for k, cell in enumerate(cells):
                if k:
                    h = stages[k](h)
                h, states[k] = cell(h, states[k])
            out = out + stages[-1](h)
        return out / timesteps

    module = nn.ModuleList([stages, cells])
    return list(module.parameters()), forward


def build_form(form: str, timesteps: int) -> tuple[list, Callable]:
    """(parameters, forward(x) -> logits) of one form."""
    if form in ENGINE_FORMS:
        return _engine(form, timesteps, "subtract")
    if form.startswith("snntorch"):
        return _snntorch(timesteps, compiled=form.endswith("compiled"))
    if form.startswith("spikingjelly"):
        return _spikingjelly(timesteps, compiled=form.endswith("compiled"))
    if form == "norse_step":
        return _norse(timesteps)
    if form == "synaptic_floor":
        return _synaptic_floor(timesteps)
    raise ValueError(f"unknown form {form!r}; one of {', '.join(FORMS)}")


def _worker(form: str, timesteps: int, batch: int, retain: bool, conn) -> None:
    """One form in its own process: answers 'check', 'step' and 'memory' requests."""
    try:
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.getcwd(), ".mplconfig"))
        import torch

        from spikebench.data import load_prepared
        from spikebench.multistep import retain_freed_memory

        torch.manual_seed(0)
        data = load_prepared()
        x, y = data.test[0][:batch].contiguous(), data.test[1][:batch].contiguous()
        params, forward = build_form(form, timesteps)
        params = [p for p in params if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=1e-4)
        with torch.no_grad():
            logits = forward(x)
        check = {"loss": float(torch.nn.functional.cross_entropy(logits, y)), "predictions": logits.argmax(-1).tolist()}
        del logits
        if retain:  # only now: memory freed during set-up and the check went back to the OS, not into the baseline
            retain_freed_memory()
        baseline = _rss_mb()

        def step() -> float:
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(forward(x), y)
            loss.backward()
            optimizer.step()
            return time.perf_counter() - started

        conn.send(("ready", check))
        while True:
            request = conn.recv()
            if request == "step":
                conn.send(("step", step()))
            elif request == "memory":
                conn.send(("memory", {"peak_rss_mb": round(_peak_rss_mb(), 1), "rss_before_first_step_mb": round(baseline, 1),
                                      "step_peak_rss_mb": round(_peak_rss_mb() - baseline, 1)}))
            else:
                break
    except Exception:  # report, not hang the parent
        conn.send(("error", traceback.format_exc(limit=4)))


def _engine_reference(timesteps: int, batch: int, reset: str) -> dict:
    import torch

    from spikebench.data import load_prepared
    from spikebench.spiking import load_snn

    net, _ = load_snn(MODEL_PATH)
    net.reset = reset
    data = load_prepared()
    x, y = data.test[0][:batch], data.test[1][:batch]
    with torch.no_grad():
        logits = net(x, timesteps).membrane[-1] / timesteps
    return {"loss": float(torch.nn.functional.cross_entropy(logits, y)), "predictions": logits.argmax(-1).tolist()}


def run_timesteps(timesteps: int, forms: list[str], batch: int, repeats: int, allocator: str) -> dict:
    """Interleaved timing of `forms` at one T; returns medians, samples, checks and memory."""
    context = mp.get_context("spawn")
    workers, dropped = {}, {}
    for form in forms:
        parent, child = context.Pipe()
        retain = allocator == "retain-all" or (allocator == "retain-engine" and form in ENGINE_FORMS)
        process = context.Process(target=_worker, args=(form, timesteps, batch, retain, child), daemon=True)
        process.start()
        workers[form] = (process, parent)
    references = {reset: _engine_reference(timesteps, batch, reset) for reset in ("subtract", "zero")}
    checks = {}
    for form, (process, conn) in list(workers.items()):
        kind, payload = conn.recv()
        if kind == "error":
            dropped[form] = payload.strip().splitlines()[-1]
            process.join(5)
            del workers[form]
            continue
        if form == "synaptic_floor":  # no neurons: a different function by design, nothing to check
            continue
        reference = references["zero" if form == "norse_step" else "subtract"]
        agree = sum(a == b for a, b in zip(payload["predictions"], reference["predictions"], strict=True)) / batch
        checks[form] = {"loss": round(payload["loss"], 6), "engine_loss": round(reference["loss"], 6),
                        "prediction_agreement": agree, "reference_reset": "zero" if form == "norse_step" else "subtract"}
        if agree < 0.99 or abs(payload["loss"] - reference["loss"]) > 1e-3 * max(1.0, abs(reference["loss"])):
            raise SystemExit(f"{form} at T={timesteps} does not compute the engine's network: {checks[form]}")
    samples: dict[str, list[float]] = {form: [] for form in workers}
    # warm-up: two steps each (allocator, oneDNN primitive caches; torch.compile compiles here)
    for form, (_process, conn) in list(workers.items()):
        for _ in range(2):
            conn.send("step")
            kind, payload = conn.recv()
            if kind == "error" or (kind == "step" and form.endswith("compiled") and payload > COMPILE_BUDGET_S):
                dropped[form] = payload.strip().splitlines()[-1] if kind == "error" else f"compile step took {payload:.0f} s"
                conn.send("stop")
                del workers[form], samples[form]
                break
    names = list(workers)
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for form in order:
            conn = workers[form][1]
            conn.send("step")
            kind, payload = conn.recv()
            samples[form].append(payload)
    memory = {}
    for form, (process, conn) in workers.items():
        conn.send("memory")
        memory[form] = conn.recv()[1]
        conn.send("stop")
        process.join(10)
    medians = {form: statistics.median(values) for form, values in samples.items()}
    images = {form: round(batch / seconds, 1) for form, seconds in medians.items()}
    peers = {form: v for form, v in images.items() if form not in NOT_PEERS}
    fastest = max(peers, key=peers.get) if peers else None
    result = {"images_per_second": images, "checks": checks, "memory": memory, "dropped": dropped,
              "samples_seconds": {form: [round(s, 4) for s in values] for form, values in samples.items()}}
    if fastest is not None:
        result["fastest_peer"] = fastest
        result["speedup_vs_fastest_peer"] = {form: round(images[form] / peers[fastest], 3) for form in ENGINE_FORMS if form in images}
        result["step_peak_rss_vs_fastest_peer"] = {
            form: round(memory[form]["step_peak_rss_mb"] / max(memory[fastest]["step_peak_rss_mb"], 1e-9), 3)
            for form in ENGINE_FORMS if form in memory}
    if "synaptic_floor" in images and fastest is not None:
        # the most any form can gain over the fastest peer if its neurons cost nothing
        result["speedup_ceiling_vs_fastest_peer"] = round(images["synaptic_floor"] / peers[fastest], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--forms", nargs="+", default=[f for f in FORMS if f not in OPTIONAL_FORMS], choices=FORMS)
    parser.add_argument("--allocator", default="retain-all", choices=ALLOCATORS,
                        help="retain-all: every form's process keeps freed memory (multistep.retain_freed_memory, as "
                             "train_snn does); retain-engine: only the engine's; default: glibc's defaults for all")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results.json alone")
    args = parser.parse_args()
    import torch

    load_before = _load_average()
    started = time.perf_counter()
    training = {f"T{t}": run_timesteps(t, args.forms, args.batch, args.repeats, args.allocator) for t in args.timesteps}
    training["conditions"] = {
        "batch": args.batch, "repeats": args.repeats, "allocator": args.allocator, "model": MODEL_PATH, "optimizer": "Adam(lr=1e-4)",
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "python": sys.version.split()[0], "load_average_before": load_before,
        "load_average_after": _load_average(), "wall_seconds": round(time.perf_counter() - started, 1),
        "command": "python -m benchmarks.training_throughput " + " ".join(sys.argv[1:]),
        "memory_method": "per-form worker process: resource.getrusage ru_maxrss; step_peak = that minus RSS just before the first step",
        "note": "wall-clock images/s of one training step (forward+backward+Adam) on a shared 2-core machine; "
                "medians of interleaved repetitions; every form in its own process",
    }
    for key, value in training.items():
        if key != "conditions":
            print(f"{key}: images/s {value['images_per_second']}")
            print(f"  fastest peer {value.get('fastest_peer')}; engine / fastest {value.get('speedup_vs_fastest_peer')}; "
                  f"step peak RSS vs fastest {value.get('step_peak_rss_vs_fastest_peer')}")
            print(f"  memory {json.dumps(value['memory'])}")
            if value["dropped"]:
                print(f"  dropped {value['dropped']}")
    print(f"load average before {load_before}, after {training['conditions']['load_average_after']}; "
          f"{training['conditions']['wall_seconds']} s")
    if not args.no_write:
        from spikebench.io import atomic_write_json

        results = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
        results["training" if args.allocator == "retain-all" else f"training_allocator_{args.allocator}"] = training
        atomic_write_json(RESULTS_PATH, results)


if __name__ == "__main__":
    main()
