"""Hardware parameters shared by the exporter, the golden model, the RTL build and the synthesis flow.

`HardwareConfig` (params.yaml `hardware`) is the single source of truth of the core's
sizes: `verilog_parameters()` passes the same values to the Verilog top level (iverilog -P),
and the exporter checks a model against them before writing memory images. `SynthParams`
(params.yaml `synth`) holds the synthesis target clock, the one nominal clock every
latency and power figure is given at, with the timing constraints derived from it.
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


@dataclass(frozen=True)
class SramTiming:
    """Assumed macro timing of a 0.18 µm SRAM (no memory compiler on this machine)."""

    access_ns: float            # clock to read data valid (params.yaml: synth.sram_access_ns)
    setup_ns: float = 0.3       # address / data / enable setup before the clock
    pin_cap_pf: float = 0.01    # input pin capacitance, about one gate input
    output_slew_ns: float = 0.2  # read-data transition


@dataclass(frozen=True)
class Constraints:
    """Timing constraints of the flow (SDC, abc, OpenSTA power) at a clock."""

    clock_mhz: float
    input_slew_ns: float
    output_load_pf: float
    io_delay_fraction: float = 0.2   # input/output delay as a fraction of the period

    @property
    def period_ns(self) -> float:
        return 1e3 / self.clock_mhz


@dataclass(frozen=True)
class SynthParams:
    """params.yaml `synth`: read by the synth stage and, for the one nominal clock, by rtl_sim."""

    clock_mhz: float = constraint(min_exclusive=0.0)      # target clock (timing must be met; power and images/s are given at it)
    sram_access_ns: float = constraint(min_exclusive=0.0)  # assumed memory macro clock-to-data (no SRAM compiler here)
    input_slew_ns: float = constraint(min_exclusive=0.0)   # transition on the core's inputs (and the ideal clock)
    output_load_pf: float = constraint(min=0.0)           # load on every output port

    def constraints(self) -> Constraints:
        return Constraints(clock_mhz=self.clock_mhz, input_slew_ns=self.input_slew_ns, output_load_pf=self.output_load_pf)

    def sram_timing(self) -> SramTiming:
        return SramTiming(access_ns=self.sram_access_ns)
