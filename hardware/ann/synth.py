"""Synthesis of the ANN array with the SNN core's flow: the same yosys script and OpenSTA
script (hardware/synthesis/synth.ys, sta.tcl, their top module renamed), the same OSU
0.18 µm cells, the same memory macro Liberty and timing constraints (hardware.synthesis.flow).
The memories stay `snn_sram` black boxes, charged per access by the SRAM model.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from hardware.ann.config import AnnHwConfig
from hardware.config import SynthParams
from hardware.synthesis.flow import (
    LIBERTY,
    RTL_DIR,
    SRAM_RTL,
    SYNTH_DIR,
    SynthResult,
    ToolError,
    memory_instances,
    require_technology,
    run_tool,
    write_sdc,
    write_sram_liberty,
    write_sta_netlist,
)
from hardware.synthesis.liberty import read_liberty

TOP = "ann_core"


def _script(config: AnnHwConfig, out: Path, period_ns: float) -> str:
    template = (SYNTH_DIR / "synth.ys").read_text().replace("snn_core", TOP)
    chparam = "\n".join(f"chparam -set {k} {v} {TOP}" for k, v in config.verilog_parameters().items())
    (out / "abc.constr").write_text("set_driving_cell INVX1\nset_load 0.02\n")  # as the SNN flow
    sources = " ".join(str(p) for p in sorted(RTL_DIR.glob("ann_*.v")))
    return template.format(period_ps=int(round(period_ns * 1000)), abc_constr=out / "abc.constr", liberty=LIBERTY, sram=SRAM_RTL,
                           rtl_dir=RTL_DIR, sources=sources, chparam=chparam, stat_json=out / "stat.json",
                           netlist=out / f"{TOP}.v", netlist_json=out / f"{TOP}.json")


def synthesize(config: AnnHwConfig, out: Path, params: SynthParams) -> SynthResult:
    """Map ann_core for `config` into `out` (netlist, JSON, stats, the memories' macro Liberty)."""
    require_technology()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.ys").write_text(_script(config, out, 1e3 / params.clock_mhz))
    run_tool(["yosys", "-q", "-s", str(out / "synth.ys")], out / "yosys.log", "yosys synthesis of ann_core")
    stat = json.loads((out / "stat.json").read_text())["modules"][f"\\{TOP}"]
    counts = {k.lstrip("\\"): int(v) for k, v in stat["num_cells_by_type"].items()}
    memories = memory_instances(out / f"{TOP}.json", top=TOP)
    liberty = out / "snn_sram_macros.lib"
    write_sram_liberty(liberty, set(memories.values()), params.sram_timing(), params.input_slew_ns)
    write_sta_netlist(out / f"{TOP}.v", out / f"{TOP}_sta.v")
    cells = read_liberty(LIBERTY).cells
    return SynthResult(netlist=out / f"{TOP}.v", netlist_json=out / f"{TOP}.json", sta_netlist=out / f"{TOP}_sta.v",
                       sram_liberty=liberty, area_um2=sum(cells[k].area * v for k, v in counts.items() if k in cells),
                       cells=sum(v for k, v in counts.items() if k != "snn_sram"),
                       flops=sum(v for k, v in counts.items() if k.startswith("DFF")), cell_counts=counts, memories=memories)


def worst_slack(result: SynthResult, params: SynthParams, out: Path) -> float:
    """OpenSTA worst setup slack (ns) at `params.clock_mhz`, with the SNN flow's SDC."""
    out = Path(out).resolve()
    write_sdc(out / "constraints.sdc", params.constraints())
    script = (SYNTH_DIR / "sta.tcl").read_text().replace("snn_core", TOP).format(
        liberty=LIBERTY, sram_liberty=result.sram_liberty, netlist=result.sta_netlist, sdc=out / "constraints.sdc")
    (out / "sta.tcl").write_text(script + "exit\n")
    text = run_tool(["sta", "-no_init", "-no_splash", "-exit", str(out / "sta.tcl")], out / "sta.log", "OpenSTA timing of ann_core")
    (out / "timing.rpt").write_text(text)
    match = re.search(r"SPIKEBENCH_WNS\s+(-?[0-9.eE+-]+)", text)
    if match is None:
        raise ToolError(f"OpenSTA timing of ann_core: no worst slack in the report; see {out / 'sta.log'}")
    return float(match.group(1))


def synthesis_report(config: AnnHwConfig, params: SynthParams, out: Path) -> dict:
    """Area, cells, flops, memories and timing of ann_core at the nominal clock."""
    started = time.perf_counter()
    result = synthesize(config, out, params)
    seconds = time.perf_counter() - started
    slack = worst_slack(result, params, out)
    period = 1e3 / params.clock_mhz
    return {"clock_mhz": params.clock_mhz, "worst_slack_ns": slack, "max_clock_mhz": 1e3 / (period - slack),
            "area_um2": result.area_um2, "area_mm2": result.area_um2 * 1e-6, "cells": result.cells, "flops": result.flops,
            "memories": {k: {"width": w, "addr_bits": a} for k, (w, a) in result.memories.items()},
            "config": config.to_dict(), "synth_seconds": round(seconds, 1),
            "technology": "OSU 0.18 um (qflow-tech-osu018), typical corner, 1.8 V, 25 C; memories excluded from area"}
