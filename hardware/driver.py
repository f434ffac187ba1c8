"""cocotb-side driver of the accelerator testbench (hardware/tb/snn_tb.v).

Runs inside the simulator process: `reload` re-reads a model's memory images, `run_batch`
hands a batch of images to the testbench's host loop (input queue writes, start, wait
for done, output read-back through the host port) and parses its result file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cocotb.triggers import FallingEdge, RisingEdge

from hardware.export import input_events

# Memory kinds in the order the testbench's M field lists them (hardware/tb/snn_tb_probes.vh);
# the lane memories are summed over the P lanes.
MEMORY_KINDS = ("desc", "inq", "ptr", "wmem", "bias", "vmem", "i0", "q")
# Phases of the core's state machine, in the order of the S field.
PHASES = ("clear", "analog", "events", "fire", "control")


@dataclass
class CoreRun:
    """What the core reports for one image: output potentials and its counters; from an RTL
    build also the cycles per phase and per layer, and each memory kind's (reads, writes)
    during this image (empty from a gate-level build, which has no probes)."""

    potentials: list[int]
    cycles: int
    sops: int
    macs: int
    spikes: int
    phase_cycles: dict[str, int] = field(default_factory=dict)
    layer_cycles: list[int] = field(default_factory=list)
    memory: dict[str, tuple[int, int]] = field(default_factory=dict)
    phase_memory: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # PHASES + "host"


BATCH_WORDS = 2**20  # testbench parameter BQ
OUTPUT_MAP_WORDS = 1024


def _memh(words: list[int], depth: int) -> str:
    """`$readmemh` text covering the whole memory (the last address is written explicitly)."""
    if len(words) > depth:
        raise ValueError(f"{len(words)} words exceed the testbench memory of {depth}; use smaller batches")
    return "".join(f"{w:x}\n" for w in words) + (f"@{depth - 1:x}\n0\n" if len(words) < depth else "")


def write_batch(path: Path, images: np.ndarray) -> int:
    """Batch file for the testbench; returns its word count."""
    words = [len(images)]
    for image in images:
        events = input_events(image)
        words += [len(events), *events]
    Path(path).write_text(_memh(words, BATCH_WORDS))
    return len(words)


def write_output_map(path: Path, outputs: list[tuple[int, int]]) -> None:
    Path(path).write_text(_memh([len(outputs), *[(lane << 16) | addr for lane, addr in outputs]], OUTPUT_MAP_WORDS))


def _fields(line: str) -> dict[str, list[int]]:
    """'c s m k S .. L .. O .. M ..' -> {'': [c, s, m, k], 'S': [...], ...}."""
    fields: dict[str, list[int]] = {"": []}
    key = ""
    for token in line.split():
        if token.isalpha():
            key = token
            fields[key] = []
        else:
            fields[key].append(int(token))
    return fields


def _by_kind(counts: list[int]) -> dict[str, tuple[int, int]]:
    return {kind: (counts[2 * i], counts[2 * i + 1]) for i, kind in enumerate(MEMORY_KINDS)}


def parse_results(path: Path) -> list[CoreRun]:
    """The testbench's result lines, one CoreRun per image."""
    runs = []
    for line in Path(path).read_text().splitlines():
        f = _fields(line)
        cycles, sops, macs, spikes = f[""]
        run = CoreRun(potentials=f["O"], cycles=cycles, sops=sops, macs=macs, spikes=spikes,
                      phase_cycles=dict(zip(PHASES, f.get("S", []), strict=False)), layer_cycles=f.get("L", []))
        if "M" in f:
            run.memory = _by_kind(f["M"])
            size = 2 * len(MEMORY_KINDS)
            run.phase_memory = {name: _by_kind(f["P"][b * size:(b + 1) * size]) for b, name in enumerate((*PHASES, "host"))}
        runs.append(run)
    return runs


class CoreDriver:
    def __init__(self, tb, workdir: Path) -> None:
        """`workdir` holds the batch, output-map and result files named by the plusargs."""
        self.tb = tb
        self.workdir = Path(workdir)
        self.outputs: list[tuple[int, int]] = []

    async def reset(self) -> None:
        self.tb.rst_n.value = 0
        for _ in range(3):
            await FallingEdge(self.tb.clk)
        self.tb.rst_n.value = 1
        await FallingEdge(self.tb.clk)

    async def reload(self, layout: dict) -> None:
        """Re-read the memory image files (paths in the plusargs) after they were rewritten."""
        self.outputs = [tuple(o) for o in layout["outputs"]]
        self.tb.load.value = 1
        await FallingEdge(self.tb.clk)
        self.tb.load.value = 0
        self.tb.cfg_layers.value = len(layout["layers"])
        self.tb.cfg_timesteps.value = layout["timesteps"]
        self.tb.cfg_vwords.value = layout["vwords"]
        await FallingEdge(self.tb.clk)

    async def run_batch(self, images: np.ndarray) -> list[CoreRun]:
        """Run uint8 images (B, C, H, W) through the core, one after the other."""
        write_batch(self.workdir / "batch.hex", images)
        write_output_map(self.workdir / "omap.hex", self.outputs)
        self.tb.batch.value = 1
        await RisingEdge(self.tb.batch_done)
        await FallingEdge(self.tb.clk)
        self.tb.batch.value = 0
        await FallingEdge(self.tb.clk)
        runs = parse_results(self.workdir / "results.txt")
        if len(runs) != len(images):
            raise RuntimeError(f"testbench returned {len(runs)} results for {len(images)} images")
        return runs


def batch_plusargs(workdir: Path) -> list[str]:
    workdir = Path(workdir).resolve()
    return [f"+SNN_BATCH={workdir / 'batch.hex'}", f"+SNN_OMAP={workdir / 'omap.hex'}", f"+SNN_OUT={workdir / 'results.txt'}"]
