"""Verilog parameters of the ANN array (hardware/rtl/ann_core.v), sized to a model.

Memory sizes follow the model (`AnnHwConfig.sized`): every SRAM gets the fewest address
bits that hold the model's activations, weight rows, bias rows, logits and descriptors, so
SRAM energy and area (hardware/memory_model.py) price what the model needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hardware.ann.quantise import ACT_BITS, MULT_BITS, IntAnn

DESC_FIELD_BITS = 24  # DF in ann_core.v: bits of one descriptor field
COORD_BITS = 12  # CB in ann_core.v: map coordinates, kernel sizes


def address_bits(words: int) -> int:
    """Fewest address bits A with 2^A >= words (at least 1)."""
    return max(1, (max(1, words) - 1).bit_length())


@dataclass(frozen=True)
class AnnHwConfig:
    """The array: `macs` lanes (N), weight and accumulator bits, and the SRAM address bits."""

    macs: int = 64
    weight_bits: int = 8
    acc_bits: int = 32
    act_addr_bits: int = 14
    weight_addr_bits: int = 13
    bias_addr_bits: int = 7
    out_addr_bits: int = 4
    layer_addr_bits: int = 3

    def verilog_parameters(self) -> dict[str, int]:
        return {"N": self.macs, "WB": self.weight_bits, "XB": ACT_BITS, "AB": self.acc_bits, "MB": MULT_BITS,
                "AA": self.act_addr_bits, "WA": self.weight_addr_bits, "BA": self.bias_addr_bits,
                "OA": self.out_addr_bits, "LA": self.layer_addr_bits}

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def memories(self) -> dict[str, tuple[int, int]]:
        """(width, depth) of each SRAM instance of ann_core (the testbench's M field order)."""
        n, ab = self.macs, self.acc_bits
        return {"desc": (DESC_FIELD_BITS * 16, 2**self.layer_addr_bits), "act": (ACT_BITS, 2**self.act_addr_bits),
                "wmem": (n * self.weight_bits, 2**self.weight_addr_bits), "bias": (n * ab, 2**self.bias_addr_bits),
                "out": (ab + 2, 2**self.out_addr_bits)}

    @staticmethod
    def sized(net: IntAnn, macs: int, acc_bits: int = 32) -> AnnHwConfig:
        """The smallest memories holding `net` on `macs` lanes (layout: hardware/ann/export.py)."""
        act = _volume(net.input_shape) + sum(_volume(layer.out_shape) for layer in net.layers[:-1])
        tiles = [-(-layer.cout // macs) for layer in net.layers]
        rows = sum(t * layer.k_len for t, layer in zip(tiles, net.layers, strict=True))
        # the agu adds c*H*W + y*W + x in AA bits and coordinates are CB bits wide: AA > CB
        return AnnHwConfig(macs, net.weight_bits, acc_bits, max(COORD_BITS + 1, address_bits(act)), address_bits(rows),
                           address_bits(sum(tiles)), address_bits(net.num_classes), address_bits(len(net.layers)))


def _volume(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
