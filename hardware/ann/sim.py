"""Verilator runs of the ANN array (hardware/tb/ann_tb.v, self-running with +ANN_RUN).

`build` compiles the testbench and ann_*.v + snn_sram.v once per configuration (through
hardware.verilator.build_verilator, cached by content); `simulate` splits a batch of images
into chunks, runs them in parallel simulator processes under the shared progress bar and
returns one `AnnRun` per image, in order.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.ann.config import AnnHwConfig
from hardware.ann.export import MEMORY_FILES
from hardware.sim import BUILD_ROOT, LOG_ROOT, RTL_DIR, progress_bar
from hardware.verilator import VerilatorBuild, build_verilator
from spikebench.errors import ModelError, SpikebenchError

TESTBENCH = RTL_DIR.parent / "tb" / "ann_tb.v"
MEMORY_KINDS = ("desc", "act", "wmem", "bias", "out")  # the testbench's M field order
BATCH_WORDS = 2**22  # testbench parameter BQ


@dataclass
class AnnRun:
    """What the array reports for one image: logits and counters; memory: kind -> (reads, writes)
    during this image (host writes of the input and read-back of the logits included)."""

    logits: list[int]
    cycles: int
    issued: int
    skipped: int
    toggles: int
    memory: dict[str, tuple[int, int]] = field(default_factory=dict)


def sources() -> list[Path]:
    return [*sorted(RTL_DIR.glob("ann_*.v")), RTL_DIR / "snn_sram.v"]


def build(config: AnnHwConfig, opt: str = "-O2") -> VerilatorBuild:
    return build_verilator(config.verilog_parameters(), sources=sources(), opt=opt, label="ann", testbench=TESTBENCH)


def parse_results(path: Path) -> list[AnnRun]:
    """'c i s t O <logits> M <reads writes ...>' lines -> AnnRun."""
    runs = []
    for line in Path(path).read_text().splitlines():
        head, rest = line.split(" O", 1)
        logits, counts = rest.split(" M", 1)
        c, i, s, t = (int(v) for v in head.split())
        m = [int(v) for v in counts.split()]
        memory = {kind: (m[2 * k], m[2 * k + 1]) for k, kind in enumerate(MEMORY_KINDS)}
        runs.append(AnnRun([int(v) for v in logits.split()], c, i, s, t, memory))
    return runs


def write_batch(workdir: Path, images: np.ndarray) -> None:
    """head.hex (n_images, pixels per image) and batch.hex (the pixels, channel-major) for the testbench."""
    flat = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    if flat.size > BATCH_WORDS:
        raise SpikebenchError(f"{len(images)} images of {flat.shape[1]} pixels exceed the testbench batch of {BATCH_WORDS}; use smaller chunks")
    (workdir / "head.hex").write_text(f"{len(images):x}\n{flat.shape[1]:x}\n")
    (workdir / "batch.hex").write_text("\n".join(f"{v:x}" for v in flat.ravel()) + "\n")


def run_chunk(build: VerilatorBuild, memdir: Path, layout: dict, images: np.ndarray, workdir: Path, log: Path) -> list[AnnRun]:
    """One simulator process on a chunk of images; raises with the log's first line if it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_batch(workdir, images)
    memdir = Path(memdir).resolve()
    command = [str(build.binary), "+ANN_RUN", f"+ANN_LAYERS={len(layout['layers'])}", f"+ANN_NOUT={layout['outputs']}",
               *[f"+ANN_{kind.upper()}={memdir / name}" for kind, name in MEMORY_FILES.items()],
               f"+ANN_HEAD={workdir.resolve() / 'head.hex'}", f"+ANN_BATCH={workdir.resolve() / 'batch.hex'}",
               f"+ANN_OUT={workdir.resolve() / 'results.txt'}"]
    with open(log, "w") as out:
        done = subprocess.run(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    runs = parse_results(workdir / "results.txt") if (workdir / "results.txt").exists() else []
    if done.returncode != 0 or len(runs) != len(images):
        first = next((line for line in log.read_text(errors="replace").splitlines() if line.strip()), "no output")
        raise SpikebenchError(f"ANN Verilator simulation failed ({len(runs)} of {len(images)} images, exit {done.returncode}): "
                              f"{first}; full log: {log}")
    return runs


def check_images(images: np.ndarray, layout: dict) -> None:
    """uint8 (B, C, H, W) with C·H·W = the model's input words; else a one-line ModelError."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ModelError(f"images must be uint8 pixels (0..255), got {images.dtype}; convert with np.rint(x * 255).astype(np.uint8)")
    if images.ndim != 4 or int(np.prod(images.shape[1:])) != layout["input_words"] or len(images) == 0:
        raise ModelError(f"images of shape {images.shape} do not fit the exported model's input of {layout['input_words']} "
                         "pixels; pass (B, C, H, W) images of the split the model was exported for")


def simulate(build: VerilatorBuild, memdir: Path, layout: dict, images: np.ndarray, workers: int,
             label: str = "ann_rtl", chunk_images: int = 500) -> tuple[list[AnnRun], float]:
    """Run uint8 images (B, C, H, W) in `workers` parallel processes; (runs in order, seconds).
    Images that do not match the exported model are refused in one line before any simulation."""
    check_images(images, layout)
    chunks = [np.arange(i, min(i + chunk_images, len(images))) for i in range(0, len(images), chunk_images)]
    logs = LOG_ROOT / label
    logs.mkdir(parents=True, exist_ok=True)
    for stale in logs.glob("chunk*.log"):
        stale.unlink(missing_ok=True)
    print(f"{label}: {len(images)} image(s) in {len(chunks)} chunk(s) on {workers} Verilator process(es); "
          f"simulator output in {logs}/", flush=True)
    started = time.perf_counter()
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD_ROOT) as scratch:
        wdirs = [Path(scratch) / f"chunk{i}" for i in range(len(chunks))]

        def one(i: int) -> list[AnnRun]:
            return run_chunk(build, memdir, layout, images[chunks[i]], wdirs[i], logs / f"chunk{i}.log")

        with progress_bar(len(images), label, wdirs), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one, range(len(chunks))))
    return [run for part in parts for run in part], time.perf_counter() - started
