"""Stage `publish`: results/*.json -> leaderboard/LEADERBOARD.md and its plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from leaderboard.figures import energy_data, plot_accuracy_vs_energy, plot_accuracy_vs_timesteps, timesteps_data
from leaderboard.tables import headline_csv, render_markdown
from spikebench import paths
from spikebench.errors import cli_main
from spikebench.io import atomic_write_text
from spikebench.params import constraint, load_section
from spikebench.results import rows_frame
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class LeaderboardParams:
    results: list[str] = constraint(nonempty=True)


def run_records(runs_dir: Path) -> dict[str, dict]:
    """stage -> the committed record of the MLflow run that produced its outputs (reports/runs/<stage>.json).

    Read for the run links only, and deliberately not a DVC dep of this stage: a stage that re-runs
    with the same results changes nothing but its run id, and that must not re-publish the page.
    """
    return {path.stem: json.loads(path.read_text()) for path in sorted(runs_dir.glob("*.json"))}


def build(result_paths: list[str], out_md: Path = paths.LEADERBOARD_MD, plot_dir: Path = paths.LEADERBOARD_PLOTS,
          prior_art: Path = paths.PRIOR_ART, runs_dir: Path = paths.RUNS_DIR) -> pd.DataFrame:
    """Render the leaderboard page, its CSV, its plots and their data (for `dvc plots`) from the given results files."""
    frame = rows_frame(result_paths)
    prior = yaml.safe_load(prior_art.read_text()) if prior_art.exists() else {}
    plot_accuracy_vs_timesteps(frame, plot_dir / "accuracy_vs_T.png")
    plot_accuracy_vs_energy(frame, plot_dir / "accuracy_vs_energy.png")
    atomic_write_text(plot_dir / "accuracy_vs_T.csv", timesteps_data(frame).to_csv(index=False))
    atomic_write_text(plot_dir / "accuracy_vs_energy.csv", energy_data(frame).to_csv(index=False))
    atomic_write_text(out_md.with_name("leaderboard.csv"), headline_csv(frame))
    atomic_write_text(out_md, render_markdown(frame, prior, run_records(runs_dir)))
    return frame


@cli_main
def main() -> None:
    _, params = load_section(LeaderboardParams, "leaderboard")
    frame = rows_frame(params.results)
    datasets, splits = ",".join(sorted(set(frame.dataset))), ",".join(sorted(set(frame.split_hash)))
    with stage_run("publish", method="all", library="all", dataset=datasets, split_hash=splits, params=params) as run:
        frame = build(params.results)
        run.log_metrics({"rows": len(frame)})
        for path in [paths.LEADERBOARD_MD, paths.LEADERBOARD_CSV, *sorted(paths.LEADERBOARD_PLOTS.glob("*.png"))]:
            run.log_artifact(path, "leaderboard")
    print(f"publish: {len(frame)} rows from {len(params.results)} results files -> {paths.LEADERBOARD_MD}")


if __name__ == "__main__":
    main()
