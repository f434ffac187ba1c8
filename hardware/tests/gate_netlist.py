"""Shared pytest fixture of the gate-level tests: the core synthesised once per session.

The small test configuration of the RTL tests (4 lanes) keeps yosys and Icarus fast;
imported by test_synth.py and test_gate_sim.py (same function, so one netlist per session).
"""

from __future__ import annotations

import pytest

from hardware.synth.flow import Constraints, SynthResult, TimingResult, run_timing, synthesize
from hardware.tests.random_nets import TEST_CONFIG

CLOCK_MHZ = 50.0


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> tuple[SynthResult, TimingResult]:
    out = tmp_path_factory.mktemp("netlist")
    result = synthesize(TEST_CONFIG, out, CLOCK_MHZ)
    return result, run_timing(result, Constraints(clock_mhz=CLOCK_MHZ), out)
