"""The leaderboard's markdown: one table per dataset, the RMP latency table, the hardware table, prior art.

Rows whose `headline` is false (sweep points, subsets, hardware figures) stay out of the
dataset tables but appear in the plots.
"""

from __future__ import annotations

import pandas as pd

MLFLOW_UI = "http://127.0.0.1:5000"


def config_label(row: pd.Series) -> str:
    """Short description of a row's configuration from its `extra` fields."""
    keys = ("config", "reset", "percentile", "threshold_scale", "mode", "density", "bits", "pooling", "control")
    extra = row["extra"] or {}
    return ", ".join(f"{k}={extra[k]}" for k in keys if k in extra)


def test_images(row: pd.Series) -> str:
    """How many test images the accuracy was measured on."""
    return f"{int(row['test_images']):,}"


def _fmt(value: float, digits: int = 0) -> str:
    return "–" if pd.isna(value) or value == 0 else f"{value:,.{digits}f}"


def run_link(record: dict | None, stage: str) -> str:
    """The row's MLflow run in the UI (`make ui`), and the committed record of that run, which survives a
    repro that skipped the stage (its run is then in the store of the machine that ran it, not in yours)."""
    if not record or not record.get("run_id"):
        return "–"
    run_id = record["run_id"]
    return f"[{run_id[:8]}]({MLFLOW_UI}/#/experiments/{record['experiment_id']}/runs/{run_id}) ([record](../reports/runs/{stage}.json))"


def dataset_table(frame: pd.DataFrame, runs: dict[str, dict]) -> str:
    """Markdown table of one dataset's leaderboard rows."""
    ann = frame[frame.method == "ann"]
    ann_accuracy = float(ann.accuracy.max()) if len(ann) else float("nan")
    ann_params = int(ann.params.iloc[0]) if len(ann) else 0
    shown = frame[frame.headline.astype(bool)]
    shown = shown.sort_values(["accuracy", "energy_per_image_j"], ascending=[False, True])
    header = ("| method | library | arch | config | T | accuracy | test images | Δ vs ANN (pp) | spikes/img | SOPs/img | MACs/img "
              "| energy/img (µJ, 45 nm) | compression | run |")
    lines = [header, "|" + "---|" * 14]
    for _, row in shown.iterrows():
        delta = (row.accuracy - ann_accuracy) * 100
        compression = ann_params / row.nonzero_params if row.nonzero_params else float("nan")
        run = run_link(runs.get(row.stage), row.stage)
        lines.append(
            f"| {row.method} | {row.library} | {row.arch} | {config_label(row) or '–'} | {row.timesteps or '–'} "
            f"| {row.accuracy * 100:.2f}% | {test_images(row)} | {delta:+.2f} | {_fmt(row.spikes_per_image)} | {_fmt(row.synops_per_image)} "
            f"| {_fmt(row.macs_per_image)} | {row.energy_per_image_j * 1e6:.3f} | {compression:.1f}× | {run} |"
        )
    return "\n".join(lines)


def prior_art_tables(prior: dict) -> str:
    lines = ["## Prior art (published, not measured here)", "", "| method | source | dataset | published result |", "|---|---|---|---|"]
    lines += [f"| {p['method']} | {p['source']} | {p['dataset']} | {p['result']} |" for p in prior.get("methods", [])]
    return "\n".join(lines)


def _energy(joules: float) -> str:
    return f"{joules * 1e6:.2f} µJ" if joules >= 1e-6 else f"{joules * 1e9:.1f} nJ"


def _range(e: dict) -> str:
    r = e.get("energy_per_image_j_range") or {}
    return f" [{_energy(r['low'])} – {_energy(r['high'])}]" if r else ""


def hardware_table(frame: pd.DataFrame, prior: dict) -> str:
    """Our accelerator measured at gate level (results/hardware.json) beside published chips."""
    lines = [
        "## SNN hardware: our accelerator (measured) and prior art (published)", "",
        "Our rows are measured at 180 nm / 1.8 V on the OSU 0.18 µm netlist: logic from the gate-level switching activity "
        "(Liberty tables, plus a wire/clock-tree allowance), memory from exact access counters over whole inferences of every "
        "RTL-simulated image × a size-dependent SRAM energy per access, SRAM leakage included. The bracket runs from our "
        "internal-power rule without wires to OpenSTA's rise+fall rule with wires and high SRAM leakage. Energy/SOP is the "
        "incremental energy of one synaptic operation (logic + memory; the slope over the simulated images, as ODIN and Loihi "
        "report it); the fixed per-inference phases are in `results/hardware.json`. The 45 nm figure is the ideal-scaling "
        "bound (×1/16, E ∝ C·V²): optimistic. Area is logic + SRAM macros (estimated from the 6T cell).", "",
        "| design | node | accuracy (dataset) | energy/inference | energy/SOP | throughput | power | area (logic + SRAM) | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in frame[(frame.method == "hardware") & (frame.library == "gate")].iterrows():
        e = row.extra or {}
        scaled = (f"; gate-level activity of T={e.get('gate_timesteps')}, energy per cycle × the RTL's cycles"
                  if e.get("activity_scaled") else "")
        lines.append(
            f"| spikebench core, {row.arch}, T={row.timesteps} (measured{scaled}) | {row.hw_node or '–'}, {e.get('voltage_v', '–')} V, "
            f"{row.hw_clock_mhz:g} MHz | {row.accuracy * 100:.2f}% ({row.dataset}) "
            f"| {_energy(row.hw_energy_per_image_j)}{_range(e)} (logic {_energy(e.get('energy_per_image_j_logic', 0))}, memory "
            f"{_energy(e.get('energy_per_image_j_memory', 0))}); 45 nm-scaled {_energy(e.get('energy_per_image_j_45nm', 0))} "
            f"| {e.get('energy_per_sop_j', 0) * 1e12:.1f} pJ (45 nm-scaled {e.get('energy_per_sop_j_45nm', 0) * 1e12:.2f} pJ) "
            f"| {e.get('images_per_s', 0):,.1f} inferences/s | {e.get('power_mw', {}).get('total', 0):.2f} mW "
            f"| {e.get('area_mm2', 0):.2f} + {e.get('sram_area_mm2', 0):.1f} mm² | this repository (hardware/power.py) |")
    lines += [
        f"| {h['chip']} (published) | {h['node']} | {h['accuracy'] or '–'} | {h['energy_per_inference'] or '–'} | {h['energy_per_sop']} "
        f"| {h.get('throughput') or '–'} | – | – | {h['source']} |"
        for h in prior.get("hardware", [])
    ]
    return "\n".join(lines + _phase_table(frame))


def _phase_table(frame: pd.DataFrame) -> list[str]:
    """Where our core spends its cycles and energy: per phase of one inference."""
    rows = frame[(frame.method == "hardware") & (frame.library == "gate")]
    phases = next((r.extra.get("energy_per_image_j_by_phase") for _, r in rows.iterrows() if r.extra), None)
    if not phases:
        return []
    total_cycles = sum(p["cycles"] for p in phases.values())
    lines = ["", "Per phase of one inference (our core; memory from the accesses each phase issued):", "",
             "| phase | cycles | share | logic | memory |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {p['cycles']:,.0f} | {p['cycles'] / total_cycles:.1%} | {_energy(p['logic_j'])} | {_energy(p['memory_j'])} |"
              for name, p in phases.items()]
    return lines


def _factor(comparison: dict) -> str:
    if comparison["factor"] is None:
        return "– (RMP does not reach it)"
    bound = "≥ " if comparison["baseline_timesteps"] is None else ""  # the baseline never reached the target
    return f"{bound}{comparison['factor']:.2f}×"


def rmp_latency_table(frame: pd.DataFrame) -> str:
    """Timesteps RMP-SNN and hard-reset SNNs need to reach the same accuracy (rmp main rows' `latency_factors`)."""
    main = [row for _, row in frame[frame.method == "rmp"].iterrows() if (row.extra or {}).get("latency_factors")]
    if not main:
        return ""
    factors = main[0].extra["latency_factors"]
    lines = [
        "## RMP-SNN latency vs hard-reset conversion", "",
        f"Timesteps needed to reach each target accuracy (ANN − gap) on the same {factors['images']:,} test images; "
        "factor = baseline T / RMP T, read at every T (the percentile conversion: on the conversion sweep's images, at powers of two only). "
        f"The paper reports 2–8×. Headline baseline: {factors['baselines'][factors['headline']]}.", "",
        "| baseline | target accuracy | RMP T | baseline T | factor |", "|---|---|---|---|---|",
    ]
    for key, label in factors["baselines"].items():
        lines += [f"| {label} | {c['target_accuracy'] * 100:.1f}% | {c['rmp_timesteps'] or '–'} | {c['baseline_timesteps'] or '–'} "
                  f"| {_factor(c)} |" for c in factors[key]]
    return "\n".join(lines)


def render_markdown(frame: pd.DataFrame, prior: dict, runs: dict[str, dict]) -> str:
    parts = [
        "# spikebench leaderboard",
        "",
        "Generated by `dvc repro` (stage `publish`) from `results/*.json`; do not edit by hand.",
        "Energy uses the 45 nm op model (E_MAC 4.6 pJ, E_AC 0.9 pJ; memory access not included).",
        "Δ vs ANN is in percentage points against the ANN baseline of the same dataset and split;",
        "compression is the ANN's parameter count over the row's non-zero parameters. `test images` is the",
        "number of test images a row's accuracy was measured on (subsets are fixed and recorded; the RTL row",
        "is the Verilog simulation of those images, and the golden model's accuracy on the whole split is in the hardware table).",
        "`run` opens the row's MLflow run in `make ui` (on the machine that ran the stage); `record` is the committed",
        "account of that run. The same rows as CSV: [`leaderboard.csv`](leaderboard.csv).",
        "",
    ]
    for dataset, group in frame.groupby("dataset", sort=True):
        split = ", ".join(sorted(group.split_hash.unique()))
        parts += [f"## {dataset} (split {split})", "", dataset_table(group, runs), ""]
    parts += ["![accuracy vs T](plots/accuracy_vs_T.png)", "", "![accuracy vs energy](plots/accuracy_vs_energy.png)", ""]
    latency = rmp_latency_table(frame)
    parts += [latency, ""] if latency else []
    parts += [hardware_table(frame, prior), ""]
    parts += [prior_art_tables(prior), ""]
    return "\n".join(parts)




CSV_COLUMNS = ["dataset", "method", "library", "arch", "timesteps", "accuracy", "test_images", "ann_accuracy", "spikes_per_image",
               "synops_per_image", "macs_per_image", "energy_per_image_j", "hw_energy_per_image_j", "params", "nonzero_params",
               "weight_bits", "seed", "split_hash", "stage", "git_commit"]


def headline_csv(frame: pd.DataFrame) -> str:
    """The headline rows of every dataset as CSV (the tables' rows, in machine-readable form)."""
    shown = frame[frame.headline.astype(bool)].sort_values(["dataset", "method", "library", "timesteps"])
    return shown[CSV_COLUMNS].to_csv(index=False)
