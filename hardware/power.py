"""Stage `power`: gate-level power and energy per inference of the selected SNN on the core.

From the netlist (`synth`), the per-net activity of the gate-level run (`gate_sim`), the
full-T cycle and op counts of the RTL run and the memories' exact access counts over whole
inferences (`rtl_sim`: reports/hardware_memory.json), with `hardware.power_model` and
`hardware.memory_model`:

* logic power from the Liberty tables at the synthesis clock (`synth.clock_mhz`, read from
  reports/hardware_synth.json) and 1.8 V, cross-checked with OpenSTA `report_power` on the
  same per-pin activity: switching and leakage must agree within `power.tolerance`; the
  logic is given as a range (our internal-power rule .. OpenSTA's rise+fall rule) plus a
  wire-load / clock-tree allowance (`power.wire_load_factor`);
* memory energy: exact reads and writes per image × a size-dependent energy per access
  (Horowitz ISSCC 2014, fitted in capacity, ×16 to 180 nm; writes `power.sram_write_to_read`
  × reads), SRAM leakage (`power.sram_leakage_*`) over the inference, SRAM area
  (`power.sram_cell_um2`, `power.sram_array_efficiency`) beside the logic area;
* energy per SOP: the incremental energy of one synaptic operation across the simulated
  images, the fixed per-inference phases apart.

`results/hardware.json` holds one row (method hardware, library gate; the hardware headline row):
`hw_energy_per_image_j` is the nominal 180 nm total (`hw_node`), `energy_per_image_j` the
45 nm op model as in every row; the ×1/16 ideal-scaling bound is `extra.energy_per_image_j_45nm`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.inference_energy import Measurements, hardware_row, rtl_image_columns
from hardware.memory_model import AccessEnergyModel, Memories, SramArea, SramLeakage, SramModel, check_shapes, read_access_counts
from hardware.power_model import ACTIVITY_FILE, Activity, compute_power
from spikebench import paths
from spikebench.errors import ParamsError, SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, RowContext, read_rows, write_rows
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class PowerParams:
    """params.yaml `power` (sources of the defaults: hardware/README.md, "Power and energy")."""

    tolerance: float = constraint(min_exclusive=0.0, max=1.0)             # OpenSTA agreement (switching, leakage)
    wire_load_factor: float = constraint(min=0.0)                         # wires + clock tree / cells' dynamic energy
    sram_write_to_read: float = constraint(min_exclusive=0.0)             # write / read energy per access
    sram_leakage_pw_per_bit: float = constraint(min=0.0)                  # nominal SRAM leakage per stored bit
    sram_leakage_range_pw_per_bit: list[float] = constraint(min=0.0)      # [low, high] for the bracket
    sram_cell_um2: float = constraint(min_exclusive=0.0)                  # 6T cell area at 180 nm
    sram_array_efficiency: float = constraint(min_exclusive=0.0, max=1.0)  # cell area / macro area

    def validate(self, prefix: str) -> None:
        low_high = self.sram_leakage_range_pw_per_bit
        if len(low_high) != 2 or not low_high[0] <= self.sram_leakage_pw_per_bit <= low_high[1]:
            raise ParamsError(f"params.yaml: {prefix}.sram_leakage_range_pw_per_bit must be [low, high] around "
                              f"{prefix}.sram_leakage_pw_per_bit ({self.sram_leakage_pw_per_bit}), got {low_high}")

    def sram_model(self) -> SramModel:
        low, high = self.sram_leakage_range_pw_per_bit
        return SramModel(AccessEnergyModel.fit(), self.sram_write_to_read, SramLeakage(self.sram_leakage_pw_per_bit, low, high),
                         SramArea(self.sram_cell_um2, self.sram_array_efficiency))


def read_report(path: Path, stage: str) -> dict:
    if not path.exists():
        raise SpikebenchError(f"{path}: missing; run the {stage} stage (dvc repro {stage})")
    return json.loads(path.read_text())


def check_against_opensta(check: dict, tolerance: float) -> None:
    for key in ("switching", "leakage"):
        if check[f"{key}_rel_diff"] > tolerance:
            raise SpikebenchError(f"power: {key} power differs from OpenSTA by {check[f'{key}_rel_diff']:.2%} "
                                  f"(> power.tolerance {tolerance:.0%}); see {paths.OPENSTA_DIR}")


def read_memories(params: PowerParams, synth: dict) -> Memories:
    """The exact access counts, checked against the netlist's memories, with the SRAM model."""
    counts = read_access_counts(paths.MEMORY_REPORT)
    check_shapes(counts, synth["memories"], paths.SYNTH_REPORT)
    return Memories.of(counts, params.sram_model())


def summary(row: ResultRow, check: dict) -> str:
    e = row.extra
    low, high = (e["energy_per_image_j_range"][k] * 1e6 for k in ("low", "high"))
    return (f"power: {e['power_mw']['total']:.2f} mW at {row.hw_clock_mhz:g} MHz (logic {e['power_mw']['logic']:.2f} incl. wire "
            f"allowance {e['power_mw']['wire_allowance']:.2f}, memory {e['power_mw']['memory']:.2f}); "
            f"{row.hw_energy_per_image_j * 1e6:.2f} µJ/inference at 180 nm [{low:.2f}, {high:.2f}] "
            f"({e['energy_per_image_j_45nm'] * 1e6:.3f} µJ at 45 nm, ideal-scaling bound), {e['energy_per_sop_j'] * 1e12:.1f} pJ/SOP "
            f"({e['energy_per_sop_j_total'] * 1e12:.1f} pJ all energy / SOPs); SRAM {e['sram_area_mm2']:.1f} mm² beside "
            f"{e['area_mm2']:.2f} mm² of logic; OpenSTA: switching {check['switching_rel_diff']:.2%}, leakage "
            f"{check['leakage_rel_diff']:.2%} apart, internal x{check['internal_ratio_opensta_over_ours']:.2f} "
            f"(its rise+fall rule: {check['internal_opensta_rule_rel_diff']:.1%})")


@cli_main
def main() -> None:
    common, params = load_section(PowerParams, "power")
    synth = read_report(paths.SYNTH_REPORT, "synth")
    gate = read_report(paths.GATE_REPORT, "gate_sim")
    rtl_report = read_report(paths.RTL_REPORT, "rtl_sim")
    rtl_images = rtl_image_columns(rtl_report, paths.RTL_REPORT)
    if "golden_predictions" not in rtl_report:
        raise SpikebenchError(f"{paths.RTL_REPORT}: no golden_predictions (written by an older rtl_sim); run `dvc repro rtl_sim`")
    activity = Activity.load(paths.GATE_DIR / ACTIVITY_FILE)
    memories = read_memories(params, synth)
    (rtl,) = read_rows(paths.RTL_RESULTS)
    measured = Measurements(rtl, rtl_images, gate, synth, activity)
    with stage_run("power", method="hardware", library="gate", dataset=rtl.dataset, split_hash=rtl.split_hash,
                   params={"power": asdict(params), "synth": synth["hardware"]}) as run:
        power = compute_power(paths.NETLIST_DIR, activity, synth, paths.OPENSTA_DIR)
        check = power["check"]
        check_against_opensta(check, params.tolerance)
        context = RowContext(rtl.dataset, rtl.split_hash, common.seed, run.stage)
        row, report = hardware_row(measured, power, memories, params.wire_load_factor, context,
                                   Predictions.of(np.asarray(rtl_report["golden_predictions"])))
        atomic_write_json(paths.POWER_REPORT, report)
        write_rows(paths.HARDWARE_RESULTS, [row])
        e = row.extra
        run.log_headline([row])  # hw_energy_per_image_uj
        run.log_metrics({"power_mw": e["power_mw"]["total"], "energy_per_sop_pj": e["energy_per_sop_j"] * 1e12,
                         "energy_low_uj": e["energy_per_image_j_range"]["low"] * 1e6,
                         "energy_high_uj": e["energy_per_image_j_range"]["high"] * 1e6,
                         "sram_area_mm2": e["sram_area_mm2"],
                         "switching_rel_diff": check["switching_rel_diff"], "leakage_rel_diff": check["leakage_rel_diff"]})
        run.log_artifact(paths.POWER_REPORT, "hardware")
    print(summary(row, check))


if __name__ == "__main__":
    main()
