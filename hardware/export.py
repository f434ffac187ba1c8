"""SNN checkpoint -> integer network -> accelerator memory images.

`quantise` maps a checkpoint that follows the SNN contract (spikebench.io) onto the
integer arithmetic of the accelerator and refuses, with a one-line `ModelError`
naming the layer, anything the hardware cannot run. `write_memory_images` packs the
integer network into the `$readmemh` files and the layer-descriptor table that the
RTL loads (format: hardware/README.md).

Integer mapping, per synaptic layer l (input unit: 1/255 for the analog first layer,
one spike otherwise):
  * weights: k-bit signed, w = round(W / s_l) with s_l = max|W| / (2**(k-1) - 1), or the
    checkpoint's own scale when it is already quantised (`weight_scales`).
  * an average pool in front of the layer is folded in: the hardware adds the weight
    once per pre-pool event (a sum pool), so the layer's current unit is
    u_l = s_l * input_unit / pool_area, and threshold and bias are expressed in it:
    thr_l = round(threshold / u_l), b_l = round(bias / u_l).
  * the analog first layer: 8-bit pixels x weights, computed once per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.config import (
    CHANNEL_BITS,
    COORD_BITS,
    DESCRIPTOR_BITS,
    OFFSET_BITS,
    ROW_COUNT_BITS,
    HardwareConfig,
)
from spikebench.errors import ModelError
from spikebench.io import atomic_write_json, atomic_write_text, load_checkpoint

SUPPORTED_TYPES = ("conv", "linear", "avgpool", "flatten")
MEMORY_FILES = {"desc": "desc.hex", "ptr": "ptr.hex", "wmem": "wmem.hex", "bias": "bias.hex"}


@dataclass
class IntLayer:
    """One synaptic layer in integer form, with the shapes the hardware walks."""

    name: str                      # e.g. "layers.3 (conv)", used in error messages
    kind: str                      # "conv" | "fc"
    weight: np.ndarray             # int64: conv (Cout, Cin, K, K), fc (Nout, Nin)
    bias: np.ndarray               # int64 (Cout,) or (Nout,)
    threshold: int | None          # None for the output layer
    pool: int                      # average-pool kernel folded in front (1 = none)
    padding: int
    in_shape: tuple[int, int, int]   # events entering the layer, before the pool (C, H, W)
    out_shape: tuple[int, int, int]  # (C, OH, OW); fc: (N, 1, 1)
    scale: float                   # float current per integer unit

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return c, h // self.pool, w // self.pool


@dataclass
class IntNetwork:
    layers: list[IntLayer]
    timesteps: int
    reset: str                     # "subtract" | "zero"
    input_shape: tuple[int, int, int]
    num_classes: int
    config: HardwareConfig
    meta: dict = field(default_factory=dict)

    @property
    def v_min(self) -> int:
        return -(2 ** (self.config.membrane_bits - 1))

    @property
    def v_max(self) -> int:
        return 2 ** (self.config.membrane_bits - 1) - 1


def _fail(name: str, problem: str) -> ModelError:
    return ModelError(f"{name}: {problem}")


def _quantise_weights(name: str, weight: np.ndarray, bits: int, checkpoint_scale: float | None) -> tuple[np.ndarray, float]:
    limit = 2 ** (bits - 1) - 1
    if not np.isfinite(weight).all():
        raise _fail(name, "weights contain NaN or inf; the checkpoint is corrupt: retrain or re-export it")
    if checkpoint_scale is not None and not (np.isfinite(checkpoint_scale) and checkpoint_scale > 0):
        raise _fail(name, f"weight_scales entry {checkpoint_scale} must be a positive number")
    if checkpoint_scale is not None:
        scaled = weight / checkpoint_scale
        ints = np.rint(scaled)
        if np.abs(scaled - ints).max(initial=0.0) > 1e-3:
            raise _fail(name, f"weights are not integer multiples of weight_scales ({checkpoint_scale:g}); re-export the quantised checkpoint")
        if np.abs(ints).max(initial=0) > limit:
            raise _fail(name, f"weights reach {int(np.abs(ints).max())}, overflowing {bits}-bit signed (max {limit}); "
                              f"raise hardware.weight_bits or quantise the model to {bits} bits")
        return ints.astype(np.int64), float(checkpoint_scale)
    peak = float(np.abs(weight).max(initial=0.0))
    scale = peak / limit if peak > 0 else 1.0
    return np.clip(np.rint(weight / scale), -limit, limit).astype(np.int64), scale


def _check_meta(meta: dict, timesteps: int | None) -> tuple[str, int]:
    """The checkpoint's reset rule and T, or a one-line error for what the core cannot run."""
    if meta.get("kind") != "snn":
        raise ModelError(f"checkpoint kind {meta.get('kind')!r} is not an SNN; select a spiking model (kind 'snn')")
    if meta.get("input", "analog") != "analog" or meta.get("output", "membrane") != "membrane":
        raise ModelError("checkpoint: the accelerator needs analog input and membrane output (meta input/output)")
    reset = meta.get("reset", "subtract")
    if reset not in ("subtract", "zero"):
        raise ModelError(f"checkpoint: reset {reset!r} unsupported; the accelerator implements subtract and zero")
    if float(meta.get("v_init", 0.0)) != 0.0:
        raise ModelError(f"checkpoint: v_init {meta['v_init']} unsupported; the accelerator starts every membrane at 0")
    steps = int(timesteps if timesteps is not None else meta["timesteps"])
    if steps < 1 or steps >= 2**16:
        raise ModelError(f"checkpoint: timesteps {steps} outside 1..65535")
    return reset, steps


def _check_neuron_params(meta: dict, thresholds: list, leaks: list) -> None:
    """One threshold and one leak per conv/linear layer."""
    n_synaptic = sum(spec.get("type") in ("conv", "linear") for spec in meta["layers"])
    if len(thresholds) != n_synaptic or len(leaks) != n_synaptic:
        raise ModelError(f"checkpoint: {len(thresholds)} thresholds and {len(leaks)} leaks for {n_synaptic} conv/linear layers; "
                         "the contract needs one of each per layer")


def _synaptic_layers(meta: dict) -> list[int]:
    """Indices of the conv/linear layers (at least one)."""
    synaptic = [i for i, spec in enumerate(meta["layers"]) if spec["type"] in ("conv", "linear")]
    if not synaptic:
        raise ModelError("checkpoint: no conv or linear layer to map")
    return synaptic


def _pool_kernel(name: str, spec: dict, after_output: bool, pending_pool: int, flattened: bool, shape: tuple) -> int:
    """The kernel of an average pool to fold into the next layer, or a one-line error."""
    k = int(spec["kernel_size"])
    if after_output:
        raise _fail(name, "an average pool after the output layer cannot be mapped; remove it")
    if pending_pool != 1:
        raise _fail(name, "consecutive average pools are not supported; merge them into one")
    if flattened:
        raise _fail(name, "average pool after flatten is not supported")
    if k < 2 or k & (k - 1) or k > 8:
        raise _fail(name, f"pool kernel {k} unsupported; the folded pool needs a power of two up to 8")
    if shape[1] % k or shape[2] % k:
        raise _fail(name, f"pool kernel {k} does not divide the {shape[1]}x{shape[2]} input")
    return k


def _layer_tensors(name: str, index: int, spec: dict, kind: str, state_dict: dict) -> tuple[np.ndarray, np.ndarray]:
    """The float weight and bias of a synaptic layer, checked against its spec."""
    weight = state_dict[f"layers.{index}.weight"].detach().cpu().double().numpy()
    bias_f = state_dict[f"layers.{index}.bias"].detach().cpu().double().numpy() if spec.get("bias") else np.zeros(weight.shape[0])
    if kind == "conv":
        expected = (int(spec["out_channels"]), int(spec["in_channels"]), int(spec["kernel_size"]), int(spec["kernel_size"]))
    else:
        expected = (int(spec["out_features"]), int(spec["in_features"]))
    if weight.shape != expected or bias_f.shape != expected[:1]:
        raise _fail(name, f"weight {weight.shape} / bias {bias_f.shape} do not match the layer spec {expected}; the checkpoint is inconsistent")
    if not np.isfinite(bias_f).all():
        raise _fail(name, "bias contains NaN or inf; the checkpoint is corrupt: retrain or re-export it")
    return weight, bias_f


def _output_shape(name: str, kind: str, spec: dict, pooled: tuple[int, int, int], flattened: bool) -> tuple[tuple[int, int, int], int]:
    """(output shape, padding) of a conv or linear layer on its pooled input, or a one-line error."""
    c, h, w = pooled
    if kind == "conv":
        if flattened:
            raise _fail(name, "convolution after flatten cannot be mapped")
        if int(spec.get("stride", 1)) != 1:
            raise _fail(name, f"stride {spec['stride']} unsupported; the accelerator's address generator handles stride 1")
        kk, pad = int(spec["kernel_size"]), int(spec.get("padding", 0))
        if int(spec["in_channels"]) != c:
            raise _fail(name, f"expects {spec['in_channels']} input channels, the previous layer gives {c}")
        lo, hi = -(2 ** (OFFSET_BITS - 1)), 2 ** (OFFSET_BITS - 1) - 1
        if pad - (kk - 1) < lo or pad > hi:
            raise _fail(name, f"kernel {kk} with padding {pad} exceeds the {OFFSET_BITS}-bit footprint offsets")
        out = (int(spec["out_channels"]), h + 2 * pad - kk + 1, w + 2 * pad - kk + 1)
        if out[1] < 1 or out[2] < 1:
            raise _fail(name, f"kernel {kk} larger than its {h}x{w} input")
        return out, pad
    n_in = c * h * w
    if not flattened and (h, w) != (1, 1):
        raise _fail(name, "linear layer on a spatial input needs a flatten layer before it")
    if int(spec["in_features"]) != n_in:
        raise _fail(name, f"expects {spec['in_features']} inputs, the previous layer gives {n_in}")
    return (int(spec["out_features"]), 1, 1), 0


def _integer_threshold(name: str, threshold: float | None, unit: float, config: HardwareConfig) -> int:
    """A spiking layer's threshold in its current unit, or a one-line error if it does not fit."""
    if threshold is None or float(threshold) <= 0:
        raise _fail(name, f"threshold {threshold} must be a positive number for a spiking layer")
    value = int(round(float(threshold) / unit))
    if not 1 <= value <= 2 ** (config.membrane_bits - 1) - 1:
        raise _fail(name, f"integer threshold {value} does not fit {config.membrane_bits}-bit membranes; "
                          "raise hardware.membrane_bits or lower hardware.weight_bits")
    return value


@dataclass
class _Walk:
    """Where the layer walk of `quantise` stands: the shape entering the next layer and what is folded into it."""

    shape: tuple[int, int, int]
    pending_pool: int = 1
    flattened: bool = False
    first: bool = True


def _synaptic_layer(walk: _Walk, index: int, spec: dict, neuron: tuple[float | None, float], last: bool, state_dict: dict,
                    config: HardwareConfig, scales: list | None, j: int) -> IntLayer:
    """One conv/linear layer in integer form (the walk's pending pool folded in)."""
    kind = spec["type"]
    name = f"layers.{index} ({kind})"
    threshold_f, leak = neuron[0], float(neuron[1])
    if leak != 1.0:
        raise _fail(name, f"leak {leak} unsupported; the accelerator implements integrate-and-fire (leak 1.0)")
    weight, bias_f = _layer_tensors(name, index, spec, kind, state_dict)
    scale_ckpt = float(scales[j]) if scales is not None else None
    w_int, s_w = _quantise_weights(name, weight, config.weight_bits, scale_ckpt)
    pool = walk.pending_pool
    pooled = (walk.shape[0], walk.shape[1] // pool, walk.shape[2] // pool)
    out, pad = _output_shape(name, kind, spec, pooled, walk.flattened)
    unit = s_w * (1.0 / 255.0 if walk.first else 1.0) / (pool * pool)
    threshold = None if last else _integer_threshold(name, threshold_f, unit, config)
    return IntLayer(name=name, kind="conv" if kind == "conv" else "fc", weight=w_int, bias=np.rint(bias_f / unit).astype(np.int64),
                    threshold=threshold, pool=pool, padding=pad, in_shape=walk.shape, out_shape=out, scale=unit)


def quantise(state_dict: dict, meta: dict, config: HardwareConfig, timesteps: int | None = None) -> IntNetwork:
    """Integer network for `config` from a contract checkpoint; ModelError if unmappable."""
    reset, steps = _check_meta(meta, timesteps)
    thresholds, leaks = list(meta["thresholds"]), list(meta["leaks"])
    k_ckpt = int(meta.get("weight_bits", 32))
    scales = meta.get("weight_scales") if k_ckpt < 32 else None
    _check_neuron_params(meta, thresholds, leaks)
    walk = _Walk(tuple(int(v) for v in meta["input_shape"]))
    synaptic = _synaptic_layers(meta)
    layers: list[IntLayer] = []
    for index, spec in enumerate(meta["layers"]):
        kind = spec.get("type")
        name = f"layers.{index} ({kind})"
        if kind not in SUPPORTED_TYPES:
            raise _fail(name, f"layer type {kind!r} is not supported by the accelerator (conv, linear, avgpool, flatten only)")
        if kind == "avgpool":
            walk.pending_pool = _pool_kernel(name, spec, index > synaptic[-1], walk.pending_pool, walk.flattened, walk.shape)
        elif kind == "flatten":
            walk.flattened = True
        else:
            j = synaptic.index(index)
            layer = _synaptic_layer(walk, index, spec, (thresholds[j], leaks[j]), index == synaptic[-1], state_dict, config, scales, j)
            layers.append(layer)
            walk = _Walk(layer.out_shape, flattened=walk.flattened, first=False)
    net = IntNetwork(layers, steps, reset, tuple(int(v) for v in meta["input_shape"]), int(meta["num_classes"]), config, meta)
    check_capacity(net)
    return net


def max_current(layer: IntLayer, first: bool) -> int:
    """Worst-case |current| one timestep can add to a neuron (all inputs active)."""
    fan = np.abs(layer.weight).reshape(layer.weight.shape[0], -1).sum(axis=1).max(initial=0)
    return int(fan) * layer.pool * layer.pool * (255 if first else 1)


def fire_words(layer: IntLayer, lanes: int) -> int:
    """Membrane words one lane holds for this layer."""
    c, oh, ow = layer.out_shape
    return math.ceil(c / lanes) * oh * ow


def check_capacity(net: IntNetwork) -> None:
    """Refuse a network that does not fit the hardware parameters (one line, naming the layer)."""
    cfg = net.config
    total_words = 0
    acc_limit = 2 ** (cfg.acc_bits - 1) - 1
    if len(net.layers) > 2**cfg.layer_addr_bits:
        raise ModelError(f"checkpoint: {len(net.layers)} synaptic layers exceed the hardware's {2**cfg.layer_addr_bits}; "
                         "raise hardware.layer_addr_bits")
    c0, h0, w0 = net.input_shape
    if c0 * h0 * w0 > 2**cfg.input_addr_bits:
        raise ModelError(f"input {c0}x{h0}x{w0} exceeds the {2**cfg.input_addr_bits}-entry input queue; raise hardware.input_addr_bits")
    for i, layer in enumerate(net.layers):
        c, oh, ow = layer.out_shape
        words = fire_words(layer, cfg.lanes)
        total_words += words
        if total_words > 2**cfg.bank_addr_bits:
            raise _fail(layer.name, f"too many neurons: the layers up to here need {total_words} words per lane, the hardware has "
                                    f"{2**cfg.bank_addr_bits}; raise hardware.bank_addr_bits or hardware.lanes")
        if max(c, layer.in_shape[0]) > 2**CHANNEL_BITS or max(oh, ow, *layer.in_shape[1:]) >= 2**COORD_BITS:
            raise _fail(layer.name, f"shape {layer.in_shape}->{layer.out_shape} exceeds the event format "
                                    f"({2**CHANNEL_BITS} channels, {2**COORD_BITS - 1} rows/columns)")
        bound = max_current(layer, i == 0) + 2 ** (cfg.membrane_bits - 1) + int(np.abs(layer.bias).max(initial=0))
        if bound > acc_limit:
            raise _fail(layer.name, f"worst-case membrane {bound} overflows {cfg.acc_bits}-bit accumulators; raise hardware.acc_bits")


# --- memory images ----------------------------------------------------------------

@dataclass
class LayerEntry:
    """One row of the descriptor table (hardware/README.md)."""

    name: str
    is_fc: int
    reset_zero: int
    pool_shift: int
    in_plane: int
    in_w: int
    oh: int
    ow: int
    plane: int
    fire_n: int
    vbase: int
    ptr_base: int
    bias_base: int
    cout: int
    thr: int
    keys: int
    rows: int


DESCRIPTOR_FIELDS = (  # name, low bit, width (matches snn_core.v)
    ("is_fc", 0, 1), ("reset_zero", 1, 1), ("pool_shift", 2, 2), ("in_plane", 4, 16), ("in_w", 20, 8),
    ("oh", 28, 8), ("ow", 36, 8), ("plane", 44, 16), ("fire_n", 60, 16), ("vbase", 76, 16),
    ("ptr_base", 92, 16), ("bias_base", 108, 16), ("cout", 124, 16), ("thr", 140, 32),
)


def _twos(value: int, bits: int) -> int:
    return int(value) & ((1 << bits) - 1)


def _hex_lines(words: list[int], bits: int, depth: int) -> str:
    """`$readmemh` text; the last address is written too so the whole memory range is covered."""
    digits = (bits + 3) // 4
    text = "".join(f"{w:0{digits}x}\n" for w in words)
    if len(words) < depth:
        text += f"@{depth - 1:x}\n{0:0{digits}x}\n"
    return text


def _lane_entries(layer: IntLayer, key: int, lane: int, lanes: int) -> list[tuple[int, int, int, int]]:
    """Compressed entries (w, toff, dy, dx) of one key (input channel / fc input) on one lane."""
    entries = []
    if layer.kind == "conv":
        ow = layer.out_shape[2]
        plane = layer.out_shape[1] * ow
        for oc in range(lane, layer.weight.shape[0], lanes):
            kernel = layer.weight[oc, key]
            for ky, kx in zip(*np.nonzero(kernel), strict=True):
                dy, dx = layer.padding - int(ky), layer.padding - int(kx)
                entries.append((int(kernel[ky, kx]), (oc // lanes) * plane + dy * ow + dx, dy, dx))
    else:
        column = layer.weight[lane::lanes, key]
        entries = [(int(column[idx]), int(idx), 0, 0) for idx in np.nonzero(column)[0]]
    return entries


def pack_network(net: IntNetwork) -> tuple[dict[str, list[int]], list[LayerEntry]]:
    """Memory words of every memory and the descriptor table."""
    cfg = net.config
    lanes, na, es = cfg.lanes, cfg.bank_addr_bits, cfg.entry_bits
    desc_words, ptr_words, w_words, bias_words = [], [], [], []
    table: list[LayerEntry] = []
    vbase = 0
    for _i, layer in enumerate(net.layers):
        c_out, oh, ow = layer.out_shape
        c_in, ph, pw = layer.pooled_shape
        keys = c_in if layer.kind == "conv" else c_in * ph * pw
        ptr_base, bias_base, first_row = len(ptr_words), len(bias_words), len(w_words)
        for key in range(keys):
            per_lane = [_lane_entries(layer, key, lane, lanes) for lane in range(lanes)]
            rows = max(len(e) for e in per_lane)
            if rows >= 2**ROW_COUNT_BITS:
                raise _fail(layer.name, f"{rows} weight rows for one input exceed the {2**ROW_COUNT_BITS - 1} the pointer word holds")
            ptr_words.append((rows << cfg.weight_addr_bits) | len(w_words))
            for r in range(rows):
                word = 0
                for lane, entries in enumerate(per_lane):
                    if r < len(entries):
                        w, toff, dy, dx = entries[r]
                        entry = (_twos(w, cfg.weight_bits) << (na + 1 + 2 * OFFSET_BITS)) | (_twos(toff, na + 1) << (2 * OFFSET_BITS)) \
                            | (_twos(dy, OFFSET_BITS) << OFFSET_BITS) | _twos(dx, OFFSET_BITS)
                        word |= entry << (lane * es)
                w_words.append(word)
        groups = math.ceil(c_out / lanes)
        for g in range(groups):
            word = 0
            for lane in range(lanes):
                n = g * lanes + lane
                if n < c_out:
                    word |= _twos(int(layer.bias[n]), cfg.acc_bits) << (lane * cfg.acc_bits)
            bias_words.append(word)
        entry = LayerEntry(
            name=layer.name, is_fc=int(layer.kind == "fc"), reset_zero=int(net.reset == "zero"),
            pool_shift=int(math.log2(layer.pool)), in_plane=ph * pw if layer.kind == "fc" else 1, in_w=pw if layer.kind == "fc" else 1,
            oh=oh, ow=ow, plane=oh * ow, fire_n=fire_words(layer, lanes), vbase=vbase, ptr_base=ptr_base, bias_base=bias_base,
            cout=c_out, thr=int(layer.threshold or 0), keys=keys, rows=len(w_words) - first_row,
        )
        table.append(entry)
        word = 0
        for fname, low, width in DESCRIPTOR_FIELDS:
            word |= _twos(getattr(entry, fname), width) << low
        desc_words.append(word)
        vbase += entry.fire_n
    for what, used, bits in (("keys", len(ptr_words), cfg.pointer_addr_bits), ("weight rows", len(w_words), cfg.weight_addr_bits),
                             ("bias rows", len(bias_words), cfg.bias_addr_bits)):
        if used > 2**bits:
            raise ModelError(f"{net.layers[-1].name}: the network needs {used} {what}, the hardware holds {2**bits}; "
                             "raise the matching hardware.*_addr_bits")
    return {"desc": desc_words, "ptr": ptr_words, "wmem": w_words, "bias": bias_words}, table


def output_map(net: IntNetwork, table: list[LayerEntry]) -> list[tuple[int, int]]:
    """(lane, bank address) of every output neuron."""
    lanes, last = net.config.lanes, table[-1]
    return [(j % lanes, last.vbase + j // lanes) for j in range(net.layers[-1].out_shape[0])]


def write_memory_images(net: IntNetwork, directory: str | Path) -> dict:
    """Write the `$readmemh` files and `layout.json`; returns the layout."""
    directory = Path(directory)
    cfg = net.config
    words, table = pack_network(net)
    widths = {"desc": DESCRIPTOR_BITS, "ptr": ROW_COUNT_BITS + cfg.weight_addr_bits, "wmem": cfg.lanes * cfg.entry_bits,
              "bias": cfg.lanes * cfg.acc_bits}
    depths = {"desc": 2**cfg.layer_addr_bits, "ptr": 2**cfg.pointer_addr_bits, "wmem": 2**cfg.weight_addr_bits,
              "bias": 2**cfg.bias_addr_bits}
    for key, filename in MEMORY_FILES.items():
        atomic_write_text(directory / filename, _hex_lines(words[key], widths[key], depths[key]))
    layout = {
        "config": cfg.to_dict(),
        "timesteps": net.timesteps,
        "layers": [vars(e) for e in table],
        "vwords": sum(e.fire_n for e in table),
        "outputs": output_map(net, table),
        "files": dict(MEMORY_FILES),
        "words": {k: len(v) for k, v in words.items()},
    }
    atomic_write_json(directory / "layout.json", layout)
    return layout


def input_events(image: np.ndarray) -> list[int]:
    """AER input queue words {c, y, x, value} of the non-zero pixels of one uint8 image (C, H, W)."""
    cs, ys, xs = np.nonzero(image)
    values = image[cs, ys, xs].astype(np.int64)
    return [int((c << 24) | (y << 16) | (x << 8) | v) for c, y, x, v in zip(cs, ys, xs, values, strict=True)]


def load_and_quantise(model_path: str | Path, config: HardwareConfig, timesteps: int | None = None) -> IntNetwork:
    state_dict, meta = load_checkpoint(model_path)
    try:
        return quantise(state_dict, meta, config, timesteps)
    except ModelError as err:
        raise ModelError(f"{model_path}: {err}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise ModelError(f"{model_path}: checkpoint does not follow the SNN contract ({type(err).__name__}: {err})") from None
