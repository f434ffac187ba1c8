"""Stage `publish`: results/*.json -> leaderboard/LEADERBOARD.md and its plots."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from leaderboard.evaluation import Labels, LeaderboardParams, describe_rule, evaluate_rows, headline_rows, pooled_rows
from leaderboard.figures import energy_data, plot_accuracy_vs_energy, plot_accuracy_vs_timesteps, plot_sweeps, timesteps_data
from leaderboard.tables import headline_csv, render_markdown
from spikebench import paths
from spikebench.data import load_prepared
from spikebench.errors import cli_main
from spikebench.io import atomic_write_text
from spikebench.params import load_section
from spikebench.results import rows_frame
from spikebench.tracking import stage_run


def run_records(runs_dir: Path) -> dict[str, dict]:
    """stage -> the committed record of the MLflow run that produced its outputs (reports/runs/<stage>.json).

    Read for the run links only, and deliberately not a DVC dep of this stage: a stage that re-runs
    with the same results changes nothing but its run id, and that must not re-publish the page.
    """
    return {path.stem: json.loads(path.read_text()) for path in sorted(runs_dir.glob("*.json"))}


def build(result_paths: list[str], labels: list[Labels], rule: str = "min_energy_within_gap", gap: float = 0.02, *,
          out_md: Path = paths.LEADERBOARD_MD, plot_dir: Path = paths.LEADERBOARD_PLOTS, prior_art: Path = paths.PRIOR_ART,
          runs_dir: Path = paths.RUNS_DIR) -> pd.DataFrame:
    """Render the leaderboard page, its CSV, its plots and their data (for `dvc plots`) from the given results files,
    their per-image predictions and the test `labels`. Returns the headline rows."""
    frame = evaluate_rows(rows_frame(result_paths), labels)
    pooled = pooled_rows(frame)
    headline = headline_rows(pooled, rule, gap)
    prior = yaml.safe_load(prior_art.read_text()) if prior_art.exists() else {}
    plot_accuracy_vs_energy(headline, plot_dir / "accuracy_vs_energy.png")
    plot_accuracy_vs_timesteps(pooled, headline, plot_dir / "accuracy_vs_T.png")
    plot_sweeps(pooled, plot_dir / "accuracy_vs_T_sweeps.png")
    atomic_write_text(plot_dir / "accuracy_vs_T.csv", timesteps_data(pooled).to_csv(index=False))
    atomic_write_text(plot_dir / "accuracy_vs_energy.csv", energy_data(headline).to_csv(index=False))
    atomic_write_text(out_md.with_name("leaderboard.csv"), headline_csv(headline))
    atomic_write_text(out_md, render_markdown(frame, pooled, headline, prior, run_records(runs_dir), describe_rule(rule, gap)))
    return headline


@cli_main
def main() -> None:
    _, params = load_section(LeaderboardParams, "leaderboard")
    frame = rows_frame(params.results)
    datasets, splits = ",".join(sorted(set(frame.dataset))), ",".join(sorted(set(frame.split_hash)))
    with stage_run("publish", method="all", library="all", dataset=datasets, split_hash=splits, params=params) as run:
        data = load_prepared()
        headline = build(params.results, [Labels(data.dataset, data.split_hash, data.test[1].numpy())], params.headline_rule, params.headline_gap)
        run.log_metrics({"rows": len(frame), "headline_rows": len(headline)})
        for path in [paths.LEADERBOARD_MD, paths.LEADERBOARD_CSV, *sorted(paths.LEADERBOARD_PLOTS.glob("*.png"))]:
            run.log_artifact(path, "leaderboard")
    print(f"publish: {len(frame)} rows from {len(params.results)} results files -> {paths.LEADERBOARD_MD}")


if __name__ == "__main__":
    main()
