"""Shared pytest fixture of the gate-level tests: the core synthesised once per session.

The small test configuration of the RTL tests (4 lanes) keeps yosys and Icarus fast;
imported by test_synth.py and test_gate_sim.py (same function, so one netlist per session).
"""

from __future__ import annotations

import dataclasses

import pytest

from hardware.config import SynthParams
from hardware.synthesis.flow import SynthResult, TimingResult, run_timing, synthesize
from spikebench.params import load_section, read_params_file
from tests.hardware.random_nets import TEST_CONFIG

CLOCK_MHZ = 50.0
SYNTH = dataclasses.replace(load_section(SynthParams, "synth", raw={**read_params_file(), "profile": "smoke"})[1], clock_mhz=CLOCK_MHZ)
CONSTRAINTS = SYNTH.constraints()  # the stage's slew and loads at the tests' clock


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> tuple[SynthResult, TimingResult]:
    out = tmp_path_factory.mktemp("netlist")
    result = synthesize(TEST_CONFIG, out, CLOCK_MHZ, SYNTH.sram_timing(), SYNTH.input_slew_ns)
    return result, run_timing(result, CONSTRAINTS, out)
