"""Energy of one inference on the core at 180 nm, by term and by phase, and the `results/hardware.json` row.

`inference_energy` / `hardware_row`: energy of one inference at the model's T, by term:
    - logic cells: energy per simulated cycle × cycles of one inference (RTL-measured core
      cycles + the testbench's host cycles per image; when the gate-level run covered fewer
      steps than T this extrapolates the activity of those steps to all of them);
    - wire-load / clock-tree allowance: `wire_load_factor` × the cells' dynamic energy (the
      library has no wire-load model and the clock is an ideal net);
    - memories: exact reads and writes per image × the size-dependent energy per access,
      plus SRAM leakage over the inference latency;
    - a bracket: low = our Liberty rule, no wires, low SRAM leakage; high = OpenSTA 2.0.17's
      rise+fall internal rule, the wire allowance, high SRAM leakage;
    - energy per SOP as the chips it is set beside report it: the slope of energy per
      image against SOPs across the simulated images (least squares with MACs), the fixed
      per-inference phases (intercept) and the analog input phase (MAC term) apart.
  The nominal 180 nm total is the row's `hw_energy_per_image_j`; its `energy_per_image_j`
  is the 45 nm op model as in every row; the ×1/16 ideal-scaling bound at 45 nm is in `extra`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.memory_model import NODE_SCALE_180_TO_45, Memories
from hardware.power_model import HW_NODE, VOLTAGE_V, Activity
from spikebench.errors import SpikebenchError
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, RowContext


@dataclass(frozen=True)
class RowOps:
    """`RowContext.row(ops=...)` for the gate row: the RTL row's op counts and its 45 nm op-model energy."""

    spikes: float
    synops: float
    macs: float
    energy_j: float

    @classmethod
    def of(cls, rtl: ResultRow) -> RowOps:
        return cls(rtl.spikes_per_image, rtl.synops_per_image, rtl.macs_per_image, rtl.energy_per_image_j)


@dataclass(frozen=True)
class Measurements:
    """What the power stage reads besides the netlist: the RTL row and its per-image counters
    (reports/hardware_rtl_images.json `images`), the gate-level report, the synthesis report
    and the gate-level activity."""

    rtl: ResultRow
    rtl_images: dict[str, np.ndarray]   # per-image "cycles", "sops", "macs" (`rtl_image_columns`)
    gate: dict
    synth: dict
    activity: Activity


def rtl_image_columns(report: dict, path: Path | str) -> dict[str, np.ndarray]:
    """Per-image cycles, SOPs and MACs of reports/hardware_rtl_images.json, whether it holds
    columns (`"cycles": [...]`) or one record per image (`"images": [{"cycles": ...}, ...]`)."""
    records = report.get("images")
    try:
        if isinstance(records, list):
            return {k: np.array([float(r[k]) for r in records]) for k in ("cycles", "sops", "macs")}
        return {k: np.asarray(report[k], dtype=np.float64) for k in ("cycles", "sops", "macs")}
    except (KeyError, TypeError, ValueError):
        raise SpikebenchError(f"{path}: no per-image cycles, sops and macs; re-run the rtl_sim stage (dvc repro rtl_sim)") from None


@dataclass(frozen=True)
class InferenceEnergy:
    """Energy of one inference at the model's T (J), by term; per-cycle terms × cycles per image."""

    cells_j_cycle: float            # logic cells, our Liberty rule: internal + switching + leakage
    cells_opensta_j_cycle: float    # the same with OpenSTA 2.0.17's rise+fall internal rule
    dynamic_j_cycle: float          # internal + switching (our rule): what the wire allowance scales
    wire_load_factor: float
    memory_dynamic_j: float         # exact access counts × size-dependent energy per access
    memory_leakage_w: dict[str, float]  # low / nominal / high
    core_cycles: float              # the RTL's mean cycles per image at the model's full T
    host_cycles: float              # the testbench's input load / read-back per image (gate-level run)
    clock_hz: float

    @property
    def cycles(self) -> float:
        return self.core_cycles + self.host_cycles

    @property
    def latency_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def logic_j_cycle(self) -> float:
        """Logic cells + wire allowance per cycle (the nominal logic figure)."""
        return self.cells_j_cycle + self.wire_load_factor * self.dynamic_j_cycle

    @property
    def cells_j(self) -> float:
        return self.cells_j_cycle * self.cycles

    @property
    def wire_j(self) -> float:
        return self.wire_load_factor * self.dynamic_j_cycle * self.cycles

    @property
    def logic_j(self) -> float:
        return self.cells_j + self.wire_j

    def memory_leakage_j(self, which: str = "nominal") -> float:
        return self.memory_leakage_w[which] * self.latency_s

    @property
    def memory_j(self) -> float:
        return self.memory_dynamic_j + self.memory_leakage_j()

    @property
    def total_j(self) -> float:
        return self.logic_j + self.memory_j

    @property
    def low_j(self) -> float:
        """Our Liberty rule, pin capacitances only (no wires, ideal clock), the low SRAM leakage."""
        return self.cells_j + self.memory_dynamic_j + self.memory_leakage_j("low")

    @property
    def high_j(self) -> float:
        """OpenSTA's rise+fall internal rule, the wire allowance, the high SRAM leakage."""
        return self.cells_opensta_j_cycle * self.cycles + self.wire_j + self.memory_dynamic_j + self.memory_leakage_j("high")


def inference_energy(m: Measurements, power: dict, memories: Memories, wire_load_factor: float) -> InferenceEnergy:
    ours, rule, clock_hz = power["ours"], power["opensta_rule"], power["clock_hz"]
    leak_j = ours.leakage_w / clock_hz   # logic leakage per cycle (x period)
    core_cycles_gate = float(np.mean([r["cycles"] for r in m.gate["runs"]]))
    host_cycles = m.activity.cycles / m.gate["images"] - core_cycles_gate
    return InferenceEnergy(
        cells_j_cycle=ours.internal_j + ours.switching_j + leak_j, cells_opensta_j_cycle=rule.internal_j + rule.switching_j + leak_j,
        dynamic_j_cycle=ours.internal_j + ours.switching_j, wire_load_factor=wire_load_factor,
        memory_dynamic_j=memories.dynamic_j, memory_leakage_w={k: memories.leakage_w(k) for k in ("low", "nominal", "high")},
        core_cycles=float(m.rtl.hw_cycles_per_image), host_cycles=host_cycles, clock_hz=clock_hz)


# ---------------------------------------------------------------- energy per SOP
@dataclass(frozen=True)
class SopSplit:
    """Energy per image = fixed + per_mac · MACs + per_sop · SOPs, least squares over the images.

    `per_sop_j` is the incremental energy of one synaptic operation (logic + memory), as the
    chips in the leaderboard report it (ODIN, Frenkel et al. 2019; Loihi, Davies et al. 2018:
    the slope of energy against SOP count); `fixed_j` holds the per-inference phases (clear,
    descriptors, fire, host I/O, leakage), `per_mac_j` the analog input layer."""

    per_sop_j: float
    per_mac_j: float
    fixed_j: float
    images: int
    r2: float


def split_per_sop(energy_j: np.ndarray, sops: np.ndarray, macs: np.ndarray) -> SopSplit | None:
    """`SopSplit` of per-image energies; None where the images cannot separate SOPs (too few, or equal SOPs)."""
    columns, names = [np.ones(len(energy_j))], ["fixed"]
    for name, x in (("sop", sops), ("mac", macs)):
        if np.ptp(x) > 0:   # a constant regressor is part of the fixed energy
            columns.append(np.asarray(x, float))
            names.append(name)
    if "sop" not in names or len(energy_j) <= len(columns):
        return None
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, energy_j, rcond=None)
    fitted = dict(zip(names, coef, strict=True))
    residual = energy_j - design @ coef
    spread = float(np.sum((energy_j - energy_j.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual ** 2)) / spread if spread else 1.0
    return SopSplit(float(fitted["sop"]), float(fitted.get("mac", 0.0)), float(fitted["fixed"]), len(energy_j), r2)


def per_image_energy(m: Measurements, energy: InferenceEnergy, memories: Memories) -> tuple[np.ndarray | None, str]:
    """Total (nominal) energy of each RTL-simulated image: logic and SRAM leakage by its cycles,
    memory accesses from its own counts; None and the reason where the counts are not per image."""
    memory = memories.per_image_dynamic_j()
    if memory is None:
        return None, f"{memories.counts.path} has no per_image counts"
    if len(memory) != len(m.rtl_images["cycles"]):
        return None, f"{memories.counts.path} counts {len(memory)} images, the RTL report {len(m.rtl_images['cycles'])}"
    cycles = m.rtl_images["cycles"] + energy.host_cycles
    leakage = energy.memory_leakage_w["nominal"] / energy.clock_hz
    return cycles * (energy.logic_j_cycle + leakage) + memory, ""


def sop_energy(m: Measurements, energy: InferenceEnergy, memories: Memories) -> dict:
    """Energy per SOP (incremental, see `SopSplit`) and the fixed phases; total/SOPs beside it."""
    sops = m.rtl.synops_per_image
    total_per_sop = energy.total_j / sops if sops else float("nan")
    per_image, reason = per_image_energy(m, energy, memories)
    split = None
    if per_image is not None:
        split = split_per_sop(per_image, m.rtl_images["sops"], m.rtl_images["macs"])
        reason = "" if split else "the simulated images do not vary enough in SOPs to separate them"
    if split is None:
        return {"energy_per_sop_j": total_per_sop, "energy_per_sop_j_total": total_per_sop,
                "energy_per_sop_definition": f"total energy / SOPs (no incremental split: {reason})"}
    return {"energy_per_sop_j": split.per_sop_j, "energy_per_sop_j_total": total_per_sop,
            "energy_per_sop_definition": SOP_DEFINITION.format(images=split.images, r2=split.r2),
            "energy_per_image_j_fixed": split.fixed_j, "energy_per_image_j_input_macs": split.per_mac_j * m.rtl.macs_per_image,
            "energy_per_image_j_synaptic": split.per_sop_j * sops, "energy_per_mac_j": split.per_mac_j, "sop_fit_r2": split.r2}


SOP_DEFINITION = ("incremental energy of one synaptic operation, logic + memory: the slope of energy per image against SOPs "
                  "per image over {images} simulated images (least squares with MACs and an intercept, R² = {r2:.3f}), as ODIN "
                  "(Frenkel et al. 2019) and Loihi (Davies et al. 2018) report it; the fixed per-inference phases (clear, "
                  "descriptors, fire, host I/O, leakage) are energy_per_image_j_fixed, the analog input layer "
                  "energy_per_image_j_input_macs; energy_per_sop_j_total = all energy / SOPs (TrueNorth-style)")
WIRE_SOURCE = ("Magen et al., 'Interconnect-power dissipation in a microprocessor', SLIP 2004: interconnect switching is over "
               "50% of the dynamic power (130 nm, clock grid excluded), i.e. wires about equal to the cells' own dynamic energy; "
               "the OSU 0.18 µm library has no wire-load model and our clock is an ideal net, so this allowance also stands in "
               "for the clock tree")
SCALING_RULE = ("ideal-scaling bound (optimistic): E ∝ C·V², 180 nm/1.8 V -> 45 nm/0.9 V = (45/180)·(0.9/1.8)² = 1/16 "
                "(every capacitance, wires included, scaled with feature size, Dennard et al. 1974; 0.9 V as in Horowitz ISSCC "
                "2014); real wires and leakage scale worse, so a 45 nm chip would spend more")


# ---------------------------------------------------------------- the row and the report
def power_mw(power: dict, energy: InferenceEnergy) -> dict:
    """Average power over one inference (mW) by term."""
    ours, clock_hz, mw = power["ours"], power["clock_hz"], 1e3 / energy.latency_s
    return {"total": energy.total_j * mw, "logic": energy.logic_j * mw, "logic_cells": energy.cells_j * mw,
            "wire_allowance": energy.wire_j * mw, "internal": ours.internal_j * clock_hz * 1e3,
            "switching": ours.switching_j * clock_hz * 1e3, "leakage": ours.leakage_w * 1e3,
            "clock_net": ours.switching_clock_j * clock_hz * 1e3, "memory": energy.memory_j * mw,
            "memory_dynamic": energy.memory_dynamic_j * mw, "memory_leakage": energy.memory_leakage_w["nominal"] * 1e3}


def energy_terms(energy: InferenceEnergy) -> dict:
    """The nominal energy per image by term and the bracket around it (J)."""
    return {
        "energy_per_image_j_logic": energy.logic_j, "energy_per_image_j_memory": energy.memory_j,
        "energy_per_image_j_terms": {"logic_cells": energy.cells_j, "wire_allowance": energy.wire_j,
                                     "memory_dynamic": energy.memory_dynamic_j, "memory_leakage": energy.memory_leakage_j()},
        "energy_per_image_j_range": {
            "low": energy.low_j, "high": energy.high_j,
            "low_is": "our Liberty internal-power rule, pin capacitances only (no wires, ideal clock), low SRAM leakage",
            "high_is": "OpenSTA 2.0.17's rise+fall internal rule, the wire/clock-tree allowance, high SRAM leakage"},
        "logic_cells_energy_per_image_j": {"liberty_rule": energy.cells_j, "opensta_rise_fall_rule": energy.cells_opensta_j_cycle * energy.cycles},
        "wire_load_factor": energy.wire_load_factor, "wire_source": WIRE_SOURCE,
        "energy_per_image_j_45nm": energy.total_j * NODE_SCALE_180_TO_45,
        "energy_per_image_j_45nm_range": [energy.low_j * NODE_SCALE_180_TO_45, energy.high_j * NODE_SCALE_180_TO_45],
        "scaling_rule": SCALING_RULE,
    }


def memory_extra(memories: Memories, energy: InferenceEnergy, m: Measurements) -> dict:
    """The SRAM model, its sources, area beside the logic, and the per-memory table."""
    model = memories.model
    return {
        "sram_model": model.access.formula(), "sram_write_to_read": model.write_to_read,
        "sram_leakage_pw_per_bit": [model.leakage.low_pw_per_bit, model.leakage.pw_per_bit, model.leakage.high_pw_per_bit],
        "sram_um2_per_bit": model.area.um2_per_bit,
        "sram_sources": "energy: Horowitz ISSCC 2014 (45 nm) fitted in capacity, x16 to 180 nm; area: 6T cell of Intel's 180 nm "
                        "process (Yang et al. IEDM 1998) / array efficiency; leakage: assumed range (hardware/README.md, SRAM model)",
        "sram_area_mm2": memories.area_mm2, "area_total_mm2": m.synth["area_mm2"] + memories.area_mm2,
        "memory_bits": memories.bits, "memory_images": memories.counts.images,
        "memories": memories.table(energy.latency_s),
        "memory_energy_extrapolated_fraction": sum(e.dynamic_j for e in memories.energies if e.extrapolated) / memories.dynamic_j
        if memories.dynamic_j else 0.0,
    }


PHASE_LOGIC_RULE = ("logic energy of a phase = its cycles per image x the inference's average logic energy per cycle "
                    "(the gate-level activity is summed over whole inferences, not split by phase); memory energy of a "
                    "phase = the accesses it issued (exact counters, split at each phase change) x the energy per access")


def phase_breakdown(m: Measurements, energy: InferenceEnergy, memories: Memories) -> dict:
    """Cycles and energy per image by phase of the core (clear, analog, events, fire, control) and the host's I/O."""
    cycles = dict(m.rtl.extra.get("phase_cycles_per_image") or {})
    if not cycles:
        return {}
    cycles["host"] = energy.host_cycles
    memory = memories.phase_dynamic_j() or {}
    by_phase = {phase: {"cycles": c, "logic_j": c * energy.logic_j_cycle, "memory_j": memory.get(phase, 0.0)}
                for phase, c in cycles.items()}
    return {"energy_per_image_j_by_phase": by_phase, "phase_rule": PHASE_LOGIC_RULE,
            "layer_cycles_per_image": m.rtl.extra.get("layer_cycles_per_image", [])}


def gate_extra(m: Measurements, power: dict, memories: Memories, energy: InferenceEnergy) -> dict:
    """The hardware row's `extra`: power and energy by term, bracket, energy per SOP, node scaling, memories, checks."""
    rtl, gate, synth, clock_hz = m.rtl, m.gate, m.synth, power["clock_hz"]
    sop = sop_energy(m, energy, memories)
    return {
        "config": rtl.extra.get("config", ""), "bits": rtl.weight_bits,
        "voltage_v": VOLTAGE_V, "max_clock_mhz": synth["max_clock_mhz"],
        "area_mm2": synth["area_mm2"], "cells": synth["cells"], "flops": synth["flops"],
        "power_mw": power_mw(power, energy), **energy_terms(energy), **sop,
        "energy_per_sop_j_45nm": sop["energy_per_sop_j"] * NODE_SCALE_180_TO_45,
        **memory_extra(memories, energy, m), **phase_breakdown(m, energy, memories),
        "images_per_s": clock_hz / energy.core_cycles, "us_per_image": energy.core_cycles / clock_hz * 1e6,
        "host_cycles_per_image": energy.host_cycles, "rtl_images": rtl.test_images,
        "gate_images": gate["images"], "gate_timesteps": gate["timesteps"], "model_timesteps": gate["model_timesteps"],
        "gate_cycles_simulated": m.activity.cycles, "gate_mismatches": gate["mismatches"],
        "activity_scaled": gate["timesteps"] < gate["model_timesteps"],
        "includes": "logic: Liberty internal + pin-capacitance switching (clock net and port-driven nets included) + leakage, "
                    "no glitches (zero-delay simulation), plus the wire/clock-tree allowance; memories: exact access counts of "
                    "whole inferences x size-dependent energy per access, SRAM leakage over the inference",
        "opensta_check": power["check"],
        "accuracy_source": "golden model on the whole test split (bit-exact with the RTL and the netlist)",
        "source_method": rtl.extra.get("source_method", ""),
    }


def hardware_row(m: Measurements, power: dict, memories: Memories, wire_load_factor: float,
                 context: RowContext, predictions: Predictions) -> tuple[ResultRow, dict]:
    """The `results/hardware.json` row and the detailed report. The row is the hardware's headline row: its accuracy
    is the golden model's on the whole test split (`predictions`), which the RTL and the netlist reproduce bit-exactly."""
    rtl = m.rtl
    energy = inference_energy(m, power, memories, wire_load_factor)
    extra = gate_extra(m, power, memories, energy)
    row = context.row(
        "hardware", "gate", rtl.arch, timesteps=rtl.timesteps, accuracy=float(rtl.extra.get("golden_accuracy", rtl.accuracy)),
        test_images=len(predictions), ann_accuracy=rtl.ann_accuracy, predictions=predictions,
        ops=RowOps.of(rtl), params=(rtl.params, rtl.nonzero_params),
        weight_bits=rtl.weight_bits, headline=True, model_path=rtl.model_path, hw_energy_per_image_j=energy.total_j,
        hw_node=HW_NODE, hw_cycles_per_image=energy.core_cycles, hw_clock_mhz=m.synth["clock_mhz"], extra=extra)
    report = {"row_extra": extra, "memories": extra["memories"],
              "energy_per_image_j": {"logic": energy.logic_j, "memory": energy.memory_j, "total": energy.total_j,
                                     "low": energy.low_j, "high": energy.high_j},
              "energy_per_cycle_j": {"logic_cells": energy.cells_j_cycle, "logic_cells_opensta_rule": energy.cells_opensta_j_cycle,
                                     "wire_allowance": energy.wire_j / energy.cycles},
              "cycles_per_image": {"core": energy.core_cycles, "host": energy.host_cycles},
              "breakdown_per_cycle_j": asdict(power["ours"]),
              "breakdown_per_cycle_j_opensta_rule": asdict(power["opensta_rule"])}
    return row, report
