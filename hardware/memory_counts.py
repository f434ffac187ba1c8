"""Exact memory traffic of the accelerator, from the access counters inside every memory.

Each `snn_sram` instance counts its read and write accesses in simulation (not in
synthesis); the testbench reports them per image and per memory kind (lane memories
summed over the lanes), see `hardware.driver.CoreRun.memory`. `memory_report` sums them
over every simulated image into `reports/hardware_memory.json`, with each kind's
geometry (instances, word width, depth) taken from the same parameters as the RTL,
so the power stage prices every access by the size of the array it hits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from hardware.config import CHANNEL_BITS, COORD_BITS, DESCRIPTOR_BITS, PIXEL_BITS, ROW_COUNT_BITS, HardwareConfig
from hardware.driver import MEMORY_KINDS

if TYPE_CHECKING:
    from hardware.driver import CoreRun


@dataclass(frozen=True)
class MemoryGeometry:
    """One kind of memory: `instances` arrays of `depth_words` words of `width_bits` each."""

    instances: int
    width_bits: int
    depth_words: int

    @property
    def bits(self) -> int:
        return self.instances * self.width_bits * self.depth_words


def memory_geometry(config: HardwareConfig) -> dict[str, MemoryGeometry]:
    """The memories of hardware/rtl/snn_core.v (widths of hardware/rtl/snn_params.vh)."""
    p = config.lanes
    event_bits = CHANNEL_BITS + 2 * COORD_BITS
    return {
        "desc": MemoryGeometry(1, DESCRIPTOR_BITS, 2**config.layer_addr_bits),
        "inq": MemoryGeometry(1, event_bits + PIXEL_BITS, 2**config.input_addr_bits),
        "ptr": MemoryGeometry(1, ROW_COUNT_BITS + config.weight_addr_bits, 2**config.pointer_addr_bits),
        "wmem": MemoryGeometry(1, p * config.entry_bits, 2**config.weight_addr_bits),
        "bias": MemoryGeometry(1, p * config.acc_bits, 2**config.bias_addr_bits),
        "vmem": MemoryGeometry(p, config.acc_bits, 2**config.bank_addr_bits),
        "i0": MemoryGeometry(p, config.acc_bits, 2**config.bank_addr_bits),
        "q": MemoryGeometry(p, event_bits, 2 ** (config.bank_addr_bits + 1)),
    }


def memory_report(runs: list[CoreRun], config: HardwareConfig) -> dict:
    """reports/hardware_memory.json: every kind's geometry and its reads and writes (accesses,
    one word each) summed over all simulated images, with the per-image counts for the spread
    and the totals split by the phase that issued them (the core's phases, then `host`)."""
    if not runs or any(not r.memory for r in runs):
        raise ValueError("memory_report needs RTL runs with memory counters (a gate-level build has none)")
    memories, per_image = {}, {}
    for kind, geometry in memory_geometry(config).items():
        reads = [r.memory[kind][0] for r in runs]
        writes = [r.memory[kind][1] for r in runs]
        memories[kind] = {**asdict(geometry), "reads": sum(reads), "writes": sum(writes)}
        per_image[kind] = {"reads": reads, "writes": writes}
    per_phase = {phase: {kind: {"reads": sum(r.phase_memory[phase][kind][0] for r in runs),
                                "writes": sum(r.phase_memory[phase][kind][1] for r in runs)} for kind in MEMORY_KINDS}
                 for phase in runs[0].phase_memory}
    assert tuple(memories) == MEMORY_KINDS
    return {"images": len(runs), "memories": memories, "per_image": per_image, "per_phase": per_phase}
