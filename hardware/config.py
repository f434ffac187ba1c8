"""Hardware parameters shared by the exporter, the golden model and the RTL build.

One frozen dataclass is the single source of truth: `verilog_parameters()` passes the
same values to the Verilog top level (iverilog -P), and the exporter checks a model
against them before writing memory images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spikebench.errors import ParamsError
from spikebench.params import constraint

# Fixed field widths of the RTL (hardware/rtl/snn_params.vh).
CHANNEL_BITS = 10
COORD_BITS = 8
OFFSET_BITS = 5
ROW_COUNT_BITS = 12
DESCRIPTOR_BITS = 172
PIXEL_BITS = 8


@dataclass(frozen=True)
class HardwareConfig:
    """Accelerator parameters (see hardware/README.md)."""

    lanes: int = constraint(min=2, max=256)             # P parallel synaptic lanes / membrane banks
    weight_bits: int = constraint(min=2, max=16)         # k, signed weights
    membrane_bits: int = constraint(min=4, max=31)      # saturation range of the membrane potential
    acc_bits: int = constraint(min=6, max=48)           # stored membrane / accumulator width
    bank_addr_bits: int = constraint(min=2, max=16)     # neurons per lane (all layers) = 2**bits
    weight_addr_bits: int = constraint(min=2, max=20)   # compressed weight rows = 2**bits
    pointer_addr_bits: int = constraint(min=2, max=16)  # keys (input channels / fc inputs), all layers
    bias_addr_bits: int = constraint(min=1, max=16)      # bias rows (P values each)
    layer_addr_bits: int = constraint(min=1, max=4)      # up to 2**bits synaptic layers
    input_addr_bits: int = constraint(min=2, max=16)    # pixel events per image

    def validate(self, prefix: str) -> None:
        if self.acc_bits <= self.membrane_bits:
            raise ParamsError(f"params.yaml: {prefix}.acc_bits ({self.acc_bits}) must exceed membrane_bits ({self.membrane_bits})")
        if self.acc_bits < self.weight_bits + PIXEL_BITS + 1:
            raise ParamsError(f"params.yaml: {prefix}.acc_bits must be >= weight_bits + 9 to hold one pixel x weight product")

    @property
    def entry_bits(self) -> int:
        """One compressed weight entry {w, toff, dy, dx}."""
        return self.weight_bits + self.bank_addr_bits + 1 + 2 * OFFSET_BITS

    def verilog_parameters(self) -> dict[str, int]:
        return {
            "P": self.lanes, "WB": self.weight_bits, "VB": self.membrane_bits, "AB": self.acc_bits,
            "NA": self.bank_addr_bits, "WA": self.weight_addr_bits, "PA": self.pointer_addr_bits,
            "BA": self.bias_addr_bits, "LA": self.layer_addr_bits, "IA": self.input_addr_bits,
        }

    def to_dict(self) -> dict:
        return asdict(self)
