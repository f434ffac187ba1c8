"""Print how long each pipeline stage took in its latest MLflow run (end of `make run`)."""

from __future__ import annotations

from spikebench.tracking import EXPERIMENT, tracking_enabled, tracking_uri


def stage_times() -> list[tuple[str, float, str]]:
    """(stage, seconds, run status) of the newest run of every stage."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["start_time DESC"], max_results=2000)
    if runs.empty or "tags.dvc_stage" not in runs:
        return []
    newest = runs.dropna(subset=["tags.dvc_stage"]).drop_duplicates("tags.dvc_stage")
    return [(r["tags.dvc_stage"], float(r.get("metrics.stage_seconds", float("nan"))), r["status"]) for _, r in newest.iterrows()]


def main() -> None:
    if not tracking_enabled():
        print("stage times: tracking is off")
        return
    rows = stage_times()
    total = sum(seconds for _, seconds, _ in rows if seconds == seconds)
    print("\nStage times (latest MLflow run of each stage):")
    for stage, seconds, status in sorted(rows, key=lambda r: -r[1] if r[1] == r[1] else 0):
        print(f"  {stage:<20} {seconds:8.1f} s  {status}")
    print(f"  {'total':<20} {total:8.1f} s")


if __name__ == "__main__":
    main()
