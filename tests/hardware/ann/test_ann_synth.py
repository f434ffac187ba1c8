"""The ANN array through the SNN core's synthesis flow (yosys -> OSU 0.18 um cells, OpenSTA):
a one-lane array maps, keeps its memories as snn_sram macros and meets the nominal clock."""

from __future__ import annotations

import pytest

from hardware.ann.config import AnnHwConfig
from hardware.ann.synth import synthesis_report
from hardware.config import SynthParams

pytestmark = pytest.mark.slow  # yosys and OpenSTA


def test_one_lane_array_synthesises_and_meets_the_clock(tmp_path) -> None:
    config = AnnHwConfig(macs=1, weight_bits=4, acc_bits=20, act_addr_bits=13, weight_addr_bits=4, bias_addr_bits=2,
                         out_addr_bits=2, layer_addr_bits=1)
    params = SynthParams(clock_mhz=50.0, sram_access_ns=2.5, input_slew_ns=0.1, output_load_pf=0.02)
    report = synthesis_report(config, params, tmp_path)
    assert set(report["memories"]) == {"u_desc", "u_act", "u_wmem", "u_bias", "u_out"}
    assert report["memories"]["u_wmem"] == {"width": 4, "addr_bits": 4}
    assert report["cells"] > 100 and report["flops"] > 50
    assert report["worst_slack_ns"] > 0, report["max_clock_mhz"]
    assert "module ann_core" in (tmp_path / "ann_core.v").read_text()
