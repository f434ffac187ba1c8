"""RTL verification (cocotb on Icarus, launched through the cocotb runner).

  * block unit tests with random vectors against Python reference models;
  * randomised networks (shapes, sparsity, weights, thresholds, reset, T) against the
    golden model, every output potential and counter of every vector;
  * membrane saturation driven hard, identical in RTL and golden model;
  * cycles fall as input sparsity rises, and stay under the stated cycle bound;
  * Verilator -Wall lint of the RTL.
This is the independent cross-check (Icarus, the small TEST_CONFIG core) of the Verilator suite
at the production parameters (test_random_production.py). The seed changes every run; it is
printed, logged by the cocotb tests and named in every failure; SPIKEBENCH_RTL_SEED=<seed> (or
SNN_SEED) repeats a run.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hardware.config import HardwareConfig
from hardware.driver import batch_plusargs
from hardware.sim import HARDWARE_DIR, RTL_DIR, build, memory_plusargs, rtl_sources, run_cocotb
from spikebench.errors import SpikebenchError
from spikebench.params import load_section
from tests.hardware.random_nets import TEST_CONFIG, rtl_seed

SEED = str(rtl_seed())   # one per session
UNIT_VECTORS = 2000      # per block, 4 blocks
RANDOM_CASES = 24        # random networks ...
RANDOM_VECTORS = 50      # ... each with this many random input images


def _run_seeded(build_dir, module: str, **kwargs) -> None:
    """run_cocotb with SNN_SEED set; a failure names the seed and how to repeat it."""
    print(f"\n{module}: seed {SEED} (SPIKEBENCH_RTL_SEED={SEED} repeats it)", flush=True)
    env = {**kwargs.pop("env", {}), "SNN_SEED": SEED}
    try:
        run_cocotb(build_dir, module, env=env, **kwargs)
    except SpikebenchError as err:
        raise AssertionError(f"seed {SEED} (repeat with SPIKEBENCH_RTL_SEED={SEED}): {err}") from None


@pytest.mark.slow
def test_blocks_match_reference_models(tmp_path):
    build_dir = build(TEST_CONFIG, toplevel="snn_units_tb", sources=[*rtl_sources(), HARDWARE_DIR / "tb" / "snn_units_tb.v"])
    _run_seeded(build_dir, "tests.hardware.cocotb_units", toplevel="snn_units_tb", test_dir=tmp_path,
                env={"SNN_UNIT_VECTORS": str(UNIT_VECTORS)})


@pytest.mark.slow
def test_random_networks_saturation_and_sparsity_match_golden(tmp_path):
    """One simulator run: random networks, the saturation case and the sparsity sweep."""
    build_dir = build(TEST_CONFIG)
    env = {"SNN_CASES": str(RANDOM_CASES), "SNN_VECTORS": str(RANDOM_VECTORS), "SNN_MEMDIR": str(tmp_path)}
    _run_seeded(build_dir, "tests.hardware.cocotb_random", test_dir=tmp_path,
                plusargs=memory_plusargs(tmp_path) + batch_plusargs(tmp_path), env=env)


def test_verilator_lint_is_clean():
    verilator = shutil.which("verilator")
    assert verilator, "verilator not installed; run make setup"
    _, stage_config = load_section(HardwareConfig, "hardware")
    for config in (stage_config, TEST_CONFIG):  # the stage's (params.yaml) and the tests' parameters
        params = [f"-G{k}={v}" for k, v in config.verilog_parameters().items()]
        result = subprocess.run([verilator, "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", "snn_core", *params,
                                 *map(str, rtl_sources())], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
