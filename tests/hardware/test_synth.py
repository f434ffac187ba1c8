"""Synthesis (yosys → OSU 0.18 µm) and OpenSTA timing of the core; tool errors."""

from __future__ import annotations

import re

import pytest

from hardware.synthesis.flow import LIBERTY, ToolError, require_technology, require_tool
from hardware.synthesis.liberty import read_liberty
from tests.hardware.gate_netlist import CLOCK_MHZ, synthesized  # noqa: F401  (session fixture)
from tests.hardware.random_nets import TEST_CONFIG


@pytest.mark.slow
def test_core_maps_to_osu_cells_with_memories_outside_and_meets_timing(synthesized):  # noqa: F811
    result, timing = synthesized
    library = read_liberty(LIBERTY)
    assert set(result.cell_counts) - {"snn_sram"} <= set(library.cells)       # only library cells ...
    assert result.cell_counts["snn_sram"] == 5 + 3 * TEST_CONFIG.lanes       # ... and every memory left as a black box
    assert result.cells > 1000 and 0 < result.flops < result.cells
    assert result.area_um2 == pytest.approx(sum(library.cells[c].area * n for c, n in result.cell_counts.items() if c != "snn_sram"))
    assert sum(result.cell_counts.get(b, 0) for b in ("BUFX2", "BUFX4")) > 0  # abc buffered the high fan-out nets
    netlist = result.netlist.read_text()
    assert "u_wmem" in netlist and not re.search(r"\breg\b", netlist)      # flops are cells, memories are instances
    assert timing.worst_slack_ns >= 0, timing.critical_path[-2000:]
    assert timing.max_clock_mhz == pytest.approx(1e3 / (1e3 / CLOCK_MHZ - timing.worst_slack_ns))
    assert "slack (MET)" in timing.critical_path


@pytest.mark.parametrize(("tool", "package"), [("yosys", "yosys"), ("iverilog", "iverilog"), ("sta", "opensta")])
def test_missing_eda_tool_names_the_apt_package(tool, package, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=rf"^{tool}: .*apt-get install {package}") as err:
        require_tool(tool)
    assert "\n" not in str(err.value)


def test_missing_cell_library_names_the_apt_package(monkeypatch, tmp_path):
    monkeypatch.setattr("hardware.synthesis.flow.LIBERTY", tmp_path / "missing.lib")
    with pytest.raises(ToolError, match="apt-get install qflow-tech-osu018"):
        require_technology()
