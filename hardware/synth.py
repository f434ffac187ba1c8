"""Stage `synth`: yosys maps the accelerator core to OSU 0.18 µm cells; OpenSTA times it.

Writes the netlist and its companions into `hardware/netlist/` (gate-level Verilog with the
memories as `snn_sram` instances, yosys JSON, the OpenSTA copy, the memory macro Liberty,
logs) and `reports/hardware_synth.json` (area, cells, flops, worst slack at
`synth.clock_mhz`, f_max); the flow is `hardware.synthesis`. The target clock must be met:
a negative slack fails the stage with the achievable frequency in the message.
"""

from __future__ import annotations

from dataclasses import asdict

from hardware.config import HardwareConfig, SynthParams
from hardware.synthesis.flow import synthesis_report
from spikebench import paths
from spikebench.errors import ParamsError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import load_section
from spikebench.tracking import stage_run


@cli_main
def main() -> None:
    _, params = load_section(SynthParams, "synth")
    _, hw = load_section(HardwareConfig, "hardware")
    with stage_run("synth", method="hardware", library="gate", dataset="-", split_hash="-",
                   params={"synth": asdict(params), "hardware": hw.to_dict()}) as run:
        report = synthesis_report(hw, params, paths.NETLIST_DIR)
        synth_seconds = report.pop("synth_seconds")  # timings go to MLflow only, never into a file other stages read
        run.log_metrics({k: report[k] for k in ("area_um2", "cells", "flops", "worst_slack_ns", "max_clock_mhz")} | {"synth_seconds": synth_seconds})
        if report["worst_slack_ns"] < 0:
            raise ParamsError(f"params.yaml: synth.clock_mhz={params.clock_mhz:g} misses timing (worst slack "
                              f"{report['worst_slack_ns']:.3f} ns); lower it to at most {report['max_clock_mhz']:.1f} MHz")
        atomic_write_json(paths.SYNTH_REPORT, report)
        run.log_artifact(paths.SYNTH_REPORT, "hardware")
        run.log_artifact(paths.NETLIST_DIR / "timing.rpt", "hardware")
    print(f"synth: {report['cells']:,} cells ({report['flops']:,} flops), {report['area_mm2']:.3f} mm² logic, "
          f"slack {report['worst_slack_ns']:.2f} ns at {params.clock_mhz:g} MHz (f_max {report['max_clock_mhz']:.1f} MHz), "
          f"yosys {synth_seconds:.0f}s")


if __name__ == "__main__":
    main()
