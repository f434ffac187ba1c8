"""What the RTL run reports: the simulated images' counters and the result row.

`rtl_row` turns the simulated images into the `results/hardware_rtl.json` row: the RTL's
own accuracy over the simulated images (the whole test split by default), the op counts
the core's counters reported, `energy_per_image_j` from the 45 nm op model on those counts
(as every row), the measured cycles in `hw_cycles_per_image`, the nominal clock
(`synth.clock_mhz`, the clock the design must meet) in `hw_clock_mhz`, and the cycles per
phase and per layer. The cycle bound is the one of hardware/README.md ('Cycle model').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hardware.config import HardwareConfig
from hardware.driver import PHASES
from hardware.export import IntNetwork
from hardware.golden import GoldenResult
from spikebench.energy import OpCounts, count_params
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, RowContext
from spikebench.spiking import load_snn

if TYPE_CHECKING:
    from hardware.driver import CoreRun


def cycle_overhead(layout: dict, timesteps: int) -> int:
    """Cycles outside the synaptic streams (hardware/README.md, 'Cycle model')."""
    lanes = layout["config"]["lanes"]
    per_step = sum(entry["fire_n"] + (lanes + 12 if i else 8) for i, entry in enumerate(layout["layers"]))
    return timesteps * per_step + layout["vwords"] + 16


@dataclass
class RtlRuns:
    """The simulated images' counters as arrays (one entry per image)."""

    cycles: np.ndarray
    sops: np.ndarray
    macs: np.ndarray
    spikes: np.ndarray
    predictions: np.ndarray
    phase_cycles: dict[str, np.ndarray]  # per phase of the state machine (hardware.driver.PHASES)
    layer_cycles: np.ndarray             # (images, layers): event and fire cycles of each layer

    @classmethod
    def of(cls, runs: list[CoreRun]) -> RtlRuns:
        def column(key: str) -> np.ndarray:
            return np.array([getattr(r, key) for r in runs], dtype=np.float64)

        phases = {name: np.array([r.phase_cycles.get(name, 0) for r in runs], dtype=np.float64) for name in PHASES}
        return cls(column("cycles"), column("sops"), column("macs"), column("spikes"),
                   np.array([int(np.argmax(r.potentials)) for r in runs]), phases,
                   np.array([r.layer_cycles for r in runs], dtype=np.float64))

    @property
    def ops(self) -> OpCounts:
        return OpCounts(float(self.spikes.mean()), float(self.sops.mean()), float(self.macs.mean()))


@dataclass(frozen=True)
class GoldenCheck:
    """The golden model on the whole test split, and on the images simulated."""

    accuracy: float          # whole test split
    test_images: int
    predictions: np.ndarray  # the class of every test image (whole split): the hardware row's predictions
    head: GoldenResult       # the simulated images, with op counts (what the RTL must reproduce)
    count: int               # images simulated on the RTL (the first of the split)


def rtl_extra(rtl: RtlRuns, golden: GoldenCheck, labels: np.ndarray, layout: dict, net: IntNetwork, selected: dict,
              clock_mhz: float) -> dict:
    """The row's `extra`: cycle bound, latency at the nominal clock, quantisation cost, simulation speed."""
    hw = net.config
    count = golden.count
    mean_cycles = float(rtl.cycles.mean())
    bound = 2 * (rtl.sops + rtl.macs) / hw.lanes + cycle_overhead(layout, net.timesteps)
    return {
        "images": count,
        "mismatches": 0,
        "cycles_max_per_image": int(rtl.cycles.max()),
        "cycle_bound_ratio_max": float((rtl.cycles / bound).max()),
        "phase_cycles_per_image": {name: float(c.mean()) for name, c in rtl.phase_cycles.items()},
        "layer_cycles_per_image": [float(c) for c in rtl.layer_cycles.mean(axis=0)[: len(layout["layers"])]],
        "images_per_s": clock_mhz * 1e6 / mean_cycles,
        "us_per_image": mean_cycles / clock_mhz,
        "lanes": hw.lanes,
        "membrane_bits": hw.membrane_bits,
        "golden_accuracy": golden.accuracy,
        "golden_test_images": golden.test_images,
        "golden_accuracy_on_images": float((golden.head.predictions[:count] == labels[:count]).mean()),
        "float_accuracy": float(selected["accuracy"]),
        "quantisation_cost_pp": (float(selected["accuracy"]) - golden.accuracy) * 100,
        "source_method": selected["method"],
        "config": f"P={hw.lanes}, k={hw.weight_bits}",
        "bits": hw.weight_bits,
    }


def rtl_row(context: RowContext, rtl: RtlRuns, golden: GoldenCheck, labels: np.ndarray, layout: dict, net: IntNetwork,
            selected: dict, clock_mhz: float) -> ResultRow:
    """The `results/hardware_rtl.json` row (parameters: the selected checkpoint's synaptic layers)."""
    hw: HardwareConfig = net.config
    count = golden.count
    snn, _ = load_snn(selected["model_path"])
    return context.row(
        "hardware", "rtl", f"{selected['arch']} ({selected['method']})", timesteps=net.timesteps,
        accuracy=float((rtl.predictions == labels[:count]).mean()), test_images=count,
        ann_accuracy=float(selected["ann_accuracy"]), ops=rtl.ops, params=count_params(snn), weight_bits=hw.weight_bits,
        predictions=Predictions.of(rtl.predictions), headline=False, model_path=selected["model_path"],
        hw_cycles_per_image=float(rtl.cycles.mean()), hw_clock_mhz=clock_mhz,
        extra=rtl_extra(rtl, golden, labels, layout, net, selected, clock_mhz))
