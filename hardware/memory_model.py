"""Size-dependent SRAM model at 180 nm / 1.8 V, and memory energy from exact access counts.

Quantities (per memory *instance* of W bits × D words, capacity C = W·D bits):

* **Read energy per bit accessed**, fitted to Horowitz, "Computing's energy problem (and
  what we can do about it)", ISSCC 2014, its memory access energies at 45 nm / 0.9 V: a
  64-bit read costs 10 pJ from an 8 KB array, 20 pJ from 32 KB and 100 pJ from 1 MB. A
  power law in the capacity, least squares in log-log,

      E64_45nm(C) = 19.56 pJ · (C / 32 KiB)^0.4726     (within 2.2% of all three points)

  (the exponent near 1/2 is the wire-dominated √area growth of bit lines, word lines and
  the H-tree with array size). Per bit: E64 / 64. The fit is refitted from the three
  published points at import (`AccessEnergyModel.fit`), not hand-copied.
* **Other widths**: energy scales with the bits accessed (W · E64/64): each accessed bit
  drives its own bit-line pair, sense amplifier and data wire; the shared decoder and word
  line are a small part at these sizes. This over-charges very wide words a little.
* **180 nm**: ×16, the ideal constant-field rule used everywhere in this repository
  (E ∝ C·V², C ∝ feature size: 180/45 = ×4, V: 1.8/0.9 V → V² ×4; Dennard et al., JSSC
  1974), `NODE_SCALE_180_TO_45` = 1/16. The model is then in the units of the OSU 0.18 µm
  logic it sits beside; real 180 nm SRAM macros may differ from this scaled figure.
* **Writes**: `write_to_read` × the read energy (params.yaml `power.sram_write_to_read`,
  default 1.0). Assumption: Horowitz gives reads only; a write swings the bit lines fully
  where a read develops only ~0.1–0.2 V before sensing, while decoder, word line and data
  wires cost the same, so writes are taken equal to reads and the ratio is a parameter.
* **Leakage**: pW per stored bit × all allocated bits, integrated over the inference
  latency (an SRAM leaks whether or not its words are used). An assumption with a range
  (params.yaml `power.sram_leakage_pw_per_bit`, `power.sram_leakage_range_pw_per_bit`),
  see hardware/README.md "SRAM model": no 180 nm SRAM macro datasheet is available here.
* **Area**: 6T cell area / array efficiency per bit (params.yaml `power.sram_cell_um2`,
  `power.sram_array_efficiency`): the Intel 180 nm 6T cell is 5.59 µm² (Yang et al.,
  IEDM 1998; ≈ 140 F², the ITRS cell factor of the time); periphery (decoders, sense
  amplifiers, I/O) is the 1 − efficiency share of a macro.

Memories outside the fitted 8 KiB – 1 MiB range are extrapolated and flagged in the report.

Access counts come from `reports/hardware_memory.json` (rtl_sim: per-port counters in every
`snn_sram` instance over whole inferences): see `read_access_counts`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikebench.errors import SpikebenchError

KIB_BITS = 8 * 1024   # one KiB in bits; Horowitz's "8 KB" is taken as 8 KiB
# E ∝ C·V²: 180 nm/1.8 V -> 45 nm/0.9 V = (45/180)·(0.9/1.8)² = 1/16 (Dennard et al. 1974, JSSC 9:256;
# 0.9 V as in Horowitz ISSCC 2014). Ideal scaling: wires and leakage scale worse in practice.
NODE_SCALE_180_TO_45 = (45 / 180) * (0.9 / 1.8) ** 2
# Horowitz ISSCC 2014, 45 nm / 0.9 V: (capacity in bits, energy of one 64-bit read in pJ).
HOROWITZ_2014_READ_64B_PJ: tuple[tuple[float, float], ...] = ((8 * KIB_BITS, 10.0), (32 * KIB_BITS, 20.0), (1024 * KIB_BITS, 100.0))
HOROWITZ_WORD_BITS = 64
# The memories of snn_core.v (hardware/README.md "Memories"); vmem/i0/q have one instance per lane.
MEMORY_NAMES = ("desc", "inq", "ptr", "wmem", "bias", "vmem", "i0", "q")


# ---------------------------------------------------------------- the model
@dataclass(frozen=True)
class AccessEnergyModel:
    """Read energy per bit accessed at 180 nm: e(C) = e_ref · (C / C_ref)^exponent × node_scale.

    `ref_pj_per_bit_45nm` is the fitted 45 nm energy per bit at `ref_bits` (capacity of
    one instance, bits); `fit_range_bits` the smallest and largest published capacity."""

    ref_bits: float
    ref_pj_per_bit_45nm: float
    exponent: float
    fit_range_bits: tuple[float, float]
    node_scale: float = 1.0 / NODE_SCALE_180_TO_45   # 45 nm -> 180 nm: x16

    @classmethod
    def fit(cls, points: tuple[tuple[float, float], ...] = HOROWITZ_2014_READ_64B_PJ, word_bits: int = HOROWITZ_WORD_BITS,
            ref_bits: float = 32 * KIB_BITS) -> AccessEnergyModel:
        """Least-squares line through (log capacity, log energy per bit) of the published points."""
        capacity = np.array([c for c, _ in points], float)
        per_bit = np.array([e for _, e in points], float) / word_bits
        slope, intercept = np.polyfit(np.log(capacity), np.log(per_bit), 1)
        return cls(ref_bits, float(np.exp(intercept + slope * math.log(ref_bits))), float(slope),
                   (float(capacity.min()), float(capacity.max())))

    def pj_per_bit_45nm(self, capacity_bits: float) -> float:
        if capacity_bits <= 0:
            raise SpikebenchError(f"SRAM capacity must be positive, got {capacity_bits} bits; check the memory's width and depth")
        return self.ref_pj_per_bit_45nm * (capacity_bits / self.ref_bits) ** self.exponent

    def read_pj(self, capacity_bits: float, width_bits: int) -> float:
        """One read of `width_bits` from an array of `capacity_bits`, at 180 nm (pJ)."""
        return width_bits * self.pj_per_bit_45nm(capacity_bits) * self.node_scale

    def extrapolated(self, capacity_bits: float) -> bool:
        low, high = self.fit_range_bits
        return not low <= capacity_bits <= high

    def formula(self) -> str:
        e64 = self.ref_pj_per_bit_45nm * HOROWITZ_WORD_BITS
        return (f"E_read = W/64 · {e64:.2f} pJ · (C / {self.ref_bits / KIB_BITS:g} KiB)^{self.exponent:.4f} at 45 nm/0.9 V "
                f"(fit to Horowitz ISSCC 2014: 64-bit reads of 8 KB, 32 KB, 1 MB = 10, 20, 100 pJ), "
                f"x{self.node_scale:g} to 180 nm/1.8 V; C = W·D bits of one instance")


@dataclass(frozen=True)
class SramLeakage:
    """Static power per stored bit (pW) at 1.8 V, 25 °C: nominal and an assumed range."""

    pw_per_bit: float
    low_pw_per_bit: float
    high_pw_per_bit: float

    def power_w(self, bits: float, which: str = "nominal") -> float:
        per_bit = {"nominal": self.pw_per_bit, "low": self.low_pw_per_bit, "high": self.high_pw_per_bit}[which]
        return bits * per_bit * 1e-12


@dataclass(frozen=True)
class SramArea:
    """Macro area per bit: the 6T cell (µm²) over the array efficiency (cells / macro area)."""

    cell_um2: float
    array_efficiency: float

    @property
    def um2_per_bit(self) -> float:
        return self.cell_um2 / self.array_efficiency

    def mm2(self, bits: float) -> float:
        return bits * self.um2_per_bit * 1e-6


@dataclass(frozen=True)
class SramModel:
    """Everything the power stage needs of an SRAM instance of W bits × D words."""

    access: AccessEnergyModel
    write_to_read: float
    leakage: SramLeakage
    area: SramArea

    def read_pj(self, width_bits: int, depth_words: int) -> float:
        return self.access.read_pj(width_bits * depth_words, width_bits)

    def write_pj(self, width_bits: int, depth_words: int) -> float:
        return self.write_to_read * self.read_pj(width_bits, depth_words)


# ---------------------------------------------------------------- access counts
@dataclass(frozen=True)
class MemoryCounts:
    """One memory of the core, all its `instances` (each W × D), accesses over all images."""

    name: str
    instances: int
    width_bits: int
    depth_words: int
    reads: float                              # total read accesses, all images and instances
    writes: float
    per_image_reads: np.ndarray | None = None  # per image, summed over instances
    per_image_writes: np.ndarray | None = None

    @property
    def bits(self) -> int:
        """Allocated bits, all instances."""
        return self.instances * self.width_bits * self.depth_words


@dataclass(frozen=True)
class AccessCounts:
    """`reports/hardware_memory.json`: exact per-port access counts summed over `images` inferences."""

    path: Path
    images: int
    memories: dict[str, MemoryCounts]
    per_phase: dict[str, dict[str, tuple[float, float]]] | None = None  # phase -> memory -> (reads, writes), all images

    @property
    def per_image(self) -> bool:
        return all(m.per_image_reads is not None for m in self.memories.values())


def _number(path: Path, where: str, value: object, positive: bool = False) -> float:
    """A count from the report: a finite number, >= 0 (> 0 where `positive`); one-line error otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpikebenchError(f"{path}: {where} must be a number, got {value!r}; re-run the rtl_sim stage (dvc repro rtl_sim)")
    if value < 0 or (positive and value == 0):
        raise SpikebenchError(f"{path}: {where} is {value}, must be {'> 0' if positive else '>= 0'} (a counter cannot be "
                              "negative); re-run the rtl_sim stage (dvc repro rtl_sim)")
    return float(value)


def _per_image(path: Path, raw: dict, name: str, images: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    entry = (raw.get("per_image") or {}).get(name)
    if entry is None:
        return None, None
    arrays = []
    for port in ("reads", "writes"):
        values = entry.get(port) if isinstance(entry, dict) else None
        if not isinstance(values, list) or len(values) != images:
            raise SpikebenchError(f"{path}: per_image.{name}.{port} must be a list of {images} counts (one per image); "
                                  "re-run the rtl_sim stage (dvc repro rtl_sim)")
        arrays.append(np.array([_number(path, f"per_image.{name}.{port}[{i}]", v) for i, v in enumerate(values)]))
    return arrays[0], arrays[1]


def _memory(path: Path, raw: dict, name: str, images: int) -> MemoryCounts:
    entry = raw["memories"].get(name)
    if not isinstance(entry, dict):
        raise SpikebenchError(f"{path}: memory '{name}' missing (expected {', '.join(MEMORY_NAMES)}); re-run the rtl_sim stage "
                              "with the counting snn_sram (dvc repro rtl_sim)")
    shape = [int(_number(path, f"memories.{name}.{k}", entry.get(k), positive=True)) for k in ("instances", "width_bits", "depth_words")]
    reads, writes = (_number(path, f"memories.{name}.{k}", entry.get(k)) for k in ("reads", "writes"))
    per_reads, per_writes = _per_image(path, raw, name, images)
    return MemoryCounts(name, *shape, reads, writes, per_reads, per_writes)


def read_access_counts(path: str | Path) -> AccessCounts:
    """Read and check `reports/hardware_memory.json` (every memory of `MEMORY_NAMES`, counts >= 0)."""
    path = Path(path)
    if not path.exists():
        raise SpikebenchError(f"{path}: missing; run the rtl_sim stage, which writes the memories' access counts (dvc repro rtl_sim)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SpikebenchError(f"{path}: not valid JSON (line {err.lineno}); re-run the rtl_sim stage (dvc repro rtl_sim)") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("memories"), dict):
        raise SpikebenchError(f"{path}: no 'memories' mapping; re-run the rtl_sim stage (dvc repro rtl_sim)")
    unknown = sorted(set(raw["memories"]) - set(MEMORY_NAMES))
    if unknown:
        raise SpikebenchError(f"{path}: unknown memory '{unknown[0]}' (known: {', '.join(MEMORY_NAMES)}); "
                              "add it to hardware/memory_model.py MEMORY_NAMES")
    images = int(_number(path, "images", raw.get("images"), positive=True))
    return AccessCounts(path, images, {name: _memory(path, raw, name, images) for name in MEMORY_NAMES}, _per_phase(path, raw))


def _per_phase(path: Path, raw: dict) -> dict[str, dict[str, tuple[float, float]]] | None:
    """The optional split of the counts by the phase that issued them (rtl_sim's `per_phase`)."""
    phases = raw.get("per_phase")
    if phases is None:
        return None
    if not isinstance(phases, dict):
        raise SpikebenchError(f"{path}: per_phase must map phases to memories; re-run the rtl_sim stage (dvc repro rtl_sim)")
    return {phase: {name: (_number(path, f"per_phase.{phase}.{name}.reads", (entry.get(name) or {}).get("reads")),
                           _number(path, f"per_phase.{phase}.{name}.writes", (entry.get(name) or {}).get("writes")))
                    for name in MEMORY_NAMES} for phase, entry in phases.items()}


# ---------------------------------------------------------------- energy per memory
@dataclass(frozen=True)
class MemoryEnergy:
    """One memory's accesses and energy per image at 180 nm, its leakage and area (all instances)."""

    name: str
    instances: int
    width_bits: int
    depth_words: int
    reads_per_image: float
    writes_per_image: float
    read_pj: float          # per access of one instance (its own capacity)
    write_pj: float
    leakage_w: float        # nominal, all instances
    area_mm2: float         # all instances
    extrapolated: bool      # capacity outside the fitted 8 KiB – 1 MiB

    @property
    def dynamic_j(self) -> float:
        return (self.reads_per_image * self.read_pj + self.writes_per_image * self.write_pj) * 1e-12

    def row(self, latency_s: float, flat_pj_per_bit: float) -> dict:
        """The report's table row; `flat_j` is the old flat per-bit figure, for comparison only."""
        bits_moved = (self.reads_per_image + self.writes_per_image) * self.width_bits
        return {"instances": self.instances, "width_bits": self.width_bits, "depth_words": self.depth_words,
                "capacity_kib_per_instance": self.width_bits * self.depth_words / KIB_BITS,
                "reads_per_image": self.reads_per_image, "writes_per_image": self.writes_per_image,
                "read_pj": self.read_pj, "write_pj": self.write_pj, "dynamic_j": self.dynamic_j,
                "leakage_j": self.leakage_w * latency_s, "area_mm2": self.area_mm2, "extrapolated": self.extrapolated,
                "flat_8kb_comparison_j": bits_moved * flat_pj_per_bit * 1e-12}


def memory_energies(counts: AccessCounts, model: SramModel) -> list[MemoryEnergy]:
    """Per-image reads and writes of every memory × its size-dependent energy per access."""
    out = []
    for m in counts.memories.values():
        out.append(MemoryEnergy(
            m.name, m.instances, m.width_bits, m.depth_words, m.reads / counts.images, m.writes / counts.images,
            model.read_pj(m.width_bits, m.depth_words), model.write_pj(m.width_bits, m.depth_words),
            model.leakage.power_w(m.bits), model.area.mm2(m.bits), model.access.extrapolated(m.width_bits * m.depth_words)))
    return out


def per_image_dynamic_j(counts: AccessCounts, energies: list[MemoryEnergy]) -> np.ndarray | None:
    """Memory access energy of each image (J), when the report has per-image counts."""
    if not counts.per_image:
        return None
    total = np.zeros(counts.images)
    for e in energies:
        m = counts.memories[e.name]
        total += (m.per_image_reads * e.read_pj + m.per_image_writes * e.write_pj) * 1e-12
    return total


def flat_pj_per_bit(model: AccessEnergyModel) -> float:
    """The former flat figure (Horowitz's 8 KB point per bit ×16 = 2.5 pJ/bit), kept as a labelled comparison."""
    _, energy = HOROWITZ_2014_READ_64B_PJ[0]
    return energy / HOROWITZ_WORD_BITS * model.node_scale


def check_shapes(counts: AccessCounts, netlist_memories: dict[str, dict], synth_report: Path | str) -> None:
    """The counted memories are the netlist's (`synth` report `memories`: instance -> width, addr_bits)."""
    shapes: dict[str, list[tuple[int, int]]] = {}
    for instance, info in netlist_memories.items():
        name = instance.rsplit(".", 1)[-1].removeprefix("u_")
        shapes.setdefault(name, []).append((int(info["width"]), 1 << int(info["addr_bits"])))
    for name in sorted(set(shapes) - set(counts.memories)):
        raise SpikebenchError(f"{synth_report}: netlist memory u_{name} has no access counts in {counts.path}; "
                              "add it to hardware/memory_model.py MEMORY_NAMES and the rtl_sim counters")
    for m in counts.memories.values():
        found = shapes.get(m.name, [])
        if found != [(m.width_bits, m.depth_words)] * m.instances:
            raise SpikebenchError(f"{counts.path}: {m.name} is {m.instances} x {m.width_bits} bits x {m.depth_words} words but the "
                                  f"netlist ({synth_report}) has {found or 'none'}; re-run rtl_sim and synth with the same "
                                  "params.yaml hardware (dvc repro power)")


@dataclass(frozen=True)
class Memories:
    """All memories of the core: the model, the counts and each memory's energy per image."""

    model: SramModel
    counts: AccessCounts
    energies: tuple[MemoryEnergy, ...]

    @classmethod
    def of(cls, counts: AccessCounts, model: SramModel) -> Memories:
        return cls(model, counts, tuple(memory_energies(counts, model)))

    @property
    def dynamic_j(self) -> float:
        return sum(e.dynamic_j for e in self.energies)

    @property
    def bits(self) -> int:
        return sum(m.bits for m in self.counts.memories.values())

    @property
    def area_mm2(self) -> float:
        return sum(e.area_mm2 for e in self.energies)

    def leakage_w(self, which: str = "nominal") -> float:
        return self.model.leakage.power_w(self.bits, which)

    def per_image_dynamic_j(self) -> np.ndarray | None:
        return per_image_dynamic_j(self.counts, list(self.energies))

    def phase_dynamic_j(self) -> dict[str, float] | None:
        """Memory access energy per image by the phase that issued the accesses (J); None without the split."""
        if self.counts.per_phase is None:
            return None
        prices = {e.name: (e.read_pj, e.write_pj) for e in self.energies}
        return {phase: sum(r * prices[n][0] + w * prices[n][1] for n, (r, w) in counts.items()) * 1e-12 / self.counts.images
                for phase, counts in self.counts.per_phase.items()}

    def table(self, latency_s: float) -> dict[str, dict]:
        flat = flat_pj_per_bit(self.model.access)
        return {e.name: e.row(latency_s, flat) for e in self.energies}
