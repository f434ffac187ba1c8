"""Post-training quantisation of a float ANN (`nn.Sequential` of Conv2d/Linear, ReLU,
AvgPool2d(2), Flatten) into an integer network the ANN accelerator runs bit-exactly.

Per synaptic layer l (weights W_l, bias b_l, input unit s_in,l; s_in,0 = 1/255 for 8-bit pixels):

  s_w,l  = a · max|W_l| / (2^(k-1) - 1)          per-layer symmetric k-bit weight scale; clipping
                                                   a = 1 ("max") or the a in [0.4, 1] (25 steps) with the
                                                   least squared weight error ("mse": at 5 bits it keeps
                                                   the Fashion-MNIST CNN within 0.4 pp, "max" loses 0.55)
  w_l    = clip(round(W_l / s_w,l), ±(2^(k-1)-1)) integer weights
  beta_l = round(b_l / (s_in,l · s_w,l))          integer bias, in accumulator units
  acc    = Σ x·w + beta_l                          exact integer accumulator (x: unsigned 8-bit)
  s_out,l = a_l / (2^XB - 1)                      activation unit; a_l = `percentile` of the float
                                                   layer's post-ReLU(-pool) outputs on calibration images
  r_l    = s_in,l · s_w,l / (s_out,l · p²)        real requantisation factor (p = 2 with a 2x2 average pool)
  M_l, S_l: M_l = round(r_l · 2^S_l) < 2^MB with the largest such S_l (at most 2^SB - 1)
  x_next = clip((Σ_pool ReLU(acc) · M_l + 2^(S_l-1)) >> S_l, 0, 2^XB - 1)

The output layer has no ReLU, pool or requantisation: its accumulators are the logits
(unit s_in · s_w), class = argmax (lowest index on ties).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from spikebench.errors import ModelError

ACT_BITS = 8  # XB: unsigned activation bits (and the 8-bit input pixels)
MULT_BITS = 16  # MB: unsigned requantisation multiplier bits
SHIFT_MAX = 63  # 2^SB - 1 with SB = 6 shift bits
INPUT_SCALE = 1.0 / 255.0  # the prepared split's pixels are uint8 / 255


@dataclass
class IntLayer:
    """One synaptic layer of the integer ANN; `in_shape` is (C, H, W) (fc: (n, 1, 1))."""

    kind: str  # "conv" | "fc"
    weight: np.ndarray  # int64, (cout, cin, ks, ks) or (cout, cin)
    bias: np.ndarray  # int64, (cout,), accumulator units
    in_shape: tuple[int, int, int]
    relu: bool
    pool: int  # 1 or 2 (2x2 average pool after the ReLU)
    multiplier: int = 0  # M_l (0 on the output layer)
    shift: int = 0  # S_l
    weight_scale: float = 1.0
    in_scale: float = 1.0
    out_scale: float = 1.0  # unit of the layer's output activations (output layer: of the logits)
    index: int = 0  # position in the float model's Sequential, for messages

    @property
    def cout(self) -> int:
        return int(self.weight.shape[0])

    @property
    def cin(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[2]) if self.kind == "conv" else 1

    @property
    def k_len(self) -> int:
        """Inputs per output (the MAC array's inner loop): cin · ks² (conv), cin (fc)."""
        return self.cin * self.kernel**2

    @property
    def out_shape(self) -> tuple[int, int, int]:
        if self.kind == "fc":
            return (self.cout, 1, 1)
        _, h, w = self.in_shape
        return (self.cout, h // self.pool, w // self.pool)


@dataclass
class IntAnn:
    """The integer ANN: its layers and the precision it was quantised to."""

    layers: list[IntLayer]
    input_shape: tuple[int, int, int]
    weight_bits: int
    act_bits: int = ACT_BITS
    percentile: float = 99.99
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Output values per image: the last layer's outputs (channel-major for a conv output layer)."""
        c, h, w = self.layers[-1].out_shape
        return c * h * w

    def dense_macs(self) -> int:
        """Multiply-accumulates per image of the dense network (conv padding included, as MacCounter)."""
        return sum(layer.cout * layer.k_len * layer.in_shape[1] * layer.in_shape[2] for layer in self.layers)


@dataclass
class _Group:
    """A synaptic module of the float model with the ReLU / pool that follow it."""

    module: nn.Module
    index: int
    relu: bool = False
    pool: int = 1
    tail: list[nn.Module] = field(default_factory=list)  # modules applied after the synaptic one


def _refuse(index: int, module: nn.Module, problem: str) -> ModelError:
    return ModelError(f"layers.{index} ({type(module).__name__}): {problem}")


def _check_conv(index: int, conv: nn.Conv2d) -> None:
    k = conv.kernel_size[0]
    if conv.kernel_size != (k, k) or k % 2 == 0:
        raise _refuse(index, conv, f"kernel {conv.kernel_size} is not square and odd; the array maps k x k kernels, k odd")
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
        raise _refuse(index, conv, "stride, dilation and groups must be 1; use an average pool to downsample")
    if conv.padding != (k // 2, k // 2) or conv.padding_mode != "zeros":
        raise _refuse(index, conv, f"padding must be 'same' zero padding ({k // 2}); the line addressing assumes it")


def _check_pool(index: int, pool: nn.AvgPool2d, group: _Group | None) -> None:
    if group is None or not isinstance(group.module, nn.Conv2d) or group.pool != 1:
        raise _refuse(index, pool, "an average pool must follow a Conv2d (and its ReLU) directly")
    if pool.kernel_size not in (2, (2, 2)) or pool.stride not in (2, (2, 2)) or pool.padding not in (0, (0, 0)):
        raise _refuse(index, pool, "only AvgPool2d(2) (kernel 2, stride 2, no padding) is mapped")


def parse_groups(model: nn.Sequential) -> list[_Group]:
    """The model as synaptic groups; one-line ModelError for anything the array cannot map."""
    groups: list[_Group] = []
    flat = False  # a Flatten came before: Linear layers see channel-major vectors
    for index, module in enumerate(model):
        current = groups[-1] if groups else None
        if isinstance(module, nn.Conv2d):
            _check_conv(index, module)
            groups.append(_Group(module, index))
        elif isinstance(module, nn.Linear):
            if not flat:
                raise _refuse(index, module, "a Linear layer needs a Flatten before it")
            groups.append(_Group(module, index))
        elif isinstance(module, nn.ReLU):
            if current is None or current.relu or current.pool != 1:
                raise _refuse(index, module, "a ReLU must follow a Conv2d or Linear directly")
            current.relu = True
            current.tail.append(module)
        elif isinstance(module, nn.AvgPool2d):
            _check_pool(index, module, current)
            current.pool = 2  # type: ignore[union-attr]
            current.tail.append(module)  # type: ignore[union-attr]
        elif isinstance(module, (nn.Flatten, nn.Dropout, nn.Identity)):
            flat = flat or isinstance(module, nn.Flatten)
            if current is not None:
                current.tail.append(module)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise _refuse(index, module, "fold batch norm into the preceding layer first (or train with baseline.batch_norm: false)")
        else:
            raise _refuse(index, module, "not mappable; the ANN array maps Conv2d, Linear, ReLU, AvgPool2d(2), Flatten only")
    _check_group_order(groups)
    return groups


def _check_group_order(groups: list[_Group]) -> None:
    if not groups:
        raise ModelError("layers: the model has no Conv2d or Linear layer to map")
    for g in groups[:-1]:
        if not g.relu:
            raise _refuse(g.index, g.module, "hidden layers need a ReLU (activations are unsigned 8-bit)")
    last = groups[-1]
    if last.relu or last.pool != 1:
        raise _refuse(last.index, last.module, "the output layer must be a plain Conv2d/Linear (its accumulators are the logits)")
    seen_fc = False
    for g in groups:
        if isinstance(g.module, nn.Linear):
            seen_fc = True
        elif seen_fc:
            raise _refuse(g.index, g.module, "a Conv2d after a Linear layer is not mapped")


WEIGHT_SCALES = ("max", "mse")
CLIP_RATIOS = np.linspace(0.4, 1.0, 25)


def weight_scale(weight: torch.Tensor, bits: int, method: str = "max") -> float:
    """s_w = a · max|W| / (2^(k-1) - 1) (module docstring); 1.0 for an all-zero layer (its integers are 0 anyway)."""
    peak, limit = float(weight.abs().max()), 2 ** (bits - 1) - 1
    if peak == 0:
        return 1.0
    if method == "max":
        return peak / limit
    errors = [float(((torch.clamp(torch.round(weight / s), -limit, limit) * s - weight) ** 2).sum())
              for s in CLIP_RATIOS * peak / limit]
    return float(CLIP_RATIOS[int(np.argmin(errors))] * peak / limit)


def requant_factors(real: float, index: int, module: nn.Module, mult_bits: int = MULT_BITS) -> tuple[int, int]:
    """(M, S) with M = round(real · 2^S) < 2^mult_bits for the largest S <= SHIFT_MAX (S >= 1)."""
    if not real > 0 or not math.isfinite(real):
        raise _refuse(index, module, f"requantisation factor {real!r} is not positive; the layer's activations are all zero on the calibration images")
    shift = min(SHIFT_MAX, math.floor(math.log2((2**mult_bits - 1) / real)))
    if shift < 1:
        raise _refuse(index, module, f"requantisation factor {real:.3g} needs a multiplier over {mult_bits} bits; raise the activation percentile")
    multiplier = round(real * 2**shift)
    while multiplier >= 2**mult_bits:  # float rounding at the boundary
        shift -= 1
        multiplier = round(real * 2**shift)
    return multiplier, shift


def _calibrate(groups: list[_Group], calibration: torch.Tensor, percentile: float) -> list[float]:
    """Per hidden group: the `percentile` of its float outputs (post ReLU/pool) on `calibration`."""
    peaks, x = [], calibration.float()
    with torch.no_grad():
        for g in groups:
            x = g.module(x.flatten(1) if isinstance(g.module, nn.Linear) else x)
            for module in g.tail:
                x = module(x)
            values = x.flatten().numpy()
            peaks.append(float(np.percentile(values, percentile)) if values.size else 0.0)
    return peaks


def quantise(model: nn.Sequential, calibration: torch.Tensor, weight_bits: int, percentile: float = 99.99,
             act_bits: int = ACT_BITS, scale_method: str = "max") -> IntAnn:
    """The integer ANN of `model` (float, eval mode); `calibration`: float images in [0, 1], (B, C, H, W);
    `scale_method`: the weight clipping of WEIGHT_SCALES (module docstring)."""
    if not 2 <= weight_bits <= 16:
        raise ModelError(f"weight_bits {weight_bits}: the array maps signed 2..16-bit weights")
    if scale_method not in WEIGHT_SCALES:
        raise ModelError(f"weight scale method {scale_method!r}: one of {', '.join(WEIGHT_SCALES)}")
    groups = parse_groups(model)
    shape = tuple(int(s) for s in calibration.shape[1:])
    if len(shape) != 3:
        raise ModelError(f"calibration images must be (B, C, H, W), got {tuple(calibration.shape)}")
    _check_shapes(groups, shape)  # type: ignore[arg-type]
    peaks = _calibrate(groups, calibration, percentile)
    layers, in_scale, in_shape = [], INPUT_SCALE, shape
    for number, (g, peak) in enumerate(zip(groups, peaks, strict=True)):
        layer = _int_layer(g, in_shape, in_scale, weight_bits, scale_method)
        if number < len(groups) - 1:
            # a layer silent on every calibration image keeps a unit range (its outputs are ~all 0 anyway)
            layer.out_scale = (peak if peak > 0 else 1.0) / (2**act_bits - 1)
            real = layer.in_scale * layer.weight_scale / (layer.out_scale * layer.pool**2)
            layer.multiplier, layer.shift = requant_factors(real, g.index, g.module)
        layers.append(layer)
        in_scale, in_shape = layer.out_scale, layer.out_shape
    return IntAnn(layers, shape, weight_bits, act_bits, percentile, {"scale_method": scale_method})  # type: ignore[arg-type]


def _layer_shapes(g: _Group, in_shape: tuple[int, int, int]) -> tuple[str, tuple[int, int, int]]:
    """(kind, the layer's input shape as the array sees it); refuses mismatched widths."""
    module = g.module
    if isinstance(module, nn.Linear):
        n_in = in_shape[0] * in_shape[1] * in_shape[2]
        if module.in_features != n_in:
            raise _refuse(g.index, module, f"expects {module.in_features} inputs, the previous layer gives {n_in}")
        return "fc", (n_in, 1, 1)
    if module.in_channels != in_shape[0]:
        raise _refuse(g.index, module, f"expects {module.in_channels} channels, the previous layer gives {in_shape[0]}")
    if g.pool == 2 and (in_shape[1] % 2 or in_shape[2] % 2):
        raise _refuse(g.index, module, f"a 2x2 pool needs an even map, got {in_shape[1]}x{in_shape[2]}")
    return "conv", in_shape


def _check_shapes(groups: list[_Group], shape: tuple[int, int, int]) -> None:
    for g in groups:
        kind, in_shape = _layer_shapes(g, shape)
        out = g.module.out_features if kind == "fc" else g.module.out_channels
        shape = (out, 1, 1) if kind == "fc" else (out, in_shape[1] // g.pool, in_shape[2] // g.pool)


def _int_layer(g: _Group, in_shape: tuple[int, int, int], in_scale: float, bits: int, method: str) -> IntLayer:
    module = g.module
    weight = module.weight.detach().double()
    kind, in_shape = _layer_shapes(g, in_shape)
    scale = weight_scale(weight, bits, method)
    limit = 2 ** (bits - 1) - 1
    w = torch.clamp(torch.round(weight / scale), -limit, limit).long().numpy()
    b = module.bias.detach().double() if module.bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
    beta = torch.round(b / (in_scale * scale)).long().numpy()
    return IntLayer(kind, w, beta, in_shape, g.relu, g.pool, weight_scale=scale, in_scale=in_scale,
                    out_scale=in_scale * scale, index=g.index)
