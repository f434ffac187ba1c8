"""End to end: the real `dvc repro` on the smoke profile in a copy of the repository.

Asserts that every stage ran (one FINISHED MLflow run each, in a temporary store),
that the leaderboard lists every method the pipeline produced, and that a second
`dvc repro` does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spikebench.results import rows_frame
from spikebench.tracking import EXPERIMENT, ui_server

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def copy_repository(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files, as a fresh git repository."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "e2e"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("repo")
    copy_repository(work)
    params = (work / "params.yaml").read_text()
    (work / "params.yaml").write_text(params.replace("\nprofile: default", "\nprofile: smoke", 1))
    store = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": store,
        "SPIKEBENCH_TRACKING": "on",
        "MPLCONFIGDIR": str(work / ".mplconfig"),
    }
    first = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, f"dvc repro failed:\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}"
    second = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    return work, store, second


def test_every_stage_logged_one_finished_run(smoke_run):
    import mlflow

    work, store, _ = smoke_run
    stages = set(yaml.safe_load((work / "dvc.yaml").read_text())["stages"])
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    if "tags.mlflow.parentRunId" in runs:  # nested runs (sweep steps) belong to their stage's run
        runs = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert sorted(runs["tags.dvc_stage"]) == sorted(stages)
    assert set(runs.status) == {"FINISHED"}
    # publish spans datasets; synth maps the core, which does not depend on any dataset
    data_stages = runs[~runs["tags.dvc_stage"].isin(["publish", "synth"])]
    assert set(data_stages["tags.dataset"]) == {"digits"}


def test_leaderboard_lists_every_method_on_digits(smoke_run):
    work, _, _ = smoke_run
    result_files = yaml.safe_load((work / "params.yaml").read_text())["leaderboard"]["results"]
    frame = rows_frame([work / f for f in result_files])
    assert set(frame.dataset) == {"digits"}
    text = (work / "leaderboard" / "LEADERBOARD.md").read_text()
    table = text.split("## digits")[1].split("\n## ")[0]
    listed = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    shown = set(frame.method[frame.headline.astype(bool)])
    assert "ann" in listed and shown <= listed
    ann = frame[frame.method == "ann"].iloc[0]
    assert ann.accuracy > 0.8 and ann.macs_per_image > 0 and ann.energy_per_image_j > 0
    assert (work / "leaderboard" / "plots" / "accuracy_vs_energy.png").exists()


def test_second_repro_is_a_no_op(smoke_run):
    _, _, second = smoke_run
    assert second.returncode == 0
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout


def test_mlflow_ui_lists_every_stage_in_a_real_browser(smoke_run, tmp_path):
    """Headless Chromium renders the experiment's runs page; every stage's run is listed."""
    import socket

    import mlflow

    _, store, _ = smoke_run
    mlflow.set_tracking_uri(store)
    experiment_id = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ui_server(store, port) as url:
        page = f"{url}/#/experiments/{experiment_id}/runs"
        dom = chromium(tmp_path, "--dump-dom", page)
        chromium(tmp_path, f"--screenshot={tmp_path / 'mlflow_ui.png'}", page)
    stages = set(yaml.safe_load((smoke_run[0] / "dvc.yaml").read_text())["stages"])
    assert all(f">{stage}<" in dom for stage in stages), sorted(s for s in stages if f">{s}<" not in dom)
    assert (tmp_path / "mlflow_ui.png").stat().st_size > 10_000


def chromium(profile_dir: Path, *args: str) -> str:
    """Run Debian's Chromium headless (flags that keep it off the closed network)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile_dir / 'chromium'}",
             "--virtual-time-budget=30000", "--window-size=1400,800"]
    result = subprocess.run(["chromium", *flags, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
