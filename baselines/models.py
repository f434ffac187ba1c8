"""Conversion-friendly ANN architectures, all plain `nn.Sequential`.

Only ReLU, average pooling, Conv2d/Linear, optional BatchNorm and Flatten are used, so
every model maps to a spiking network layer by layer.

  cnn    conv3x3(32)-pool-conv3x3(64)-pool-fc(128)-fc(classes), for 28x28 (the default)
  mlp    fc(256)-fc(128)-fc(classes)
  vgg11, vgg16  VGG configurations with average pooling, for 32x32 inputs (GPU users)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from torch import nn

from spikebench import paths
from spikebench.data import SplitData, check_split_hash
from spikebench.errors import ParamsError
from spikebench.io import load_checkpoint

ARCHS = ("cnn", "mlp", "vgg11", "vgg16")
VGG_CONFIGS = {
    "vgg11": [64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"],
    "vgg16": [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"],
}


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild a model before loading its state dict."""

    arch: str
    input_shape: tuple[int, int, int]
    num_classes: int
    batch_norm: bool = False
    bias: bool = True
    channels: tuple[int, ...] = ()  # cnn: conv widths then hidden fc width; mlp: hidden widths

    def to_meta(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_meta(meta: dict) -> ArchConfig:
        return ArchConfig(
            arch=meta["arch"],
            input_shape=tuple(meta["input_shape"]),
            num_classes=int(meta["num_classes"]),
            batch_norm=bool(meta["batch_norm"]),
            bias=bool(meta["bias"]),
            channels=tuple(meta.get("channels", ())),
        )


DEFAULT_CHANNELS = {"cnn": (32, 64, 128), "mlp": (256, 128)}


def _conv_block(c_in: int, c_out: int, batch_norm: bool, bias: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias and not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    return layers


def _fc_block(n_in: int, n_out: int, batch_norm: bool, bias: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=bias and not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(nn.ReLU())
    return layers


def build_model(config: ArchConfig) -> nn.Sequential:
    """Build the architecture named in `config` for its input shape and class count."""
    c, h, w = config.input_shape
    bn, bias = config.batch_norm, config.bias
    widths = config.channels or DEFAULT_CHANNELS.get(config.arch, ())
    layers: list[nn.Module] = []
    if config.arch == "cnn":
        if len(widths) != 3:
            raise ParamsError(f"params.yaml: baseline.channels for cnn needs 3 widths (conv1, conv2, fc), got {list(widths)}")
        if h % 4 or w % 4:
            raise ParamsError(f"cnn needs input height and width divisible by 4, got {h}x{w}")
        conv1, conv2, hidden = widths
        layers += _conv_block(c, conv1, bn, bias) + [nn.AvgPool2d(2)]
        layers += _conv_block(conv1, conv2, bn, bias) + [nn.AvgPool2d(2)]
        layers += [nn.Flatten()] + _fc_block(conv2 * (h // 4) * (w // 4), hidden, bn, bias)
        layers += [nn.Linear(hidden, config.num_classes, bias=bias)]
    elif config.arch == "mlp":
        n_in = c * h * w
        layers.append(nn.Flatten())
        for width in widths:
            layers += _fc_block(n_in, width, bn, bias)
            n_in = width
        layers.append(nn.Linear(n_in, config.num_classes, bias=bias))
    elif config.arch in VGG_CONFIGS:
        pools = VGG_CONFIGS[config.arch].count("P")
        if h < 2**pools or w < 2**pools:
            raise ParamsError(f"{config.arch} needs inputs of at least {2**pools}x{2**pools} (e.g. CIFAR-10), got {h}x{w}")
        c_in = c
        for item in VGG_CONFIGS[config.arch]:
            if item == "P":
                layers.append(nn.AvgPool2d(2))
            else:
                layers += _conv_block(c_in, int(item), bn, bias)
                c_in = int(item)
        features = c_in * (h // 2**pools) * (w // 2**pools)
        layers += [nn.Flatten()] + _fc_block(features, 512, bn, bias) + [nn.Linear(512, config.num_classes, bias=bias)]
    else:
        raise ParamsError(f"params.yaml: baseline.arch must be one of {', '.join(ARCHS)}, got {config.arch!r}")
    return nn.Sequential(*layers)


def load_ann(data: SplitData, path: str | os.PathLike = paths.ANN_MODEL) -> tuple[nn.Sequential, dict]:
    """The baseline ANN checkpoint at `path` in eval mode, with its meta; refused if made from another split."""
    state, meta = load_checkpoint(path)
    check_split_hash(data.split_hash, meta.get("split_hash", ""), str(path))
    model = build_model(ArchConfig.from_meta(meta))
    model.load_state_dict(state)
    return model.eval(), meta

