"""Random SNN checkpoints (contract format) and inputs for the randomised RTL tests.

Shapes, layer mix, weight sparsity, thresholds and input density are all drawn from one
seeded generator, so a failing case is reproduced from its logged seed.

Two generators: `random_checkpoint` (float weights, the small TEST_CONFIG core, the Icarus
cross-check) and, at the production parameters of params.yaml, `draw_case`: networks drawn
in integer form by families aimed at the core's corners (16 lanes, 28x28 planes, fc layers
with thousands of keys, folded pools of 2/4/8, queue / row / key / bias-row limits nearly
full, saturating conv layers, 2**layer_addr_bits layers), their thresholds and biases
calibrated on sample images so every layer is neither silent nor always saturated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from hardware.config import ROW_COUNT_BITS, HardwareConfig
from hardware.export import IntNetwork, quantise
from hardware.golden import run_golden
from spikebench.errors import ModelError
from spikebench.params import load_section, read_params_file
from tests.hardware.coverage import estimate_cycles

# Small memories: fast to compile and to (re)load, big enough for the random shapes.
TEST_CONFIG = HardwareConfig(lanes=4, weight_bits=6, membrane_bits=20, acc_bits=28, bank_addr_bits=10,
                             weight_addr_bits=11, pointer_addr_bits=9, bias_addr_bits=6, layer_addr_bits=2, input_addr_bits=8)


def random_checkpoint(rng: np.random.Generator, timesteps: int | None = None, reset: str | None = None) -> tuple[dict, dict]:
    """A random conv/pool/fc SNN following the checkpoint contract."""
    c, h = int(rng.integers(1, 3)), int(rng.choice([4, 6, 8]))
    shape = (c, h, h)
    layers, state = [], {}
    n_conv = int(rng.integers(0, 3))
    for _ in range(n_conv):
        k = int(rng.choice([1, 3]))
        pad = int(rng.integers(0, k // 2 + 1))
        if shape[1] + 2 * pad - k + 1 < 2:
            break
        c_out = int(rng.integers(1, 7))
        layers.append({"type": "conv", "in_channels": shape[0], "out_channels": c_out, "kernel_size": k, "stride": 1,
                       "padding": pad, "bias": bool(rng.integers(0, 2))})
        shape = (c_out, shape[1] + 2 * pad - k + 1, shape[2] + 2 * pad - k + 1)
        if shape[1] % 2 == 0 and rng.random() < 0.5:
            layers.append({"type": "avgpool", "kernel_size": 2})
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
    layers.append({"type": "flatten"})
    n_in = int(np.prod(shape))
    for out in [int(rng.integers(3, 24)) for _ in range(int(rng.integers(0, 2)))] + [int(rng.integers(2, 11))]:
        layers.append({"type": "linear", "in_features": n_in, "out_features": out, "bias": bool(rng.integers(0, 2))})
        n_in = out
    thresholds = []
    density = float(rng.uniform(0.1, 1.0))
    for i, spec in enumerate(layers):
        if spec["type"] == "conv":
            w_shape = (spec["out_channels"], spec["in_channels"], spec["kernel_size"], spec["kernel_size"])
        elif spec["type"] == "linear":
            w_shape = (spec["out_features"], spec["in_features"])
        else:
            continue
        weight = rng.normal(0.0, 1.0, w_shape) * (rng.random(w_shape) < density)
        state[f"layers.{i}.weight"] = torch.tensor(weight, dtype=torch.float32)
        if spec["bias"]:
            state[f"layers.{i}.bias"] = torch.tensor(rng.normal(0.0, 0.3, w_shape[0]), dtype=torch.float32)
        thresholds.append(float(rng.uniform(0.3, 3.0)))
    thresholds[-1] = None
    meta = {
        "kind": "snn", "method": "random", "dataset": "random", "split_hash": "", "input_shape": [c, h, h],
        "num_classes": n_in, "layers": layers, "thresholds": thresholds, "leaks": [1.0] * len(thresholds),
        "reset": reset or str(rng.choice(["subtract", "zero"])), "input": "analog", "output": "membrane",
        "timesteps": timesteps or int(rng.integers(1, 6)), "weight_bits": 32,
    }
    return state, meta


def random_images(rng: np.random.Generator, shape: tuple[int, int, int], count: int, density: float | None = None) -> np.ndarray:
    """uint8 images with a random fraction of non-zero pixels."""
    keep = density if density is not None else rng.uniform(0.05, 1.0, (count, 1, 1, 1))
    pixels = rng.integers(1, 256, (count, *shape))
    return (pixels * (rng.random((count, *shape)) < keep)).astype(np.uint8)


def _fc_meta(sizes: list[int], thresholds: list[float | None], timesteps: int, input_shape: tuple[int, int, int]) -> dict:
    layers = [{"type": "flatten"}] + [{"type": "linear", "in_features": a, "out_features": b, "bias": True} for a, b in zip(sizes, sizes[1:], strict=False)]
    return {"kind": "snn", "method": "test", "dataset": "random", "split_hash": "", "input_shape": list(input_shape),
            "num_classes": sizes[-1], "layers": layers, "thresholds": thresholds, "leaks": [1.0] * (len(sizes) - 1),
            "reset": "subtract", "input": "analog", "output": "membrane", "timesteps": timesteps, "weight_bits": 32}


def saturating_checkpoint(rng: np.random.Generator, config: HardwareConfig = TEST_CONFIG) -> tuple[dict, dict]:
    """An fc network whose currents and biases drive membranes into both saturation limits."""
    top = 2 ** (config.membrane_bits - 1) - 1
    levels = 2 ** (config.weight_bits - 1) - 1
    w0, w1 = rng.normal(0, 1, (8, 16)), rng.normal(0, 1, (4, 8))
    s0, s1 = np.abs(w0).max() / levels, np.abs(w1).max() / levels
    state = {
        "layers.1.weight": torch.tensor(w0), "layers.1.bias": torch.tensor(rng.normal(0, 0.1, 8)),
        "layers.2.weight": torch.tensor(w1),
        # output biases of +-0.7 of the membrane range per step: saturated after two steps
        "layers.2.bias": torch.tensor(np.array([0.7, -0.7, 0.7, -0.7]) * top * s1),
    }
    threshold = 0.9 * top * s0 / 255.0  # near the top of the membrane range (in float units)
    return state, _fc_meta([16, 8, 4], [threshold, None], 6, (1, 4, 4))


def sparsity_checkpoint(rng: np.random.Generator) -> tuple[dict, dict]:
    """conv(1->8, 3x3) - avgpool - fc(128->16) - fc(16->10) on 8x8 inputs, dense weights."""
    layers = [
        {"type": "conv", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
        {"type": "avgpool", "kernel_size": 2}, {"type": "flatten"},
        {"type": "linear", "in_features": 128, "out_features": 16, "bias": True},
        {"type": "linear", "in_features": 16, "out_features": 10, "bias": True},
    ]
    state = {
        "layers.0.weight": torch.tensor(rng.normal(0, 1, (8, 1, 3, 3))), "layers.0.bias": torch.zeros(8, dtype=torch.float64),
        "layers.3.weight": torch.tensor(rng.normal(0, 0.3, (16, 128))), "layers.3.bias": torch.zeros(16, dtype=torch.float64),
        "layers.4.weight": torch.tensor(rng.normal(0, 0.3, (10, 16))), "layers.4.bias": torch.zeros(10, dtype=torch.float64),
    }
    meta = {"kind": "snn", "method": "test", "dataset": "random", "split_hash": "", "input_shape": [1, 8, 8], "num_classes": 10,
            "layers": layers, "thresholds": [1.0, 1.0, None], "leaks": [1.0] * 3, "reset": "subtract", "input": "analog",
            "output": "membrane", "timesteps": 4, "weight_bits": 32}
    return state, meta


def sparsified(image: np.ndarray, fractions: list[float], rng: np.random.Generator) -> np.ndarray:
    """Copies of `image` keeping a shrinking, nested fraction of its pixels."""
    rank = rng.permutation(image.size).reshape(image.shape)
    return np.stack([np.where(rank < round(f * image.size), image, 0) for f in fractions]).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Production parameters


def production_config() -> HardwareConfig:
    """params.yaml `hardware` at the default profile (the smoke override left out, whatever the active profile)."""
    raw = read_params_file()
    return load_section(HardwareConfig, "hardware", raw={**raw, "profile": "default"})[1]


def rtl_seed() -> int:
    """SPIKEBENCH_RTL_SEED (or the older SNN_SEED) when set, to reproduce a run; else a fresh seed per run."""
    text = os.environ.get("SPIKEBENCH_RTL_SEED") or os.environ.get("SNN_SEED") or ""
    return int(text) if text.strip() else int.from_bytes(os.urandom(4), "little")


def int_weights(rng: np.random.Generator, shape: tuple[int, ...], density: float, wmax: int, sign: np.ndarray | None = None) -> np.ndarray:
    """Integer weights in [-wmax, wmax], a fraction `density` of them non-zero; `sign` (one per output) fixes their signs."""
    magnitude = rng.integers(1, wmax + 1, shape)
    signs = rng.choice([-1, 1], shape) if sign is None else np.broadcast_to(sign.reshape(-1, *[1] * (len(shape) - 1)), shape)
    return (magnitude * signs * (rng.random(shape) < density)).astype(np.int64)


@dataclass
class NetDraft:
    """A random network in integer form: contract layer specs and integer weights. `calibrate`
    chooses the integer thresholds and biases; `checkpoint` writes a contract checkpoint whose
    quantisation must reproduce exactly these integers."""

    family: str
    input_shape: tuple[int, int, int]
    timesteps: int
    reset: str
    layers: list[dict] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    has_bias: list[bool] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)  # per synaptic layer: calibrate | saturate | all_spike
    shape: tuple[int, int, int] = (0, 0, 0)          # what the next layer receives
    flat: bool = False

    def __post_init__(self) -> None:
        self.shape = self.input_shape

    def pool(self, k: int) -> None:
        self.layers.append({"type": "avgpool", "kernel_size": k})
        c, h, w = self.shape
        self.shape = (c, h // k, w // k)

    def conv(self, weight: np.ndarray, pad: int, bias: bool = True, mode: str = "calibrate") -> None:
        cout, cin, k, _ = weight.shape
        self.layers.append({"type": "conv", "in_channels": cin, "out_channels": cout, "kernel_size": k, "stride": 1, "padding": pad})
        self._add(weight, bias, mode)
        self.shape = (cout, self.shape[1] + 2 * pad - k + 1, self.shape[2] + 2 * pad - k + 1)

    def fc(self, weight: np.ndarray, bias: bool = True, mode: str = "calibrate") -> None:
        if not self.flat:
            self.layers.append({"type": "flatten"})
            self.flat = True
        self.layers.append({"type": "linear", "in_features": weight.shape[1], "out_features": weight.shape[0]})
        self._add(weight, bias, mode)
        self.shape = (weight.shape[0], 1, 1)

    def _add(self, weight: np.ndarray, bias: bool, mode: str) -> None:
        self.layers[-1]["bias"] = bias or mode != "calibrate"  # the forced modes act through the bias
        self.weights.append(weight)
        self.has_bias.append(self.layers[-1]["bias"])
        self.modes.append(mode)

    def units(self, scales: list[float]) -> list[float]:
        """Float current per integer unit of each synaptic layer, computed as the exporter does."""
        units, pool, first = [], 1, True
        for spec in self.layers:
            if spec["type"] == "avgpool":
                pool = int(spec["kernel_size"])
            elif spec["type"] in ("conv", "linear"):
                units.append(scales[len(units)] * (1.0 / 255.0 if first else 1.0) / (pool * pool))
                pool, first = 1, False
        return units

    def checkpoint(self, scales: list[float], thresholds: list[int | None], biases: list[np.ndarray], weight_bits: int) -> tuple[dict, dict]:
        """Contract checkpoint, already quantised to `weight_bits` (`weight_scales`), with these integer thresholds and biases."""
        state, units = {}, self.units(scales)
        synaptic = [i for i, spec in enumerate(self.layers) if spec["type"] in ("conv", "linear")]
        for j, i in enumerate(synaptic):
            state[f"layers.{i}.weight"] = torch.tensor(self.weights[j] * scales[j], dtype=torch.float64)
            if self.has_bias[j]:
                state[f"layers.{i}.bias"] = torch.tensor(biases[j] * units[j], dtype=torch.float64)
        meta = {"kind": "snn", "method": "random", "dataset": "random", "split_hash": "", "input_shape": list(self.input_shape),
                "num_classes": int(np.prod(self.shape)), "layers": self.layers,
                "thresholds": [None if t is None else t * u for t, u in zip(thresholds, units, strict=True)],
                "leaks": [1.0] * len(synaptic), "reset": self.reset, "input": "analog", "output": "membrane",
                "timesteps": self.timesteps, "weight_bits": weight_bits, "weight_scales": list(scales)}
        return state, meta


def _forced_or_random(rng: np.random.Generator, j: int) -> tuple[int, str]:
    """T and reset: the first 16 networks of a family walk T = 1..8 with both resets (a guaranteed corner), the rest draw."""
    if j < 16:
        return 1 + j % 8, ("subtract", "zero")[j // 8]
    return int(rng.integers(1, 9)), str(rng.choice(["subtract", "zero"]))


def _wmax(rng: np.random.Generator, limit: int) -> int:
    return limit if rng.random() < 0.5 else int(rng.integers(1, limit + 1))


def draw_tiny(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """The bulk: small inputs (square or not), 0-2 convs with uneven channel counts, pools, 1-3 fc layers."""
    t, reset = _forced_or_random(rng, j)
    h = int(rng.integers(2, 9))
    d = NetDraft("tiny", (int(rng.integers(1, 4)), h, h if rng.random() < 0.7 else int(rng.integers(2, 9))), t, reset)
    limit, density = 2 ** (cfg.weight_bits - 1) - 1, float(rng.uniform(0.1, 1.0))
    for _ in range(int(rng.integers(0, 3))):
        k = int(rng.choice([1, 2, 3, 5]))
        pad = int(rng.integers(0, k + 1))
        oh, ow = d.shape[1] + 2 * pad - k + 1, d.shape[2] + 2 * pad - k + 1
        if min(oh, ow) < 1:
            continue
        cout = max(1, min(int(rng.integers(1, 41)), 600 // (oh * ow)))  # a few hundred neurons: cheap images
        mode = "saturate" if rng.random() < 0.1 else "calibrate"
        d.conv(int_weights(rng, (cout, d.shape[0], k, k), density, _wmax(rng, limit)), pad, bool(rng.random() < 0.7), mode)
        pools = [p for p in (2, 4) if d.shape[1] % p == 0 and d.shape[2] % p == 0]
        if pools and rng.random() < 0.5:
            d.pool(int(rng.choice(pools)))
    for out in [int(rng.integers(1, 65)) for _ in range(int(rng.integers(0, 3)))] + [int(rng.integers(1, 41))]:
        d.fc(int_weights(rng, (out, int(np.prod(d.shape))), density, _wmax(rng, limit)), bool(rng.random() < 0.7))
    return d


def draw_filler(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """Cheap fc networks (100-400 cycles an image): top the suite up to its vector count."""
    t, reset = _forced_or_random(rng, j)
    d = NetDraft("filler", (int(rng.integers(1, 3)), int(rng.integers(2, 5)), int(rng.integers(2, 5))), t, reset)
    limit = 2 ** (cfg.weight_bits - 1) - 1
    for out in [int(rng.integers(2, 41)) for _ in range(int(rng.integers(0, 3)))] + [int(rng.integers(1, 33))]:
        d.fc(int_weights(rng, (out, int(np.prod(d.shape))), float(rng.uniform(0.3, 1.0)), _wmax(rng, limit)))
    return d


def draw_deep(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """2**layer_addr_bits synaptic layers: a conv stack (one pool) and an fc stack."""
    t, reset = _forced_or_random(rng, j)
    h = int(rng.choice([4, 6, 8]))
    d = NetDraft("deep", (int(rng.integers(1, 3)), h, h), t, reset)
    n_layers, limit = 2**cfg.layer_addr_bits, 2 ** (cfg.weight_bits - 1) - 1
    n_conv = int(rng.integers(2, min(6, n_layers)))
    pool_at = int(rng.integers(0, n_conv))
    for i in range(n_conv):
        k = int(rng.choice([1, 3]))
        d.conv(int_weights(rng, (int(rng.integers(2, 25)), d.shape[0], k, k), float(rng.uniform(0.3, 1.0)), _wmax(rng, limit)), k // 2)
        if i == pool_at and d.shape[1] % 2 == 0:
            d.pool(2)
    for i in range(n_layers - n_conv):
        out = int(rng.integers(2, 21)) if i == n_layers - n_conv - 1 else int(rng.integers(4, 49))
        d.fc(int_weights(rng, (out, int(np.prod(d.shape))), float(rng.uniform(0.3, 1.0)), _wmax(rng, limit)))
    return d


def draw_plane28(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """28x28 input, a 28x28 conv plane of 3 bank words per lane and position (bank address bit 11),
    then pool 4 and an fc layer of ~1,813 keys (37+ channels x 7 x 7), or pool 2, conv, pool 2, fc."""
    t, reset = int(rng.integers(1, 5)), str(rng.choice(["subtract", "zero"]))
    d = NetDraft("plane28", (1, 28, 28), t, reset)
    limit, k = 2 ** (cfg.weight_bits - 1) - 1, int(rng.choice([3, 5]))
    c1 = int(rng.integers(37, 3 * cfg.lanes - 6))
    d.conv(int_weights(rng, (c1, 1, k, k), float(rng.uniform(0.5, 1.0)), _wmax(rng, limit)), k // 2)
    if j % 2 == 0:
        d.pool(4)
    else:
        d.pool(2)
        d.conv(int_weights(rng, (int(rng.integers(8, 33)), c1, 3, 3), float(rng.uniform(0.2, 0.6)), _wmax(rng, limit)), 1)
        d.pool(2)
    d.fc(int_weights(rng, (int(rng.integers(10, 41)), int(np.prod(d.shape))), float(rng.uniform(0.3, 1.0)), _wmax(rng, limit)))
    return d


def draw_pool8(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """Pool 8: in front of layer 0 on a full input queue (1 x 32 x 32 pixels), or after a 16x16 conv."""
    t, reset = _forced_or_random(rng, j + 3)
    limit = 2 ** (cfg.weight_bits - 1) - 1
    side = math.isqrt(2**cfg.input_addr_bits)
    if j % 2 == 0:
        d = NetDraft("pool8", (1, side, side), t, reset)
        d.pool(8)
        d.conv(int_weights(rng, (int(rng.integers(4, 25)), 1, 3, 3), 1.0, _wmax(rng, limit)), 1)
    else:
        d = NetDraft("pool8", (2, 16, 16), t, reset)
        d.conv(int_weights(rng, (int(rng.integers(4, 21)), 2, 3, 3), float(rng.uniform(0.5, 1.0)), _wmax(rng, limit)), 1)
        d.pool(8)
    d.fc(int_weights(rng, (int(rng.integers(2, 21)), int(np.prod(d.shape))), float(rng.uniform(0.5, 1.0)), _wmax(rng, limit)))
    return d


def draw_rowlimit(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """One dense 8x8 conv to a 1x1 output: 63 x 64 = 4,032 weight rows per key (limit 4,095), the
    weight memory 98% full, 63 of 64 bias rows; the output layer itself."""
    k = 8
    per_lane = (2**ROW_COUNT_BITS - 1) // (k * k)            # output channels per lane: rows = per_lane * k * k
    cin = 2**cfg.weight_addr_bits // (per_lane * k * k)       # keys, each streaming that many rows
    d = NetDraft("rowlimit", (cin, k, k), int(rng.integers(1, 3)), str(rng.choice(["subtract", "zero"])))
    d.conv(int_weights(rng, (per_lane * cfg.lanes, cin, k, k), 1.0, 2 ** (cfg.weight_bits - 1) - 1), 0)
    return d


def draw_queuefill(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """A conv whose every neuron spikes every step, padded out to a 36x36 plane of 33-48 channels:
    3 x 36 x 36 = 3,888 events in one lane's queue set (2**bank_addr_bits = 4,096), then pool 4 and fc."""
    side, per_lane = 36, 3
    h = int(rng.choice([8, 10]))
    d = NetDraft("queuefill", (1, h, h), int(rng.integers(1, 3)), str(rng.choice(["subtract", "zero"])))
    cout = int(rng.integers((per_lane - 1) * cfg.lanes + 1, per_lane * cfg.lanes + 1))
    # positive weights: no input can pull a neuron below its bias, which is above threshold
    d.conv(int_weights(rng, (cout, 1, 1, 1), 1.0, 2 ** (cfg.weight_bits - 1) - 1, sign=np.ones(cout)), (side - h) // 2, mode="all_spike")
    d.pool(4)
    d.fc(int_weights(rng, (int(rng.integers(2, 17)), int(np.prod(d.shape))), float(rng.uniform(0.3, 1.0)), 2 ** (cfg.weight_bits - 1) - 1))
    return d


def draw_widefc(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """An fc layer with > 90% of the pointer memory's keys (up to 127 channels x 8 x 8)."""
    t, reset = _forced_or_random(rng, j + 5)
    d = NetDraft("widefc", (1, 8, 8), min(t, 4), reset)
    limit = 2 ** (cfg.weight_bits - 1) - 1
    cout = min(2**10 - 1, (2**cfg.pointer_addr_bits - 1) // 64) - int(rng.integers(0, 10))
    d.conv(int_weights(rng, (cout, 1, 3, 3), float(rng.uniform(0.5, 1.0)), _wmax(rng, limit)), 1)
    d.fc(int_weights(rng, (int(rng.integers(2, 41)), int(np.prod(d.shape))), float(rng.uniform(0.2, 1.0)), _wmax(rng, limit)))
    return d


def draw_saturate(rng: np.random.Generator, cfg: HardwareConfig, j: int) -> NetDraft:
    """Saturation in conv layers: pool 4 folded into a 5x5 conv whose channels' weights share a sign
    (analog currents far past the membrane range), then a conv driven to both limits by its biases."""
    t, reset = _forced_or_random(rng, j + 1)
    d = NetDraft("saturate", (3, 16, 16), max(t, 2), reset)
    limit = 2 ** (cfg.weight_bits - 1) - 1
    d.pool(4)
    c1 = int(rng.integers(8, 33))
    sign = rng.choice([-1, 1], c1)
    sign[:2] = [1, -1]
    d.conv(int_weights(rng, (c1, 3, 5, 5), 1.0, limit, sign=sign), 2)
    d.conv(int_weights(rng, (int(rng.integers(4, 25)), c1, 3, 3), float(rng.uniform(0.3, 1.0)), _wmax(rng, limit)), 1, mode="saturate")
    # outputs driven past both membrane limits by their biases
    d.fc(int_weights(rng, (int(rng.integers(2, 21)), int(np.prod(d.shape))), float(rng.uniform(0.3, 1.0)), _wmax(rng, limit)), mode="saturate")
    return d


@dataclass(frozen=True)
class Family:
    """A kind of random network: how to draw one, how many per run, and its image budget."""

    name: str
    draw: Callable[[np.random.Generator, HardwareConfig, int], NetDraft]
    count: int                    # networks per run
    budget: float                 # simulated cycles per network (images = budget / estimated cycles an image)
    images: tuple[int, int]       # at least / at most this many images
    density: tuple[float, float]  # fraction of non-zero pixels, drawn per image
    extremes: bool = True         # images 0 and 1 all 255 and all 0 (rowlimit: an all-255 image alone costs 2.6 M cycles)


# Budgets: ~30 M simulated cycles in all (~30 s of one core); cheap filler networks then
# bring the run to its vector count (~0.3 ms an image, mostly the testbench and parsing).
FAMILIES = (  # the heavy ones first, so they start while the bulk fills the other workers
    Family("rowlimit", draw_rowlimit, 1, 0.5e6, (8, 16), (0.01, 0.05), extremes=False),
    Family("queuefill", draw_queuefill, 1, 0.8e6, (3, 6), (0.2, 1.0)),
    Family("plane28", draw_plane28, 2, 1.0e6, (6, 40), (0.05, 0.5)),
    Family("widefc", draw_widefc, 1, 1.0e6, (20, 200), (0.2, 1.0)),
    Family("saturate", draw_saturate, 3, 0.6e6, (30, 400), (0.5, 1.0)),
    Family("pool8", draw_pool8, 2, 0.6e6, (30, 400), (0.6, 1.0)),
    Family("deep", draw_deep, 4, 0.6e6, (100, 1000), (0.1, 1.0)),
    Family("tiny", draw_tiny, 56, 0.5e6, (200, 2000), (0.0, 1.0)),
)
FILLER = Family("filler", draw_filler, 0, 1.0e6, (2000, 2000), (0.0, 1.0))
CALIBRATION_IMAGES = 24
HOST_CYCLES = 300  # testbench and process cost of one image, in core cycles (measured: ~0.3 ms an image)


def draw_images(rng: np.random.Generator, shape: tuple[int, ...], count: int, density: tuple[float, float], extremes: bool = True) -> np.ndarray:
    """uint8 images, each with its own fraction of non-zero pixels; with `extremes` the first is all
    255 (largest products, a full input queue) and the second all 0 (no event at all)."""
    keep = rng.uniform(density[0], density[1], (count, 1, 1, 1))
    images = (rng.integers(1, 256, (count, *shape)) * (rng.random((count, *shape)) < keep)).astype(np.uint8)
    if extremes and count >= 3:
        images[0], images[1] = 255, 0
    return images


def _threshold_and_bias(rng: np.random.Generator, per_step: np.ndarray, mode: str, n: int, has_bias: bool,
                        net: IntNetwork, last: bool) -> tuple[int | None, np.ndarray]:
    """Integer threshold and biases of one layer from its bias-free mean current per step on sample images."""
    zeros = np.zeros(n, dtype=np.int64)
    positive = per_step[per_step > 0]
    thr = float(np.quantile(positive, rng.uniform(0.3, 0.95))) if positive.size else float(rng.integers(1, 64))
    thr = None if last else int(np.clip(round(thr * rng.uniform(0.5, 1.5)), 1, net.v_max))
    if mode == "saturate":  # both limits every step: biases past +-2**(VB-1), both signs (the first two outputs)
        sign = rng.choice([-1, 1], n)
        sign[: min(n, 2)] = [1, -1][: min(n, 2)]
        return thr, np.rint(sign * rng.uniform(1.05, 1.5, n) * 2 ** (net.config.membrane_bits - 1)).astype(np.int64)
    if last:
        spread = float(np.abs(per_step).std()) or 1.0
        return None, np.rint(rng.normal(0.0, 0.3 * spread, n)).astype(np.int64) if has_bias else zeros
    if mode == "all_spike":
        return thr, thr + rng.integers(0, thr + 1, n)
    if not has_bias:
        return thr, zeros
    if not positive.size:  # a silent input: let the bias make the layer spike
        return thr, np.rint(rng.uniform(0.2, 1.5, n) * thr).astype(np.int64)
    return thr, np.rint(rng.uniform(-0.5, 0.5, n) * thr).astype(np.int64)


def calibrate(net: IntNetwork, draft: NetDraft, rng: np.random.Generator, sample: np.ndarray) -> tuple[list[int | None], list[np.ndarray]]:
    """Thresholds and biases layer by layer: each layer's bias-free current on `sample` (the layers
    before it already calibrated) sets its threshold at a random quantile, so it spikes sometimes."""
    layers = list(net.layers)
    for j, layer in enumerate(layers):
        probe = replace(layer, threshold=None, bias=np.zeros_like(layer.bias))
        per_step = run_golden(replace(net, layers=[*layers[:j], probe]), sample, count_ops=False).potentials / net.timesteps
        thr, bias = _threshold_and_bias(rng, per_step, draft.modes[j], layer.out_shape[0], draft.has_bias[j], net, j == len(layers) - 1)
        layers[j] = replace(layer, threshold=thr, bias=bias)
    return [layer.threshold for layer in layers], [layer.bias for layer in layers]


def exported(draft: NetDraft, rng: np.random.Generator, cfg: HardwareConfig, sample: np.ndarray) -> IntNetwork:
    """Calibrate `draft` and quantise its checkpoint; the exporter must reproduce every integer."""
    scales = [2.0 ** -int(rng.integers(0, 12)) for _ in draft.weights]  # powers of two: exact float weights
    placeholder = [1] * (len(draft.weights) - 1) + [None]
    zeros = [np.zeros(w.shape[0], dtype=np.int64) for w in draft.weights]
    net = quantise(*draft.checkpoint(scales, placeholder, zeros, cfg.weight_bits), cfg)
    thresholds, biases = calibrate(net, draft, rng, sample)
    net = quantise(*draft.checkpoint(scales, thresholds, biases, cfg.weight_bits), cfg)
    for j, layer in enumerate(net.layers):
        same = np.array_equal(layer.weight, draft.weights[j]) and np.array_equal(layer.bias, biases[j]) and layer.threshold == thresholds[j]
        assert same, f"{layer.name}: the exporter did not reproduce the drawn integer weights / bias / threshold"
    return net


@dataclass
class ProductionCase:
    """One random network of the production suite and its input images."""

    index: int
    family: str
    net: IntNetwork
    images: np.ndarray
    redraws: int  # drafts of this case the exporter refused (each redrawn)


def draw_case(seed: int, index: int, family: Family, ordinal: int, cfg: HardwareConfig, max_redraws: int = 20) -> ProductionCase:
    """Network `index` of the run `seed` (the `ordinal`-th of its family): the same arguments give the same case."""
    rng = np.random.default_rng([seed, index])
    for redraws in range(max_redraws):
        draft = family.draw(rng, cfg, ordinal)
        sample = draw_images(rng, draft.input_shape, CALIBRATION_IMAGES, family.density, family.extremes)
        try:
            net = exported(draft, rng, cfg, sample)
        except ModelError:
            continue
        per_image = float(estimate_cycles(net, sample, run_golden(net, sample)).mean()) + HOST_CYCLES
        count = int(np.clip(family.budget // per_image, *family.images))
        return ProductionCase(index, family.name, net, draw_images(rng, net.input_shape, count, family.density, family.extremes), redraws)
    raise ModelError(f"network {index} ({family.name}): {max_redraws} drafts in a row did not fit the hardware; fix draw_{family.name}")
