"""Random float ANNs the array maps (conv/pool/fc mixes, widths, kernels, weight sparsity),
quantised with random weight bits and calibration percentiles, and random uint8 images of a
chosen activation sparsity; one fixed array configuration (one Verilator build) holds them all."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hardware.ann.config import AnnHwConfig
from hardware.ann.quantise import IntAnn, quantise

# 4 lanes: every random layer has full, partial and several tiles; 8-bit weight lanes hold any k <= 8
TEST_CONFIG = AnnHwConfig(macs=4, weight_bits=8, acc_bits=32, act_addr_bits=13, weight_addr_bits=12,
                          bias_addr_bits=8, out_addr_bits=4, layer_addr_bits=3)


def random_model(rng: np.random.Generator) -> tuple[nn.Sequential, tuple[int, int, int]]:
    """conv(k in 1,3,5)[-pool] x 0..2, then fc x 0..2, then the output fc; seeded by `rng`."""
    c, h = int(rng.integers(1, 4)), int(rng.choice([4, 6, 8]))
    shape, layers = (c, h, h), []
    for _ in range(int(rng.integers(0, 3))):
        out, k = int(rng.integers(1, 10)), int(rng.choice([1, 3, 5]))
        layers += [nn.Conv2d(c, out, k, padding=k // 2), nn.ReLU()]
        if h % 2 == 0 and h > 2 and rng.random() < 0.6:
            layers.append(nn.AvgPool2d(2))
            h //= 2
        c = out
    layers.append(nn.Flatten())
    n = c * h * h
    for _ in range(int(rng.integers(0, 3))):
        out = int(rng.integers(1, 13))
        layers += [nn.Linear(n, out), nn.ReLU()]
        n = out
    layers.append(nn.Linear(n, int(rng.integers(2, 11))))
    model = nn.Sequential(*layers).eval()
    torch.manual_seed(int(rng.integers(2**31)))
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(torch.from_numpy(rng.random(m.weight.shape) > rng.random() * 0.6).float())
                m.bias.uniform_(-0.2, 0.3)
    return model, shape


def random_images(rng: np.random.Generator, shape: tuple[int, ...], count: int, zero_fraction: float | None = None) -> np.ndarray:
    """uint8 images; each pixel zero with probability `zero_fraction` (random per image if None)."""
    images = rng.integers(1, 256, size=(count, *shape)).astype(np.uint8)
    for image in images:
        p = rng.random() if zero_fraction is None else zero_fraction
        image[rng.random(image.shape) < p] = 0
    return images


def random_int_ann(rng: np.random.Generator) -> IntAnn:
    model, shape = random_model(rng)
    calibration = torch.from_numpy(random_images(rng, shape, 32)).float() / 255
    return quantise(model, calibration, int(rng.integers(2, 9)), float(rng.choice([90.0, 99.0, 99.99, 100.0])))
