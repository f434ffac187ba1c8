"""Stage `power`: gate-level power and energy per inference of the selected SNN on the core.

From the netlist (`synth`), the per-net activity of the gate-level run (`gate_sim`) and the
full-T cycle and op counts of the RTL run (`rtl_sim`):

* logic power from the Liberty tables (`hardware.power.gate_power`), at `synth.clock_mhz`
  and 1.8 V, cross-checked with OpenSTA `report_power` on the same per-pin activity:
  switching (nets OpenSTA charges: not port- or memory-driven) and leakage must agree
  within `power.tolerance`; the internal-power ratio is explained by recomputing ours with
  OpenSTA 2.0.17's rule (rise + fall energy per transition);
* memory energy: accesses × width × `power.sram_pj_per_bit` (see hardware/power.py);
* energy per inference = energy per simulated cycle × cycles of one inference at the
  model's T (RTL-measured core cycles + the testbench's host cycles per image). When
  `gate_sim.timesteps` < T this extrapolates the activity of the first steps to all of them;
* the same energy scaled to 45 nm with E ∝ C·V² (×1/16, `NODE_SCALE_180_TO_45`).

`results/hardware.json` holds one row (method hardware, library gate): `energy_per_image_j`
is the measured 180 nm total; the 45 nm figure is `extra.energy_per_image_j_45nm`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.gate_sim import ACTIVITY_PATH
from hardware.gate_sim import REPORT_PATH as GATE_REPORT
from hardware.power import NODE_SCALE_180_TO_45, SRAM_PJ_PER_BIT_180NM, Activity, gate_power, load_library, memory_accesses, netlist_module, opensta_power
from hardware.rtl_sim import RESULTS_PATH as RTL_RESULTS
from hardware.synth.flow import LIBERTY, Constraints
from hardware.synth_stage import NETLIST_DIR
from hardware.synth_stage import REPORT_PATH as SYNTH_REPORT
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import ResultRow, read_rows, write_rows
from spikebench.tracking import stage_run

RESULTS_PATH = "results/hardware.json"
REPORT_PATH = Path("reports/hardware_power.json")
OPENSTA_DIR = Path("hardware/opensta")  # OpenSTA's power netlist, activity annotation, script and log


@dataclass(frozen=True)
class PowerParams:
    sram_pj_per_bit: float = constraint(min_exclusive=0.0)  # 180 nm SRAM access energy per bit
    tolerance: float = constraint(min_exclusive=0.0, max=1.0)                 # OpenSTA agreement (switching, leakage)


def _read_json(path: Path, stage: str) -> dict:
    if not path.exists():
        raise SpikebenchError(f"{path}: missing; run the {stage} stage (dvc repro {stage})")
    return json.loads(path.read_text())


def relative_difference(ours: float, reference: float) -> float:
    return abs(ours - reference) / abs(reference) if reference else float(ours != 0)


def compute_power(netlist_dir: Path, activity: Activity, synth: dict, params: PowerParams, workdir: Path) -> dict:
    """Our figure, the OpenSTA cross-check and the memory accesses, per simulated cycle and at f_clk."""
    module = netlist_module(netlist_dir / "snn_core.json")
    macros = netlist_dir / "snn_sram_macros.lib"
    library = load_library(macros)
    constraints = Constraints(clock_mhz=synth["clock_mhz"], input_slew_ns=synth["input_slew_ns"], output_load_pf=synth["output_load_pf"])
    clock_hz = synth["clock_mhz"] * 1e6
    ours = gate_power(module, library, activity, constraints)
    opensta_rule = gate_power(module, library, activity, constraints, double_count=True)
    sta = opensta_power(module, netlist_dir / "snn_core_sta.v", [LIBERTY, macros], activity, constraints, workdir)
    comparable = (ours.switching_j - ours.switching_ports_j - ours.switching_memory_out_j) * clock_hz
    check = {
        "switching_ours_w": comparable, "switching_opensta_w": sta.switching_w,
        "switching_rel_diff": relative_difference(comparable, sta.switching_w),
        "leakage_ours_w": ours.leakage_w, "leakage_opensta_w": sta.leakage_w,
        "leakage_rel_diff": relative_difference(ours.leakage_w, sta.leakage_w),
        "internal_ours_w": ours.internal_j * clock_hz, "internal_opensta_w": sta.internal_w,
        "internal_ratio_opensta_over_ours": sta.internal_w / (ours.internal_j * clock_hz) if ours.internal_j else float("nan"),
        "internal_ours_with_opensta_rule_w": opensta_rule.internal_j * clock_hz,
        "internal_opensta_rule_rel_diff": relative_difference(opensta_rule.internal_j * clock_hz, sta.internal_w),
        "note": "switching compared on the nets OpenSTA 2.0.17 charges (it gives port-driven nets, the clock included, and "
                "memory-macro outputs no switching power); its internal power charges rise+fall table energy on every "
                "transition, reproduced by our calculation with that rule",
    }
    memories = memory_accesses(module, activity)
    return {"ours": ours, "check": check, "memories": memories, "clock_hz": clock_hz,
            "memory_j_per_cycle": memories.energy_j(params.sram_pj_per_bit) / activity.cycles}


def hardware_row(rtl: ResultRow, gate: dict, synth: dict, power: dict, activity: Activity, params: PowerParams, seed: int,
                 run_id: str = "", experiment_id: str = "") -> tuple[ResultRow, dict]:
    """The `results/hardware.json` row and the detailed report."""
    ours, clock_hz = power["ours"], power["clock_hz"]
    period = 1.0 / clock_hz
    logic_j_cycle = ours.internal_j + ours.switching_j + ours.leakage_w * period
    memory_j_cycle = power["memory_j_per_cycle"]
    core_cycles_gate = float(np.mean([r["cycles"] for r in gate["runs"]]))
    host_cycles = activity.cycles / gate["images"] - core_cycles_gate          # testbench load / read-back per image
    core_cycles = float(rtl.extra["cycles_per_image"]["mean"])                  # RTL, the model's full T
    cycles_per_inference = core_cycles + host_cycles
    logic_j = logic_j_cycle * cycles_per_inference
    memory_j = memory_j_cycle * cycles_per_inference
    total_j = logic_j + memory_j
    sops = rtl.synops_per_image
    pw = ours.power_w(clock_hz)
    extra = {
        "leaderboard": False,  # a 180 nm gate-level figure: shown in the hardware table, not beside the 45 nm op model
        "config": rtl.extra.get("config", ""), "bits": rtl.weight_bits,
        "node": "180 nm (OSU 0.18 um)", "voltage_v": 1.8, "clock_mhz": synth["clock_mhz"], "max_clock_mhz": synth["max_clock_mhz"],
        "area_mm2": synth["area_mm2"], "cells": synth["cells"], "flops": synth["flops"], "memory_bits": synth["memory_bits"],
        "power_mw": {"total": (pw["total"] + memory_j_cycle * clock_hz) * 1e3, "logic": pw["total"] * 1e3,
                     "internal": pw["internal"] * 1e3, "switching": pw["switching"] * 1e3, "leakage": pw["leakage"] * 1e3,
                     "clock_net": ours.switching_clock_j * clock_hz * 1e3, "memory": memory_j_cycle * clock_hz * 1e3},
        "energy_per_image_j_logic": logic_j, "energy_per_image_j_memory": memory_j, "energy_per_image_j_total": total_j,
        "energy_per_sop_j": total_j / sops if sops else float("nan"),
        "energy_per_image_j_45nm": total_j * NODE_SCALE_180_TO_45,
        "energy_per_sop_j_45nm": total_j * NODE_SCALE_180_TO_45 / sops if sops else float("nan"),
        "scaling_rule": "E ∝ C·V²: 180 nm/1.8 V -> 45 nm/0.9 V = (45/180)·(0.9/1.8)² = 1/16 "
                        "(constant-field scaling, Dennard et al. 1974; 0.9 V as in Horowitz ISSCC 2014)",
        "sram_pj_per_bit": params.sram_pj_per_bit,
        "sram_source": "Horowitz ISSCC 2014: 8 KB SRAM 10 pJ per 64-bit access at 45 nm, x16 to 180 nm/1.8 V by the same rule",
        "images_per_s": clock_hz / core_cycles, "us_per_image": core_cycles / clock_hz * 1e6,
        "cycles_per_image": core_cycles, "host_cycles_per_image": host_cycles,
        "gate_images": gate["images"], "gate_timesteps": gate["timesteps"], "model_timesteps": gate["model_timesteps"],
        "gate_cycles_simulated": activity.cycles, "gate_mismatches": gate["mismatches"],
        "activity_scaled": gate["timesteps"] < gate["model_timesteps"],
        "includes": "clock net (ideal, no tree) and port-driven nets in switching; memories' pin loads; no glitches (zero-delay simulation)",
        "opensta_check": power["check"],
        "memory_accesses_per_image": {m: (power["memories"].reads[m] + power["memories"].writes[m]) / activity.cycles * cycles_per_inference
                                      for m in power["memories"].widths},
        "accuracy_source": "golden model on the whole test split (bit-exact with the RTL and the netlist)",
        "source_method": rtl.extra.get("source_method", ""), "model_path": rtl.extra.get("model_path", ""),
    }
    row = ResultRow(
        method="hardware", library="gate", dataset=rtl.dataset, split_hash=rtl.split_hash, arch=rtl.arch, timesteps=rtl.timesteps,
        accuracy=float(rtl.extra.get("golden_accuracy", rtl.accuracy)), ann_accuracy=rtl.ann_accuracy,
        spikes_per_image=rtl.spikes_per_image, synops_per_image=sops, macs_per_image=rtl.macs_per_image,
        energy_per_image_j=total_j, params=rtl.params, nonzero_params=rtl.nonzero_params, weight_bits=rtl.weight_bits,
        seed=seed, mlflow_run_id=run_id, mlflow_experiment_id=experiment_id, extra=extra)
    report = {"row_extra": extra, "energy_per_cycle_j": {"logic": logic_j_cycle, "memory": memory_j_cycle},
              "memory_reads": power["memories"].reads, "memory_writes": power["memories"].writes,
              "breakdown_per_cycle_j": asdict(ours)}
    return row, report


@cli_main
def main() -> None:
    common, params = load_section(PowerParams, "power")
    synth = _read_json(SYNTH_REPORT, "synth")
    gate = _read_json(GATE_REPORT, "gate_sim")
    activity = Activity.load(ACTIVITY_PATH)
    (rtl,) = read_rows(RTL_RESULTS)
    with stage_run("power", method="hardware", library="gate", dataset=rtl.dataset, split_hash=rtl.split_hash,
                   params={"power": asdict(params), "synth": synth["hardware"]}) as run:
        power = compute_power(NETLIST_DIR, activity, synth, params, OPENSTA_DIR)
        check = power["check"]
        for key in ("switching", "leakage"):
            if check[f"{key}_rel_diff"] > params.tolerance:
                raise SpikebenchError(f"power: {key} power differs from OpenSTA by {check[f'{key}_rel_diff']:.2%} "
                                      f"(> power.tolerance {params.tolerance:.0%}); see {OPENSTA_DIR}")
        row, report = hardware_row(rtl, gate, synth, power, activity, params, common.seed, run.run_id, run.experiment_id)
        atomic_write_json(REPORT_PATH, report)
        write_rows(RESULTS_PATH, [row])
        e = row.extra
        run.log_metrics({"power_mw": e["power_mw"]["total"], "energy_per_image_j": row.energy_per_image_j,
                         "energy_per_sop_j": e["energy_per_sop_j"], "switching_rel_diff": check["switching_rel_diff"],
                         "leakage_rel_diff": check["leakage_rel_diff"]})
        run.log_artifact(REPORT_PATH, "hardware")
    print(f"power: {e['power_mw']['total']:.2f} mW at {e['clock_mhz']:g} MHz (logic {e['power_mw']['logic']:.2f}, memory "
          f"{e['power_mw']['memory']:.2f}); {row.energy_per_image_j * 1e6:.2f} µJ/inference at 180 nm "
          f"({e['energy_per_image_j_45nm'] * 1e6:.3f} µJ scaled to 45 nm), {e['energy_per_sop_j'] * 1e12:.1f} pJ/SOP; "
          f"OpenSTA: switching {check['switching_rel_diff']:.2%}, leakage {check['leakage_rel_diff']:.2%} apart, "
          f"internal x{check['internal_ratio_opensta_over_ours']:.2f} (its rise+fall rule: {check['internal_opensta_rule_rel_diff']:.1%})")


if __name__ == "__main__":
    main()
