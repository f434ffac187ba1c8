"""Print how long each pipeline stage took (end of `make run`), from the stages' run records.

Every stage writes reports/runs/<stage>.json when it finishes (its MLflow run id, git commit
and seconds; committed with the results). A stage that `dvc repro` skipped because its
outputs were current keeps the record of the run that made them: it is listed as
"skipped" with that run's time, and counted apart from the stages that ran here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from spikebench.paths import RUNS_DIR
from spikebench.tracking import tracking_enabled, tracking_uri


@dataclass(frozen=True)
class StageTime:
    stage: str
    seconds: float | None
    status: str  # "ran" (its run is in the local store), "skipped" (committed record), "no record"
    finished: str = ""


def local_run_ids(run_ids: list[str]) -> set[str]:
    """Which of these MLflow run ids exist in the local tracking store."""
    if not tracking_enabled() or not run_ids:
        return set()
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    found = set()
    for run_id in run_ids:
        try:
            mlflow.get_run(run_id)
            found.add(run_id)
        except Exception:  # not in this store (a committed record from another machine)
            continue
    return found


def stage_times(dvc_yaml: Path = Path("dvc.yaml"), runs_dir: Path = RUNS_DIR) -> list[StageTime]:
    """Every stage of dvc.yaml with its recorded time and whether it ran here."""
    stages = list(yaml.safe_load(dvc_yaml.read_text())["stages"])
    records = {s: json.loads((runs_dir / f"{s}.json").read_text()) for s in stages if (runs_dir / f"{s}.json").exists()}
    here = local_run_ids([r["run_id"] for r in records.values() if r.get("run_id")])
    out = []
    for stage in stages:
        record = records.get(stage)
        if record is None:
            out.append(StageTime(stage, None, "no record"))
            continue
        status = "ran" if record.get("run_id") in here or not tracking_enabled() else "skipped"
        out.append(StageTime(stage, record.get("stage_seconds"), status, record.get("finished", "")))
    return out


def main() -> None:
    rows = stage_times()
    print("\nStage times (reports/runs/<stage>.json; 'skipped': outputs were current, time of the run that made them):")
    for row in rows:
        seconds = f"{row.seconds:8.1f} s" if row.seconds is not None else "       – "
        print(f"  {row.stage:<18} {seconds}  {row.status}{'  ' + row.finished if row.status == 'skipped' else ''}")
    ran = sum(r.seconds or 0.0 for r in rows if r.status == "ran")
    recorded = sum(r.seconds or 0.0 for r in rows)
    print(f"  {'ran here':<18} {ran:8.1f} s\n  {'whole pipeline':<18} {recorded:8.1f} s (every stage's recorded run)")


if __name__ == "__main__":
    main()
