"""Stage `seeds`: the trained stages once more for every extra training seed, on the same split.

The main stages train with `seed`. For every other seed in the top-level `seeds` list, the
stages in `seed_runs.stages` (in the order of `TRAINED_STAGES`: the ANN baseline first, since
st_pruning and attention_pruning start from it) run unchanged in a workspace of their own,
`build/seeds/seed<s>/`, which links the prepared split and holds a params.yaml with `seed: s`.
Each is its own MLflow run (tagged `parent_stage=seeds`). Their rows and per-image predictions
are gathered into results/seeds.json, from which the leaderboard pools every configuration
over seeds (mean ± sd, and the interval of the pooled images).

With the default `seeds: [0]` there is no extra seed and the stage writes no rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from spikebench import paths
from spikebench.errors import ParamsError, SpikebenchError, cli_main
from spikebench.params import constraint, load_section, read_params_file
from spikebench.predictions import load_predictions
from spikebench.results import ResultRow, git_commit, read_rows, write_rows
from spikebench.tracking import stage_run

# stage -> (module, its results file); in dependency order
TRAINED_STAGES = {
    "baseline": ("baselines.baseline", paths.BASELINE_RESULTS),
    "st_pruning": ("methods.st_pruning", paths.ST_PRUNING_RESULTS),
    "attention_pruning": ("methods.attention_pruning", paths.ATTENTION_RESULTS),
    "stdp": ("methods.stdp", paths.STDP_RESULTS),
}
NEEDS_BASELINE = ("st_pruning", "attention_pruning")
WORKSPACES = Path("build/seeds")  # build/seeds/seed<s>/: scratch of the seed runs (their models, logs, run records)


@dataclass(frozen=True)
class SeedRunParams:
    stages: list[str] = constraint(nonempty=True, choices=tuple(TRAINED_STAGES))  # trained stages run per extra seed

    def validate(self, prefix: str) -> None:
        needs = [s for s in self.stages if s in NEEDS_BASELINE]
        if needs and "baseline" not in self.stages:
            raise ParamsError(f"params.yaml: {prefix}.stages has {needs[0]}, which starts from its seed's ANN: add baseline")


def read_seeds(raw: dict) -> list[int]:
    """The top-level `seeds` list: distinct integers >= 0."""
    seeds = raw.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ParamsError(f"params.yaml: seeds must be a non-empty list of integers >= 0 (e.g. [0, 1, 2]), got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ParamsError(f"params.yaml: seeds has a repeated seed: {seeds}")
    return seeds


def make_workspace(root: Path, seed: int, raw_params: dict) -> Path:
    """build/seeds/seed<s>/: the prepared split linked in (the same split for every seed) and params.yaml with `seed: s`."""
    work = root / f"seed{seed}"
    (work / "data").mkdir(parents=True, exist_ok=True)
    link = work / paths.PREPARED_DIR
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(paths.PREPARED_DIR.resolve(), target_is_directory=True)
    (work / paths.PARAMS).write_text(yaml.safe_dump({**raw_params, "seed": seed}, sort_keys=False))
    return work


def run_stage_in(work: Path, stage: str, seed: int) -> None:
    """One trained stage, as `dvc repro` would run it, inside the seed's workspace."""
    module, _ = TRAINED_STAGES[stage]
    repository = Path.cwd().resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repository), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "SPIKEBENCH_PARENT_STAGE": "seeds"}
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{repository / 'mlflow.db'}")  # the main store, not one per workspace
    log = work / f"{stage}.log"
    with log.open("w") as handle:
        done = subprocess.run([sys.executable, "-m", module], cwd=work, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SpikebenchError(f"seeds: stage {stage} with seed {seed} failed ({tail[0]}); its log is {log}")


def gathered_rows(work: Path, stage: str) -> list[ResultRow]:
    """A workspace stage's rows with their predictions loaded, as rows of this stage."""
    _, results = TRAINED_STAGES[stage]
    rows = []
    for row in read_rows(work / results):
        found = load_predictions(work / row.predictions_file, images=row.test_images, split_hash=row.split_hash,
                                 row_source=str(work / results))
        rows.append(replace(row, stage="seeds", predictions=found, predictions_file="", git_commit=git_commit()))
    return rows


@cli_main
def main() -> None:
    raw = read_params_file()
    common, params = load_section(SeedRunParams, "seed_runs", raw=raw)
    extra = [s for s in read_seeds(raw) if s != common.seed]
    stages = [s for s in TRAINED_STAGES if s in params.stages]
    with stage_run("seeds", method="all", library="all", dataset="-", split_hash="-",
                   params={"seeds": [common.seed, *extra], "stages": stages}) as run:
        started, rows = time.perf_counter(), []
        jobs = [(seed, stage) for seed in extra for stage in stages]
        for seed, stage in tqdm(jobs, desc="seeds", unit="stage", disable=not jobs):
            work = make_workspace(WORKSPACES, seed, raw)
            run_stage_in(work, stage, seed)
            rows += gathered_rows(work, stage)
        write_rows(paths.SEEDS_RESULTS, rows)
        run.log_metrics({"extra_seeds": len(extra), "rows": len(rows), "seconds": time.perf_counter() - started})
    print(f"seeds: {len(extra)} extra seed(s) {extra} x {stages}: {len(rows)} rows -> {paths.SEEDS_RESULTS}")


if __name__ == "__main__":
    main()
