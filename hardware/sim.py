"""Build the accelerator testbench with Icarus and run cocotb test modules on it.

`build` compiles once per hardware configuration (cached by a hash of the sources and
parameters); `run_cocotb` runs a cocotb test module against the build and raises if any
cocotb test failed (the runner itself never raises on failures). Model memory images
are passed as plusargs naming the `$readmemh` files. `run_images` splits a batch of images
over parallel simulator processes (the driver `hardware.rtl_job` in each); `simulate_rtl`
is that on the RTL build.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import CoreRun, batch_plusargs, parse_results
from hardware.export import MEMORY_FILES, IntNetwork
from spikebench.errors import SpikebenchError

HARDWARE_DIR = Path(__file__).resolve().parent
RTL_DIR = HARDWARE_DIR / "rtl"
TB_TOP = HARDWARE_DIR / "tb" / "snn_tb.v"
BUILD_ROOT = HARDWARE_DIR / "build"


def rtl_sources() -> list[Path]:
    return sorted(RTL_DIR.glob("*.v"))


def _build_key(config: HardwareConfig, toplevel: str, sources: list[Path]) -> str:
    digest = hashlib.sha256(json.dumps([toplevel, config.to_dict()], sort_keys=True).encode())
    for path in [*sources, *sorted(RTL_DIR.glob("*.vh"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build(config: HardwareConfig, toplevel: str = "snn_tb", sources: list[Path] | None = None) -> Path:
    """Compile the testbench (or another toplevel) for `config`; returns the build directory."""
    from cocotb_tools.runner import get_runner

    sources = list(sources) if sources is not None else [*rtl_sources(), TB_TOP]
    build_dir = BUILD_ROOT / f"{toplevel}-{_build_key(config, toplevel, sources)}"
    if (build_dir / "sim.vvp").exists():
        return build_dir
    runner = get_runner("icarus")
    parameters = config.verilog_parameters() if toplevel == "snn_tb" else {}
    runner.build(sources=sources, includes=[RTL_DIR], hdl_toplevel=toplevel, parameters=parameters,
                 build_dir=build_dir, build_args=["-g2005"], timescale=("1ns", "1ps"))
    return build_dir


def memory_plusargs(memory_dir: str | Path) -> list[str]:
    memory_dir = Path(memory_dir).resolve()
    return [f"+SNN_{key.upper()}={memory_dir / name}" for key, name in MEMORY_FILES.items()]


def run_cocotb(build_dir: Path, test_module: str, *, toplevel: str = "snn_tb", test_dir: Path | None = None,
               plusargs: list[str] | None = None, env: dict[str, str] | None = None, seed: int | None = None) -> Path:
    """Run every cocotb test in `test_module`; raise if one failed. Returns the results file."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    runner = get_runner("icarus")
    test_dir = Path(test_dir or build_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    results = (test_dir / f"results-{test_module.rsplit('.', 1)[-1]}.xml").resolve()
    results.unlink(missing_ok=True)
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # the runner names results after it otherwise
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=test_dir, results_xml=str(results), plusargs=plusargs or [], extra_env=env or {}, seed=seed)
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    tests, failed = get_results(results)
    if tests == 0 or failed:
        raise SpikebenchError(f"{test_module}: {failed} of {tests} cocotb tests failed; see {test_dir}")
    return results


def run_images(build_dir: Path, memdir: Path, images: np.ndarray, workers: int, workdir: Path,
               dump: bool = False) -> tuple[list[CoreRun], list[Path], float]:
    """Run `images` on a build in `workers` parallel Icarus processes (`hardware.rtl_job`);
    (runs in image order, each worker's waveform dump when `dump`, seconds)."""
    chunks = [c for c in np.array_split(np.arange(len(images)), workers) if len(c)]
    started = time.perf_counter()

    def worker(index: int) -> tuple[list[CoreRun], Path]:
        wdir = Path(workdir) / f"worker{index}"
        wdir.mkdir(parents=True, exist_ok=True)
        np.save(wdir / "images.npy", images[chunks[index]])
        dump_path = wdir / "activity.vcd"
        env = {"SNN_LAYOUT": str((Path(memdir) / "layout.json").resolve()), "SNN_WORKDIR": str(wdir), "SNN_IMAGES": str(wdir / "images.npy")}
        plusargs = memory_plusargs(memdir) + batch_plusargs(wdir) + ([f"+SNN_DUMP={dump_path.resolve()}"] if dump else [])
        run_cocotb(build_dir, "hardware.rtl_job", test_dir=wdir, plusargs=plusargs, env=env)
        return parse_results(wdir / "results.txt"), dump_path

    with ThreadPoolExecutor(len(chunks)) as pool:
        parts = list(pool.map(worker, range(len(chunks))))
    return [run for part, _ in parts for run in part], [p for _, p in parts], time.perf_counter() - started


def simulate_rtl(net: IntNetwork, layout: dict, images: np.ndarray, workers: int, memdir: Path) -> tuple[list[CoreRun], float]:
    """Run `images` through the RTL in `workers` parallel Icarus processes; (runs, seconds)."""
    build_dir = build(net.config)
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        runs, _, seconds = run_images(build_dir, memdir, images, workers, Path(scratch))
    return runs, seconds
