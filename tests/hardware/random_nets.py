"""Random SNN checkpoints (contract format) and inputs for the randomised RTL tests.

Shapes, layer mix, weight sparsity, thresholds and input density are all drawn from one
seeded generator, so a failing case is reproduced from its logged seed.
"""

from __future__ import annotations

import numpy as np
import torch

from hardware.config import HardwareConfig

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
