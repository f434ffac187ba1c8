"""Build the accelerator testbench with Icarus and run cocotb test modules on it.

`build` compiles once per hardware configuration (cached by a hash of the sources and
parameters); `run_cocotb` runs a cocotb test module against the build and raises if any
cocotb test failed (the runner itself never raises on failures). Model memory images
are passed as plusargs naming the `$readmemh` files. `run_images` splits a batch of images
over parallel simulator processes (the driver `hardware.rtl_job` in each), with a progress
bar (images done / total, counted from the result lines the testbench flushes per image);
`simulate_rtl` is that on the RTL build.

The console stays readable: Icarus' compile output (warnings) goes to `<build dir>/build.log`
and each simulator's output (cocotb banners, $display) to `hardware/build/logs/<label>/`,
whose path is printed once; an error names the log to read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
LOG_ROOT = BUILD_ROOT / "logs"


def rtl_sources() -> list[Path]:
    """The SNN core's Verilog (the ANN core's ann_*.v beside it is built on its own)."""
    return sorted(RTL_DIR.glob("snn_*.v"))


def _build_key(config: HardwareConfig, toplevel: str, sources: list[Path], defines: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256(json.dumps([toplevel, config.to_dict(), list(defines)], sort_keys=True).encode())
    for path in [*sources, *sorted(RTL_DIR.glob("*.vh")), *sorted(TB_TOP.parent.glob("*.vh"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build(config: HardwareConfig, toplevel: str = "snn_tb", sources: list[Path] | None = None,
          defines: tuple[str, ...] = ()) -> Path:
    """Compile the testbench (or another toplevel) for `config` with the Verilog `defines`
    (e.g. SNN_GATE_LEVEL: a netlist has no RTL names to probe); returns the build directory."""
    from cocotb_tools.runner import get_runner

    sources = list(sources) if sources is not None else [*rtl_sources(), TB_TOP]
    build_dir = BUILD_ROOT / f"{toplevel}-{_build_key(config, toplevel, sources, defines)}"
    if (build_dir / "sim.vvp").exists():
        return build_dir
    runner = get_runner("icarus")
    parameters = config.verilog_parameters() if toplevel == "snn_tb" else {}
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    print(f"Icarus: compiling {toplevel} (compiler output in {log})", flush=True)
    try:
        runner.build(sources=sources, includes=[RTL_DIR, TB_TOP.parent], hdl_toplevel=toplevel, parameters=parameters,
                     build_dir=build_dir, build_args=["-g2005", *[f"-D{d}" for d in defines]], timescale=("1ns", "1ps"), log_file=log)
    except RuntimeError as err:
        raise SpikebenchError(f"Icarus could not compile {toplevel} ({err}): {_last_line(log)}; full log: {log}") from err
    return build_dir


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return lines[-1] if lines else "no output"


def memory_plusargs(memory_dir: str | Path) -> list[str]:
    memory_dir = Path(memory_dir).resolve()
    return [f"+SNN_{key.upper()}={memory_dir / name}" for key, name in MEMORY_FILES.items()]


def run_cocotb(build_dir: Path, test_module: str, *, toplevel: str = "snn_tb", test_dir: Path | None = None,
               plusargs: list[str] | None = None, env: dict[str, str] | None = None, seed: int | None = None,
               log_file: Path | None = None) -> Path:
    """Run every cocotb test in `test_module`; raise if one failed. Returns the results file.
    The simulator's output goes to `log_file` (default `<test_dir>/sim.log`), not the console."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    runner = get_runner("icarus")
    test_dir = Path(test_dir or build_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    results = (test_dir / f"results-{test_module.rsplit('.', 1)[-1]}.xml").resolve()
    results.unlink(missing_ok=True)
    log_file = Path(log_file or test_dir / "sim.log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # the runner names results after it otherwise
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=test_dir, results_xml=str(results), plusargs=plusargs or [], extra_env=env or {}, seed=seed,
                    log_file=log_file)
    except RuntimeError as err:
        raise SpikebenchError(f"{test_module}: the simulator failed ({err}): {_last_line(log_file)}; full log: {log_file}") from err
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    tests, failed = get_results(results)
    if tests == 0 or failed:
        raise SpikebenchError(f"{test_module}: {failed} of {tests} cocotb tests failed; see {log_file}")
    return results


def _results_done(wdirs: list[Path]) -> int:
    """Images finished so far: the result lines the testbench has flushed in the workers' folders."""
    done = 0
    for wdir in wdirs:
        try:
            done += (wdir / "results.txt").read_bytes().count(b"\n")
        except FileNotFoundError:
            pass
    return done


@contextmanager
def progress_bar(total: int, label: str, wdirs: list[Path], interval: float = 1.0) -> Iterator[None]:
    """A tqdm bar (images done / total) updated from the workers' result files while the block runs."""
    from tqdm.auto import tqdm

    stop = threading.Event()
    with tqdm(total=total, desc=label, unit="img", leave=False, mininterval=interval, smoothing=0) as bar:  # rate: average since start

        def poll() -> None:
            while not stop.wait(interval):
                bar.update(min(total, _results_done(wdirs)) - bar.n)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def run_images(build_dir: Path, memdir: Path, images: np.ndarray, workers: int, workdir: Path,
               dump: bool = False, label: str = "rtl_sim") -> tuple[list[CoreRun], list[Path], float]:
    """Run `images` on a build in `workers` parallel Icarus processes (`hardware.rtl_job`);
    (runs in image order, each worker's waveform dump when `dump`, seconds). A progress bar
    named `label` counts the images; the simulators' output goes to hardware/build/logs/<label>/."""
    chunks = [c for c in np.array_split(np.arange(len(images)), workers) if len(c)]
    wdirs = [Path(workdir) / f"worker{index}" for index in range(len(chunks))]
    logs = LOG_ROOT / label
    for stale in logs.glob("worker*.log"):  # the logs of this run only
        stale.unlink(missing_ok=True)
    print(f"{label}: {len(images)} image(s) on {len(chunks)} Icarus process(es); simulator output in {logs}/", flush=True)
    started = time.perf_counter()

    def worker(index: int) -> tuple[list[CoreRun], Path]:
        wdir = wdirs[index]
        wdir.mkdir(parents=True, exist_ok=True)
        np.save(wdir / "images.npy", images[chunks[index]])
        dump_path = wdir / "activity.vcd"
        env = {"SNN_LAYOUT": str((Path(memdir) / "layout.json").resolve()), "SNN_WORKDIR": str(wdir), "SNN_IMAGES": str(wdir / "images.npy")}
        plusargs = memory_plusargs(memdir) + batch_plusargs(wdir) + ([f"+SNN_DUMP={dump_path.resolve()}"] if dump else [])
        run_cocotb(build_dir, "hardware.rtl_job", test_dir=wdir, plusargs=plusargs, env=env, log_file=logs / f"worker{index}.log")
        return parse_results(wdir / "results.txt"), dump_path

    with progress_bar(len(images), label, wdirs), ThreadPoolExecutor(len(chunks)) as pool:
        parts = list(pool.map(worker, range(len(chunks))))
    return [run for part, _ in parts for run in part], [p for _, p in parts], time.perf_counter() - started


def simulate_rtl(net: IntNetwork, layout: dict, images: np.ndarray, workers: int, memdir: Path) -> tuple[list[CoreRun], float]:
    """Run `images` through the RTL in `workers` parallel Icarus processes; (runs, seconds)."""
    build_dir = build(net.config)
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        runs, _, seconds = run_images(build_dir, memdir, images, workers, Path(scratch))
    return runs, seconds
