"""Cross-check of our synaptic-operation counts against NeuroBench's definitions (not a test).

neurobench 2.3.0 installs beside torch 2.13 CPU, but it is not a project dependency, so it
runs in a scratch venv and this script has two halves:

    .venv/bin/python -m benchmarks.neurobench_crosscheck export    # our counts + the spike tensors
    python3 -m venv /tmp/nbvenv && /tmp/nbvenv/bin/pip install torch==2.13.0 neurobench
    /tmp/nbvenv/bin/python benchmarks/neurobench_crosscheck.py check   # NeuroBench's counts

`export` simulates two small SNNs in the engine (a conv-conv-linear-linear network with
some zero weights, without pooling; and the same with an average pool) and stores each
synaptic layer's input per step. `check` feeds those inputs to
neurobench.metrics.utils.layers.single_layer_MACs layer by layer and writes both counts
to benchmarks/neurobench_crosscheck.json. Without pooling the inputs of the spiking layers
are binary and NeuroBench's effective ACs must equal our SOPs; with pooling NeuroBench
sees non-binary (pooled) inputs and counts one effective MAC per non-zero pooled value,
which is at most our per-spike count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

EXPORT_PATH = Path("/tmp/neurobench_crosscheck.pt")
RESULT_PATH = Path("benchmarks/neurobench_crosscheck.json")


def _layers(pool: bool) -> list[dict]:
    conv2_in = 4
    side = 4 if pool else 8
    layers = [{"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True}]
    if pool:
        layers.append({"type": "avgpool", "kernel_size": 2})
    layers += [
        {"type": "conv", "in_channels": conv2_in, "out_channels": 6, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
        {"type": "flatten"},
        {"type": "linear", "in_features": 6 * side * side, "out_features": 16, "bias": True},
        {"type": "linear", "in_features": 16, "out_features": 5, "bias": True},
    ]
    return layers


def export() -> None:
    from spikebench.energy import fanout_maps
    from spikebench.spiking import SpikingNetwork

    blob = {}
    for pool in (False, True):
        torch.manual_seed(0)
        net = SpikingNetwork(_layers(pool), [0.5, 0.5, 0.5, None]).eval()
        with torch.no_grad():
            for layer in net.layers:
                if hasattr(layer, "weight"):
                    layer.weight.mul_(3.0)
                    layer.weight.masked_fill_(torch.rand_like(layer.weight) < 0.3, 0.0)  # connection sparsity
        x = torch.rand(16, 1, 8, 8)
        inputs: dict[int, list[torch.Tensor]] = {}

        def grab(k: int, spikes: torch.Tensor, net=net, inputs=inputs) -> None:
            h = spikes.flatten(0, 1)
            for follower in net.layers[net.synaptic[k] + 1 : net.synaptic[k + 1]]:
                h = follower(h)
            inputs.setdefault(k + 1, []).append(h.clone())

        with torch.no_grad():
            result = net(x, 10, fanouts=fanout_maps(net, (1, 8, 8)), spike_hook=grab)
        blob["pool" if pool else "no_pool"] = {
            "specs": net.specs, "state": {k: v.contiguous() for k, v in net.state_dict().items() if k.startswith("layers.")},
            "synaptic": net.synaptic, "images": len(x),
            "layer_inputs": {k: torch.cat(v) for k, v in inputs.items()},
            "our_synops_per_layer": [float(s.sum()) / len(x) for s in result.synops_per_step],
        }
    torch.save(blob, EXPORT_PATH)
    print(f"wrote {EXPORT_PATH}")


def check() -> None:
    from neurobench.metrics.utils.layers import single_layer_MACs
    from torch import nn

    blob = torch.load(EXPORT_PATH, weights_only=True)  # plain tensors, lists and dicts only
    report = {}
    for name, item in blob.items():
        modules = {}
        for index in item["synaptic"]:
            spec = item["specs"][index]
            module = (nn.Conv2d(spec["in_channels"], spec["out_channels"], spec["kernel_size"], spec["stride"], spec["padding"])
                      if spec["type"] == "conv" else nn.Linear(spec["in_features"], spec["out_features"]))
            module.weight.data = item["state"][f"layers.{index}.weight"]
            module.bias.data = item["state"][f"layers.{index}.bias"]
            modules[index] = module
        neurobench = []
        for k, inputs in sorted(item["layer_inputs"].items()):
            ops, spiking = single_layer_MACs(inputs, modules[item["synaptic"][k]])
            neurobench.append({"layer": item["synaptic"][k], "ops_per_image": ops / item["images"], "binary_input": bool(spiking)})
        report[name] = {"our_synops_per_layer": item["our_synops_per_layer"], "neurobench": neurobench}
    import neurobench as nb

    report["neurobench_version"] = getattr(nb, "__version__", "2.3.0")
    RESULT_PATH.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    {"export": export, "check": check}[sys.argv[1]]()
