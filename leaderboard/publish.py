"""Stage `publish`: results/*.json -> leaderboard/LEADERBOARD.md and its plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from leaderboard.figures import plot_accuracy_vs_energy, plot_accuracy_vs_timesteps
from leaderboard.tables import render_markdown
from spikebench import paths
from spikebench.errors import cli_main
from spikebench.io import atomic_write_text
from spikebench.params import constraint, load_section
from spikebench.results import rows_frame
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class LeaderboardParams:
    results: list[str] = constraint(nonempty=True)


def build(result_paths: list[str], out_md: Path = paths.LEADERBOARD_MD, plot_dir: Path = paths.LEADERBOARD_PLOTS,
          prior_art: Path = paths.PRIOR_ART) -> pd.DataFrame:
    """Render the leaderboard page and its plots from the given results files."""
    frame = rows_frame(result_paths)
    prior = yaml.safe_load(prior_art.read_text()) if prior_art.exists() else {}
    plot_accuracy_vs_timesteps(frame, plot_dir / "accuracy_vs_T.png")
    plot_accuracy_vs_energy(frame, plot_dir / "accuracy_vs_energy.png")
    atomic_write_text(out_md, render_markdown(frame, prior))
    return frame


@cli_main
def main() -> None:
    _, params = load_section(LeaderboardParams, "leaderboard")
    frame = rows_frame(params.results)
    datasets, splits = ",".join(sorted(set(frame.dataset))), ",".join(sorted(set(frame.split_hash)))
    with stage_run("publish", method="all", library="all", dataset=datasets, split_hash=splits, params=params) as run:
        frame = build(params.results)
        run.log_metrics({"rows": len(frame)})
        for path in [paths.LEADERBOARD_MD, *sorted(paths.LEADERBOARD_PLOTS.glob("*.png"))]:
            run.log_artifact(path, "leaderboard")
    print(f"publish: {len(frame)} rows from {len(params.results)} results files -> {paths.LEADERBOARD_MD}")


if __name__ == "__main__":
    main()
