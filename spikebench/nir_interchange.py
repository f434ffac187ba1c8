"""NIR interchange: our SNN checkpoints as NIR graphs, and back in through snntorch.

`to_nir` writes the contract network (conv / avg-pool / flatten / linear, IF neurons with
per-layer thresholds, analog input, membrane read-out) as a spec-correct NIR graph:
each synaptic layer is a `Conv2d` or `Affine` node, each hidden neuron layer an `IF`
node (r = 1, reset by subtraction is NIR's IF semantics), and the output layer is the
last `Affine` with no neuron: its per-step outputs summed over T are our accumulated
output membrane (the graph's metadata says so).

`snntorch_from_nir` re-imports a graph with snntorch 1.0.0's own NIR node builders for
Conv2d, Affine and AvgPool2d, run by nirtorch's graph interpreter (as
`snntorch.import_nir.import_from_nir` does). Two of snntorch 1.0.0's node builders do
not follow the NIR spec, so their nodes are built here instead, and the docstrings of
`_snntorch_if` and `_snntorch_flatten` say why.
"""

from __future__ import annotations

import io
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from spikebench.errors import ModelError
from spikebench.io import atomic_write_bytes
from spikebench.spiking import SpikingNetwork

READOUT = "sum over timesteps of the output node's values = the accumulated output membrane; argmax = class"


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def to_nir(net: SpikingNetwork, input_shape: tuple[int, ...], timesteps: int) -> nir.NIRGraph:
    """The NIR graph of `net` for inputs of `input_shape` (C, H, W or features), simulated for `timesteps` steps."""
    if any(abs(float(leak) - 1.0) > 0 for leak in net.leaks):
        raise ModelError(f"NIR export: leaks {[float(v) for v in net.leaks]}: only integrate-and-fire layers (leak 1) are exported")
    if net.reset != "subtract":
        raise ModelError(f"NIR export: reset {net.reset!r}: NIR's IF resets by subtraction; export a reset-by-subtraction SNN")
    if net.v_init:
        raise ModelError(f"NIR export: v_init {net.v_init} has no NIR equivalent (IF starts at 0)")
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    previous = "input"
    x = torch.zeros(1, *input_shape)
    thresholds = [float(t) for t in net.thresholds.detach()]
    for index, (spec, layer) in enumerate(zip(net.specs, net.layers, strict=True)):
        name = f"layer{index}"
        kind = spec["type"]
        if kind == "conv":
            bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels)
            nodes[name] = nir.Conv2d(input_shape=tuple(x.shape[-2:]), weight=_array(layer.weight), stride=layer.stride,
                                     padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=_array(bias))
        elif kind == "linear":
            bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
            nodes[name] = nir.Affine(weight=_array(layer.weight), bias=_array(bias))
        elif kind == "avgpool":
            k = int(spec["kernel_size"])
            nodes[name] = nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))
        elif kind == "flatten":
            # NIR types carry no batch dimension: flatten everything
            nodes[name] = nir.Flatten(input_type={"input": np.array(x.shape[1:])}, start_dim=0, end_dim=-1)
        else:
            raise ModelError(f"NIR export: layer {index} type {kind!r} unsupported")
        edges.append((previous, name))
        previous = name
        with torch.no_grad():
            x = layer(x)
        if index in net.synaptic[:-1]:
            k = net.synaptic.index(index)
            neuron = f"neuron{index}"
            shape = tuple(x.shape[1:])
            nodes[neuron] = nir.IF(r=np.ones(shape, np.float32), v_threshold=np.full(shape, thresholds[k], np.float32))
            edges.append((previous, neuron))
            previous = neuron
    nodes["output"] = nir.Output(output_type={"output": np.array(x.shape[1:])})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"timesteps": int(timesteps), "input": "analog, the same every step",
                                                            "readout": READOUT})


def write_graph(graph: nir.NIRGraph, path: str | Path) -> None:
    """Write `graph` to a NIR (HDF5) file atomically: a reader never sees half a file."""
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    atomic_write_bytes(path, buffer.getvalue())


def read_graph(path: str | Path) -> nir.NIRGraph:
    try:
        return nir.read(str(path))
    except (OSError, KeyError, ValueError) as err:
        raise ModelError(f"{path}: not a readable NIR file ({type(err).__name__}); re-run the nir stage") from None


def _snntorch_if(node: nir.IF) -> nn.Module:
    """snntorch IF. snntorch 1.0.0's builder makes `Leaky(beta=0.9, init_hidden=False)`: a leaky
    neuron (not IF) returning a (spikes, membrane) tuple the next node cannot take. This is
    the IF it should build: beta 1, subtractive reset, state kept inside (init_hidden)."""
    import snntorch as snn

    thresholds = np.unique(node.v_threshold)
    if thresholds.size != 1 or not np.allclose(node.r, 1.0):
        raise ModelError("NIR import: snntorch needs one threshold per IF layer and r = 1")
    return snn.Leaky(beta=1.0, threshold=float(thresholds[0]), reset_mechanism="subtract", init_hidden=True)


def _snntorch_flatten(node: nir.Flatten) -> nn.Module:
    """snntorch 1.0.0 passes NIR's batch-free dims to torch unchanged (Flatten(0, -1) would merge
    the batch); its own exporter subtracts one. Shift by one for the batch dimension."""
    start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
    end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
    return nn.Flatten(start, end)


def snntorch_from_nir(graph: nir.NIRGraph) -> torch.fx.GraphModule:
    """A torch module (snntorch neurons) that runs `graph` one timestep per call."""
    import nirtorch
    from snntorch.import_nir import _nir_to_snntorch_module

    node_map = {
        nir.Conv2d: _nir_to_snntorch_module,
        nir.Affine: _nir_to_snntorch_module,
        nir.AvgPool2d: _nir_to_snntorch_module,
        nir.Flatten: _snntorch_flatten,
        nir.IF: _snntorch_if,
    }
    unsupported = sorted({type(n).__name__ for n in graph.nodes.values()} - {c.__name__ for c in node_map} - {"Input", "Output"})
    if unsupported:
        raise ModelError(f"NIR import: node types {unsupported} have no snntorch equivalent here")
    return nirtorch.nir_to_torch(graph, node_map)


def imported_membrane(module: torch.fx.GraphModule, x: torch.Tensor, timesteps: int, batch_size: int = 500) -> torch.Tensor:
    """Run the imported graph for `timesteps` steps on each batch of `x`: the accumulated output (B, classes)."""
    from snntorch import utils as snn_utils

    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            snn_utils.reset(module)  # fresh membrane state per batch
            total = None
            for _ in range(timesteps):
                out, _state = module(batch)
                total = out.clone() if total is None else total + out
            outputs.append(total)
    return torch.cat(outputs)
