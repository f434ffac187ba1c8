"""Stage `power`: gate-level power and energy per inference of the selected SNN on the core.

From the netlist (`synth`), the per-net activity of the gate-level run (`gate_sim`) and the
full-T cycle and op counts of the RTL run (`rtl_sim`), with the model of
`hardware.power_model`:

* logic power from the Liberty tables at the synthesis clock (`synth.clock_mhz`, read from
  reports/hardware_synth.json) and 1.8 V, cross-checked with OpenSTA `report_power` on the
  same per-pin activity: switching and leakage must agree within `power.tolerance`;
* memory energy: accesses × width × `power.sram_pj_per_bit`;
* energy per inference = energy per simulated cycle × cycles of one inference at the model's T.

`results/hardware.json` holds one row (method hardware, library gate, not a headline row):
`hw_energy_per_image_j` is the measured 180 nm total (`hw_node`), `energy_per_image_j` the
45 nm op model as in every row; the 45 nm-scaled measurement is `extra.energy_per_image_j_45nm`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hardware.power_model import ACTIVITY_FILE, Activity, compute_power, hardware_row
from spikebench import paths
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import RowContext, read_rows, write_rows
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class PowerParams:
    sram_pj_per_bit: float = constraint(min_exclusive=0.0)      # 180 nm SRAM access energy per bit
    tolerance: float = constraint(min_exclusive=0.0, max=1.0)  # OpenSTA agreement (switching, leakage)


def read_report(path: Path, stage: str) -> dict:
    if not path.exists():
        raise SpikebenchError(f"{path}: missing; run the {stage} stage (dvc repro {stage})")
    return json.loads(path.read_text())


def check_against_opensta(check: dict, tolerance: float) -> None:
    for key in ("switching", "leakage"):
        if check[f"{key}_rel_diff"] > tolerance:
            raise SpikebenchError(f"power: {key} power differs from OpenSTA by {check[f'{key}_rel_diff']:.2%} "
                                  f"(> power.tolerance {tolerance:.0%}); see {paths.OPENSTA_DIR}")


@cli_main
def main() -> None:
    common, params = load_section(PowerParams, "power")
    synth = read_report(paths.SYNTH_REPORT, "synth")
    gate = read_report(paths.GATE_REPORT, "gate_sim")
    activity = Activity.load(paths.GATE_DIR / ACTIVITY_FILE)
    (rtl,) = read_rows(paths.RTL_RESULTS)
    with stage_run("power", method="hardware", library="gate", dataset=rtl.dataset, split_hash=rtl.split_hash,
                   params={"power": asdict(params), "synth": synth["hardware"]}) as run:
        power = compute_power(paths.NETLIST_DIR, activity, synth, params.sram_pj_per_bit, paths.OPENSTA_DIR)
        check = power["check"]
        check_against_opensta(check, params.tolerance)
        context = RowContext(rtl.dataset, rtl.split_hash, common.seed, run.stage)
        row, report = hardware_row(rtl, gate, synth, power, activity, params.sram_pj_per_bit, context)
        atomic_write_json(paths.POWER_REPORT, report)
        write_rows(paths.HARDWARE_RESULTS, [row])
        e = row.extra
        run.log_headline([row])  # hw_energy_per_image_uj
        run.log_metrics({"power_mw": e["power_mw"]["total"], "energy_per_sop_pj": e["energy_per_sop_j"] * 1e12,
                         "switching_rel_diff": check["switching_rel_diff"],
                         "leakage_rel_diff": check["leakage_rel_diff"]})
        run.log_artifact(paths.POWER_REPORT, "hardware")
    print(f"power: {e['power_mw']['total']:.2f} mW at {row.hw_clock_mhz:g} MHz (logic {e['power_mw']['logic']:.2f}, memory "
          f"{e['power_mw']['memory']:.2f}); {row.hw_energy_per_image_j * 1e6:.2f} µJ/inference at 180 nm "
          f"({e['energy_per_image_j_45nm'] * 1e6:.3f} µJ scaled to 45 nm), {e['energy_per_sop_j'] * 1e12:.1f} pJ/SOP; "
          f"OpenSTA: switching {check['switching_rel_diff']:.2%}, leakage {check['leakage_rel_diff']:.2%} apart, "
          f"internal x{check['internal_ratio_opensta_over_ours']:.2f} (its rise+fall rule: {check['internal_opensta_rule_rel_diff']:.1%})")


if __name__ == "__main__":
    main()
