"""The leaderboard's markdown: one table per dataset, the RMP latency table, the hardware table, prior art.

Rows whose `headline` is false (sweep points, subsets, hardware figures) stay out of the
dataset tables but appear in the plots.
"""

from __future__ import annotations

import pandas as pd

from spikebench.results import CONFIG_KEYS, METHODS

MLFLOW_UI = "http://127.0.0.1:5000"


def config_label(row: pd.Series) -> str:
    """Short description of a row's configuration from its `extra` fields."""
    extra = row["extra"] or {}
    return ", ".join(f"{k}={extra[k]}" for k in CONFIG_KEYS if k in extra)


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


def _accuracy(row: pd.Series) -> str:
    return f"{row.acc * 100:.2f}% [{row.ci_low * 100:.2f}, {row.ci_high * 100:.2f}]"


def _seeds(row: pd.Series) -> str:
    if row.seeds > 1:
        return f"{row.seed_mean * 100:.2f} ± {row.seed_sd * 100:.2f} ({row.seeds} seeds)"
    return f"1 (seed {row.seed})"


def _delta(row: pd.Series) -> str:
    return "–" if pd.isna(row.delta_pp) else f"{row.delta_pp:+.2f}"


def _p_value(row: pd.Series) -> str:
    if pd.isna(row.p_value):
        return "–"
    return "< 0.001" if row.p_value < 0.001 else f"{row.p_value:.3f}"


def _hardware_energy(row: pd.Series, frame: pd.DataFrame) -> str:
    """The gate-level energy of the row's model, where our accelerator measured it."""
    gate = frame[(frame.method == "hardware") & (frame.library == "gate") & frame.hw_energy_per_image_j.notna()]
    match = gate[gate.model_path == row.model_path] if row.model_path else gate.iloc[0:0]
    if row.method == "hardware" and row.library == "gate":
        match = gate.loc[[row.name]] if row.name in gate.index else match
    if not len(match):
        return "–"
    hw = match.iloc[0]
    return f"{hw.hw_energy_per_image_j * 1e6:,.1f} ({hw.hw_node.split(' ')[0]} nm)" if hw.hw_node else f"{hw.hw_energy_per_image_j * 1e6:,.1f}"


def _checked(row: pd.Series, frame: pd.DataFrame) -> str:
    """Hardware row: test images the RTL and the netlist reproduced bit-exactly."""
    if row.method != "hardware":
        return "–"
    rtl = frame[(frame.method == "hardware") & (frame.library == "rtl") & (frame.model_path == row.model_path)]
    rtl_images = f"{int(rtl.test_images.iloc[0]):,}" if len(rtl) else "–"
    gate_images = (row.extra or {}).get("gate_images")
    return f"{rtl_images} / {int(gate_images):,}" if gate_images else f"{rtl_images} / –"


def _ordered(rows: pd.DataFrame) -> pd.DataFrame:
    """A fixed method order (METHODS), then library and T: never by accuracy."""
    order = {m: i for i, m in enumerate(METHODS)}
    return rows.assign(_order=rows.method.map(order)).sort_values(["_order", "library", "timesteps"]).drop(columns="_order")


def dataset_table(headline: pd.DataFrame, frame: pd.DataFrame, runs: dict[str, dict]) -> str:
    """Markdown table of one dataset's headline rows (one per method, all on the whole test split)."""
    ann = frame[frame.method == "ann"]
    ann_params = int(ann.params.iloc[0]) if len(ann) else 0
    header = ("| method | library | arch | config | T | accuracy [95% CI] | seeds: mean ± sd | Δ vs ANN (pp, same images) | p (McNemar) "
              "| spikes/img | SOPs/img | MACs/img | energy/img (µJ, 45 nm op model) | energy/img on our hardware (µJ, gate level) "
              "| params | compression | RTL / netlist-checked images | run |")
    lines = [header, "|" + "---|" * 18]
    for _, row in _ordered(headline).iterrows():
        compression = ann_params / row.nonzero_params if row.nonzero_params else float("nan")
        lines.append(
            f"| {row.method} | {row.library} | {row.arch} | {config_label(row) or '–'} | {row.timesteps or '–'} "
            f"| {_accuracy(row)} | {_seeds(row)} | {_delta(row)} | {_p_value(row)} | {_fmt(row.spikes_per_image)} "
            f"| {_fmt(row.synops_per_image)} | {_fmt(row.macs_per_image)} | {row.energy_per_image_j * 1e6:.3f} "
            f"| {_hardware_energy(row, frame)} | {int(row.nonzero_params):,} | {compression:.1f}× | {_checked(row, frame)} "
            f"| {run_link(runs.get(row.stage), row.stage)} |"
        )
    return "\n".join(lines)


def detail_tables(pooled: pd.DataFrame, headline: pd.DataFrame) -> str:
    """Every other row (other T, sweeps, subsets, library re-runs, parity), one table per method, each paired with
    the ANN on its own images."""
    rest = pooled.drop(index=[i for i in headline.index if i in pooled.index])
    if not len(rest):
        return ""
    parts = ["Every row not in the headline table: the other T of each configuration, sweeps, fixed test subsets, the same "
             "models re-run in other libraries, and the hardware's RTL run. Each is compared with the ANN **on its own images** "
             "(`ANN same images`); an accuracy on a subset is not comparable with a whole-split one.", ""]
    for method, rows in _ordered(rest).groupby("method", sort=False):
        parts += [f"<details><summary>{method}: {len(rows)} rows</summary>", "",
                  "| library | arch | config | T | test images | accuracy [95% CI] | ANN same images | Δ (pp) | p (McNemar) | SOPs/img "
                  "| energy/img (µJ, 45 nm op) |", "|" + "---|" * 11]
        parts += [f"| {r.library} | {r.arch} | {config_label(r) or '–'} | {r.timesteps or '–'} | {int(r.images):,} | {_accuracy(r)} "
                  f"| {'–' if pd.isna(r.ann_acc_same) else f'{r.ann_acc_same * 100:.2f}%'} | {_delta(r)} | {_p_value(r)} "
                  f"| {_fmt(r.synops_per_image)} | {r.energy_per_image_j * 1e6:.3f} |" for _, r in rows.iterrows()]
        parts += ["", "</details>", ""]
    return "\n".join(parts)


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


def render_markdown(frame: pd.DataFrame, pooled: pd.DataFrame, headline: pd.DataFrame, prior: dict, runs: dict[str, dict],
                    rule: str) -> str:
    """The whole page: `frame` is every evaluated row, `pooled` one row per configuration over seeds, `headline` the chosen ones."""
    parts = [
        "# spikebench leaderboard",
        "",
        "Generated by `dvc repro` (stage `publish`) from `results/*.json` and the per-image predictions in `reports/predictions/`; "
        "do not edit by hand. Every accuracy, interval and Δ below is recomputed from those predictions.",
        "",
        f"- **Headline rows**: one per method, chosen by the rule in `params.yaml` (`leaderboard.headline`): {rule}. "
        "Every headline accuracy is on the **whole test split**; subset rows are only in the detail tables.",
        "- **Accuracy** with its 95% Wilson interval; with several seeds (`-S 'seeds=[0,1,2]'`), pooled over the seeds' images, "
        "and the per-seed mean ± sd beside it. The default run trains one seed; the trained headline methods over three seeds "
        "are in [`reports/seeds.md`](../reports/seeds.md) (`make seeds`).",
        "- **Δ vs ANN** in percentage points against the ANN baseline **on the same test images**, with the exact McNemar "
        "p-value of the paired difference (the images one gets right and the other wrong).",
        "- **Energy** uses the 45 nm op model (E_MAC 4.6 pJ, E_AC 0.9 pJ; memory access not included); the gate-level column is "
        "our accelerator's measured energy at 180 nm (see the hardware table) where a row's model was run on it.",
        "- **Hardware row**: the accuracy is the integer golden model's on the whole split; the RTL (Verilator) and the "
        "netlist reproduce it bit-exactly on the images counted in `RTL / netlist-checked images`.",
        "- Compression is the ANN's parameter count over the row's non-zero parameters.",
        "- `run` opens the row's MLflow run: start the UI with `make ui` (on the machine that ran the stage) and follow the link; "
        "`record` is the committed account of that run. The headline rows as CSV: [`leaderboard.csv`](leaderboard.csv).",
        "",
    ]
    for dataset, group in frame.groupby("dataset", sort=True):
        split = ", ".join(sorted(group.split_hash.unique()))
        parts += [f"## {dataset} (split {split})", "", dataset_table(headline[headline.dataset == dataset], group, runs), ""]
        parts += ["![accuracy vs energy](plots/accuracy_vs_energy.png)", "", "![accuracy vs T](plots/accuracy_vs_T.png)", "",
                  "![accuracy vs T, every configuration](plots/accuracy_vs_T_sweeps.png)", ""] if dataset == sorted(set(frame.dataset))[0] else []
        parts += [f"### {dataset}: detail", "", detail_tables(pooled[pooled.dataset == dataset], headline[headline.dataset == dataset]), ""]
    latency = rmp_latency_table(frame)
    parts += [latency, ""] if latency else []
    parts += [hardware_table(frame, prior), ""]
    parts += [prior_art_tables(prior), ""]
    return "\n".join(parts)


CSV_COLUMNS = ["dataset", "method", "library", "arch", "config", "timesteps", "acc", "ci_low", "ci_high", "images", "seeds", "seed_mean",
               "seed_sd", "ann_acc_same", "delta_pp", "p_value", "spikes_per_image", "synops_per_image", "macs_per_image",
               "energy_per_image_j", "hw_energy_per_image_j", "params", "nonzero_params", "weight_bits", "seed", "split_hash", "stage",
               "git_commit"]


def headline_csv(headline: pd.DataFrame) -> str:
    """The headline rows of every dataset as CSV (the tables' rows, in machine-readable form)."""
    shown = _ordered(headline).sort_values("dataset", kind="stable")
    return shown.assign(config=[config_label(r) for _, r in shown.iterrows()])[CSV_COLUMNS].to_csv(index=False)


def seeds_table(frame: pd.DataFrame, headline: pd.DataFrame) -> str:
    """Each headline configuration trained with several seeds: the accuracy of every seed on the whole split,
    their mean ± sd, the pooled interval and the pooled paired Δ vs the ANN of the same seeds. A seed's row is
    found as `pooled_rows` found it (`seed_groups`: not by architecture, which a seed may prune differently);
    the arch column is the first seed's."""
    from leaderboard.evaluation import seed_groups

    seeds = sorted(int(s) for s in frame.seed.unique())
    group_of = {index: group for _, group in seed_groups(frame) for index in group.index}
    lines = ["| method | arch | config | T | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd | pooled [95% CI] "
             "| Δ vs ANN (pp, pooled, same images) | p (McNemar) |", "|" + "---|" * (8 + len(seeds))]
    for index, chosen in _ordered(headline).iterrows():
        per_seed = {int(r.seed): r.acc for _, r in group_of[index].iterrows()}
        cells = " | ".join(f"{per_seed[s] * 100:.2f}%" if s in per_seed else "–" for s in seeds)
        spread = f"{chosen.seed_mean * 100:.2f} ± {chosen.seed_sd * 100:.2f}" if chosen.seeds > 1 else "– (1 seed)"
        lines.append(f"| {chosen.method} | {chosen.arch} | {config_label(chosen) or '–'} | {chosen.timesteps or '–'} | {cells} "
                     f"| {spread} | {_accuracy(chosen)} | {_delta(chosen)} | {_p_value(chosen)} |")
    return "\n".join(lines)
