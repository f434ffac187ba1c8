"""Stage `synth`: yosys maps the accelerator core to OSU 0.18 µm cells; OpenSTA times it.

Writes the netlist and its companions into `hardware/netlist/` (gate-level Verilog with the
memories as `snn_sram` instances, yosys JSON, the OpenSTA copy, the memory macro Liberty,
logs) and `reports/hardware_synth.json` (area, cells, flops, worst slack at
`synth.clock_mhz`, f_max). The target clock must be met: a negative slack fails the stage
with the achievable frequency in the message.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hardware.config import HardwareConfig
from hardware.synth.flow import Constraints, SramTiming, run_timing, synthesize
from spikebench.errors import ParamsError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.tracking import stage_run

NETLIST_DIR = Path("hardware/netlist")
REPORT_PATH = Path("reports/hardware_synth.json")


@dataclass(frozen=True)
class SynthParams:
    clock_mhz: float = constraint(min_exclusive=0.0)      # target clock (timing must be met; power is reported at it)
    sram_access_ns: float = constraint(min_exclusive=0.0)  # assumed memory macro clock-to-data (no SRAM compiler here)
    input_slew_ns: float = constraint(min_exclusive=0.0)   # transition on the core's inputs (and the ideal clock)
    output_load_pf: float = constraint(min=0.0)           # load on every output port

    def constraints(self) -> Constraints:
        return Constraints(clock_mhz=self.clock_mhz, input_slew_ns=self.input_slew_ns, output_load_pf=self.output_load_pf)


def synthesis_report(hw: HardwareConfig, params: SynthParams, out: Path = NETLIST_DIR) -> dict:
    """Synthesise and time; the figures of reports/hardware_synth.json."""
    started = time.perf_counter()
    result = synthesize(hw, out, params.clock_mhz, SramTiming(access_ns=params.sram_access_ns), params.input_slew_ns)
    synth_seconds = time.perf_counter() - started
    timing = run_timing(result, params.constraints(), out)
    (out / "timing.rpt").write_text(timing.critical_path + "\n")
    return {
        "clock_mhz": params.clock_mhz, "worst_slack_ns": timing.worst_slack_ns, "max_clock_mhz": timing.max_clock_mhz,
        "area_um2": result.area_um2, "area_mm2": result.area_um2 * 1e-6, "cells": result.cells, "flops": result.flops,
        "cell_counts": result.cell_counts, "memories": {k: {"width": w, "addr_bits": a} for k, (w, a) in result.memories.items()},
        "memory_bits": sum(w * 2**a for w, a in result.memories.values()), "hardware": hw.to_dict(),
        "synth_seconds": round(synth_seconds, 1), "sram_access_ns": params.sram_access_ns,
        "input_slew_ns": params.input_slew_ns, "output_load_pf": params.output_load_pf,
        "technology": "OSU 0.18 um (qflow-tech-osu018), typical corner, 1.8 V, 25 C; memories excluded from area",
    }


@cli_main
def main() -> None:
    _, params = load_section(SynthParams, "synth")
    _, hw = load_section(HardwareConfig, "hardware")
    with stage_run("synth", method="hardware", library="gate", dataset="-", split_hash="-",
                   params={"synth": asdict(params), "hardware": hw.to_dict()}) as run:
        report = synthesis_report(hw, params)
        run.log_metrics({k: report[k] for k in ("area_um2", "cells", "flops", "worst_slack_ns", "max_clock_mhz", "synth_seconds")})
        if report["worst_slack_ns"] < 0:
            raise ParamsError(f"params.yaml: synth.clock_mhz={params.clock_mhz:g} misses timing (worst slack "
                              f"{report['worst_slack_ns']:.3f} ns); lower it to at most {report['max_clock_mhz']:.1f} MHz")
        atomic_write_json(REPORT_PATH, report)
        run.log_artifact(REPORT_PATH, "hardware")
        run.log_artifact(NETLIST_DIR / "timing.rpt", "hardware")
    print(f"synth: {report['cells']:,} cells ({report['flops']:,} flops), {report['area_mm2']:.3f} mm² logic, "
          f"slack {report['worst_slack_ns']:.2f} ns at {params.clock_mhz:g} MHz (f_max {report['max_clock_mhz']:.1f} MHz), "
          f"yosys {report['synth_seconds']:.0f}s")


if __name__ == "__main__":
    main()
