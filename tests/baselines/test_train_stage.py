"""The baseline stage as a user runs it: resume after interruption, determinism, torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from baselines.models import ArchConfig, build_model
from spikebench.data import load_prepared
from spikebench.results import read_rows
from spikebench.training import fit, seed_everything
from tests.predictions_check import assert_rows_match_their_predictions

REPO = Path(__file__).resolve().parents[2]


def run_module(module: str, cwd: Path, *prefix: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPIKEBENCH_TRACKING": "off", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [*prefix, "-m", module] if prefix else [sys.executable, "-m", module]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def smoke_workdir(tmp_path) -> Path:
    """A working directory with the smoke profile's params and prepared digits splits."""
    text = (REPO / "params.yaml").read_text().replace("\nprofile: default", "\nprofile: smoke", 1)
    (tmp_path / "params.yaml").write_text(text)
    run_module("baselines.prepare", tmp_path)
    return tmp_path


def stable_rows(path: Path) -> list[dict]:
    """The result rows as written: they hold no run id or timing, so a rerun must reproduce them exactly."""
    rows = json.loads(path.read_text())["rows"]
    assert all("mlflow_run_id" not in row and not any("seconds" in k for k in row["extra"]) for row in rows)
    return rows


def test_interrupted_training_resumes_to_identical_weights(digits_data, tmp_path):
    def train(checkpoint: Path | None, stop_after: int | None = None) -> torch.nn.Module:
        seed_everything(0)
        model = build_model(ArchConfig("cnn", digits_data.input_shape, 10, channels=(4, 8, 16)))

        def interrupt(stats) -> None:
            if stats.epoch == stop_after:
                raise KeyboardInterrupt  # what Ctrl-C or a kill between epochs leaves behind

        fit(model, digits_data.train, digits_data.val, epochs=4, batch_size=64, lr=5e-3, weight_decay=0.0, seed=0,
            on_epoch=interrupt, checkpoint=checkpoint)
        return model

    reference = train(None)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "ckpt.pt", stop_after=2)
    assert (tmp_path / "ckpt.pt").exists()
    resumed = train(tmp_path / "ckpt.pt")
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_killed_stage_resumes_and_matches_an_uninterrupted_run(smoke_workdir):
    """SIGKILL the real stage after its first checkpoint, rerun it, compare results."""
    import signal
    import time

    env = {**os.environ, "SPIKEBENCH_TRACKING": "off"}
    process = subprocess.Popen([sys.executable, "-m", "baselines.baseline"], cwd=smoke_workdir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((smoke_workdir / "checkpoints").glob("*.pt")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (smoke_workdir / "results" / "baseline.json").exists(), "a killed stage must not leave results"
    resumed = run_module("baselines.baseline", smoke_workdir)
    assert "resuming from" in resumed.stdout
    killed_rows = stable_rows(smoke_workdir / "results" / "baseline.json")
    assert not list((smoke_workdir / "checkpoints").glob("*.pt")), "checkpoint removed after success"

    run_module("baselines.baseline", smoke_workdir)  # uninterrupted, same seed
    assert stable_rows(smoke_workdir / "results" / "baseline.json") == killed_rows


@pytest.mark.slow
def test_bad_params_value_is_one_line_error(smoke_workdir):
    params = smoke_workdir / "params.yaml"
    params.write_text(params.read_text().replace("  weight_decay: 0.0\n", "  weight_decay: -1.0\n", 1))
    result = run_module("baselines.baseline", smoke_workdir, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: params.yaml: baseline.weight_decay must be >= 0.0, got -1.0"


@pytest.mark.slow
def test_stage_is_deterministic_and_torchrun_matches_one_process(smoke_workdir):
    """Twice the same seed: byte-identical results and model. Then torchrun (gloo on CPU,
    2 processes, same global batch): the same final accuracy within 1 point."""
    run_module("baselines.baseline", smoke_workdir)
    first = stable_rows(smoke_workdir / "results" / "baseline.json")
    first_model = (smoke_workdir / "models" / "ann.pt").read_bytes()
    # the ANN row: accuracy over the whole test split, the op-model energy of its MACs, a headline row
    assert first[0]["test_images"] == len(load_prepared(smoke_workdir / "data" / "prepared").test[1])
    assert first[0]["headline"] is True and first[0]["energy_model"] == "op_45nm" and first[0]["timesteps"] == 0
    assert first[0]["energy_per_image_j"] == pytest.approx(4.6e-12 * first[0]["macs_per_image"])
    # the ANN's class for every test image: the reference every other row is paired with
    labels = load_prepared(smoke_workdir / "data" / "prepared").test[1]
    assert_rows_match_their_predictions(smoke_workdir, read_rows(smoke_workdir / "results" / "baseline.json"), labels)
    first_predictions = (smoke_workdir / first[0]["predictions_file"]).read_bytes()
    run_module("baselines.baseline", smoke_workdir)
    assert stable_rows(smoke_workdir / "results" / "baseline.json") == first
    assert (smoke_workdir / "models" / "ann.pt").read_bytes() == first_model
    assert (smoke_workdir / first[0]["predictions_file"]).read_bytes() == first_predictions  # DVC sees an unchanged output

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    run_module("baselines.baseline", smoke_workdir, torchrun, "--standalone", "--nproc_per_node", "2")
    double = json.loads((smoke_workdir / "results" / "baseline.json").read_text())["rows"][0]
    assert double["extra"]["processes"] == 2 and first[0]["extra"]["processes"] == 1
    assert abs(double["accuracy"] - first[0]["accuracy"]) <= 0.01
