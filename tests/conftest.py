"""Shared fixtures: the real digits dataset in memory and a small trained CNN on it.

Unit tests run with MLflow tracking off (SPIKEBENCH_TRACKING=off) unless a test turns
it on with its own temporary store; matplotlib writes its cache under the test's tmp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from baselines.models import ArchConfig, build_model
from spikebench.data import SplitData, load_dataset, make_splits, to_split_data
from spikebench.training import fit, seed_everything


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("SPIKEBENCH_TRACKING", "off")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / "mpl"))


@pytest.fixture(scope="session")
def digits_data() -> SplitData:
    """scikit-learn's digits (1x8x8, 10 classes) with the default split fractions."""
    raw = load_dataset("digits")
    return to_split_data(raw, make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=0))


@pytest.fixture(scope="session")
def digits_cnn(digits_data: SplitData) -> torch.nn.Sequential:
    """The smoke profile's cnn (channels 16, 32, 64) trained on digits: ~97% test accuracy in ~2 s."""
    seed_everything(0)
    model = build_model(ArchConfig("cnn", digits_data.input_shape, digits_data.num_classes, channels=(16, 32, 64)))
    fit(model, digits_data.train, digits_data.val, epochs=15, batch_size=32, lr=1e-2, weight_decay=0.0, seed=0)
    return model.eval()


REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("repo")
    copy_repository(work)
    params = (work / "params.yaml").read_text()
    params = params.replace("\nprofile: default", "\nprofile: smoke", 1).replace("\nseeds: [0]", "\nseeds: [0, 1]", 1)
    # the seeds path with two seeds, on the baseline only to keep the suite short (the pooling of pruned rows over seeds
    # is tested in tests/leaderboard)
    params = params.replace("\n  stages: [baseline, st_pruning, attention_pruning, stdp]", "\n  stages: [baseline]", 1)
    parsed = yaml.safe_load(params)
    assert parsed["seeds"] == [0, 1] and parsed["seed_runs"]["stages"] == ["baseline"]
    (work / "params.yaml").write_text(params)
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
