"""Verilator: the fast simulator of the accelerator (Icarus + cocotb stay the independent cross-check).

`build_verilator` compiles the testbench (hardware/tb/snn_tb.v in its self-running mode,
+SNN_RUN) with the core into one binary, once per design and parameters (cached by a hash
of the sources, defines and parameters under hardware/build/verilator-<key>/); any model
of that configuration then runs on it, its memory images named by plusargs.
`simulate_images` splits a batch of images into chunks the testbench's batch memory holds,
runs them in parallel processes with a progress bar and returns one `CoreRun` per image,
in order. Verilator runs the RTL ~180x faster than Icarus (../shared/REFERENCE.md §3a).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import BATCH_WORDS, CoreRun, batch_plusargs, parse_results, write_batch, write_output_map
from hardware.export import input_events
from hardware.sim import BUILD_ROOT, LOG_ROOT, RTL_DIR, TB_TOP, memory_plusargs, progress_bar, rtl_sources
from hardware.synthesis.flow import require_tool
from spikebench.errors import SpikebenchError

TB_DIR = TB_TOP.parent
# Warnings the RTL and testbench raise on purpose (width casts of parameters, the
# testbench's unused ports); anything else Verilator reports still goes to the build log.
_WARNINGS_OFF = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-TIMESCALEMOD", "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT"]


@dataclass(frozen=True)
class VerilatorBuild:
    """A compiled simulator: the binary and the folder holding it and its build log."""

    binary: Path
    directory: Path


def _key(parts: list[object], sources: list[Path]) -> str:
    digest = hashlib.sha256(json.dumps([str(p) for p in parts], sort_keys=True).encode())
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_verilator(config: HardwareConfig | dict[str, int], sources: list[Path] | None = None, defines: tuple[str, ...] = (),
                    opt: str = "-O2", label: str = "rtl", testbench: Path = TB_TOP, include_dirs: tuple[Path, ...] = ()) -> VerilatorBuild:
    """Compile `testbench` (its module named as its file) + `sources` (default: the SNN RTL)
    with the Verilog parameters of `config` (a HardwareConfig or a plain dict); cached by content."""
    verilator = require_tool("verilator")
    sources = list(sources) if sources is not None else rtl_sources()
    sources = [*sources, testbench]
    include_dirs = (RTL_DIR, TB_DIR, *include_dirs)
    includes = sorted(p for d in include_dirs for p in Path(d).glob("*.vh"))
    params = config if isinstance(config, dict) else config.verilog_parameters()
    top = Path(testbench).stem
    directory = BUILD_ROOT / f"verilator-{label}-{_key([params, defines, opt, top, *_WARNINGS_OFF], sources + includes)}"
    binary = directory / f"V{top}"
    if binary.exists():
        return VerilatorBuild(binary, directory)
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "build.log"
    command = [verilator, "--binary", "--timing", "-j", str(os.cpu_count() or 1), "--top-module", top,
               "--timescale", "1ns/1ps", *_WARNINGS_OFF, *[f"-I{d}" for d in include_dirs],
               *[f"-G{k}={v}" for k, v in params.items()], *[f"-D{d}" for d in defines],
               *make_optimisation(opt), "--Mdir", str(directory / "obj"), "-o", str(binary), *map(str, sources)]
    print(f"Verilator: building {label} simulator (output in {log})", flush=True)
    started = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not binary.exists():
        raise SpikebenchError(f"Verilator could not build the {label} simulator: {first_error(log)}; full log: {log}")
    print(f"Verilator: {label} simulator built in {time.perf_counter() - started:.0f}s", flush=True)
    return VerilatorBuild(binary, directory)


def make_optimisation(fast: str, slow: str | None = None) -> list[str]:
    """Verilator arguments that compile the simulator's hot code with `fast` and its set-up code with
    `slow` (default: `fast`). verilated.mk assigns OPT_FAST and OPT_GLOBAL = -Os itself, which
    overrides -CFLAGS and the environment: only make's command line sets them."""
    return ["-MAKEFLAGS", f"OPT_FAST={fast} OPT_SLOW={slow or fast} OPT_GLOBAL={fast}"]


def first_error(log: Path) -> str:
    """The first error line of a Verilator build or simulation log (else its first line)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "%Error" in line or "error:" in line or "%Fatal" in line]
    return (errors or lines or ["no output"])[0]


def batch_chunks(images: np.ndarray, max_images: int) -> list[np.ndarray]:
    """Consecutive index chunks of at most `max_images` whose batch files fit the testbench."""
    chunks, current, words = [], [], 1
    for index, image in enumerate(images):
        size = 1 + len(input_events(image))
        if current and (len(current) == max_images or words + size > BATCH_WORDS):
            chunks.append(np.array(current))
            current, words = [], 1
        current.append(index)
        words += size
    if current:
        chunks.append(np.array(current))
    return chunks


def layout_plusargs(layout: dict) -> list[str]:
    return ["+SNN_RUN", f"+SNN_LAYERS={len(layout['layers'])}", f"+SNN_T={layout['timesteps']}", f"+SNN_VWORDS={layout['vwords']}"]


def run_chunk(build: VerilatorBuild, memdir: Path, layout: dict, images: np.ndarray, workdir: Path, log: Path) -> list[CoreRun]:
    """One simulator process on a chunk of images; raises with the log's first error if it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_batch(workdir / "batch.hex", images)
    write_output_map(workdir / "omap.hex", [tuple(o) for o in layout["outputs"]])
    command = [str(build.binary), *layout_plusargs(layout), *memory_plusargs(memdir), *batch_plusargs(workdir)]
    with open(log, "w") as out:
        done = subprocess.run(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    runs = parse_results(workdir / "results.txt") if (workdir / "results.txt").exists() else []
    if done.returncode != 0 or len(runs) != len(images):
        raise SpikebenchError(f"Verilator simulation failed ({len(runs)} of {len(images)} images, exit {done.returncode}): "
                              f"{first_error(log)}; full log: {log}")
    return runs


def simulate_images(build: VerilatorBuild, memdir: Path, layout: dict, images: np.ndarray, workers: int,
                    label: str = "rtl_sim", chunk_images: int = 250) -> tuple[list[CoreRun], float]:
    """Run `images` (uint8, (B, C, H, W)) in `workers` parallel simulator processes; (runs in order, seconds).
    A progress bar counts the images; the simulators' output goes to hardware/build/logs/<label>/."""
    chunks = batch_chunks(images, chunk_images)
    logs = LOG_ROOT / label
    logs.mkdir(parents=True, exist_ok=True)
    for stale in logs.glob("chunk*.log"):
        stale.unlink(missing_ok=True)
    print(f"{label}: {len(images)} image(s) in {len(chunks)} chunk(s) on {workers} Verilator process(es); "
          f"simulator output in {logs}/", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        wdirs = [Path(scratch) / f"chunk{i}" for i in range(len(chunks))]

        def one(i: int) -> list[CoreRun]:
            return run_chunk(build, memdir, layout, images[chunks[i]], wdirs[i], logs / f"chunk{i}.log")

        with progress_bar(len(images), label, wdirs), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one, range(len(chunks))))
    return [run for part in parts for run in part], time.perf_counter() - started
