"""The seeds stage's pieces: its params, the per-seed workspace and the gathering of a workspace's rows."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from experiments.seeds import SeedRunParams, gathered_rows, make_workspace, read_seeds
from spikebench import paths
from spikebench.errors import ParamsError
from spikebench.params import parse_dataclass
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, write_rows


def test_seeds_must_be_distinct_non_negative_integers():
    assert read_seeds({"seeds": [0, 1, 2]}) == [0, 1, 2]
    for bad in ([], [0, 0], [-1], ["1"], [True], 3, None):
        with pytest.raises(ParamsError, match="seeds"):
            read_seeds({"seeds": bad})


def test_pruning_stages_need_their_seeds_baseline():
    assert parse_dataclass(SeedRunParams, {"stages": ["baseline", "st_pruning"]}, "seed_runs").stages == ["baseline", "st_pruning"]
    with pytest.raises(ParamsError, match="add baseline"):
        parse_dataclass(SeedRunParams, {"stages": ["st_pruning"]}, "seed_runs")
    with pytest.raises(ParamsError, match="one of"):
        parse_dataclass(SeedRunParams, {"stages": ["conversion"]}, "seed_runs")


def test_workspace_links_the_same_split_and_sets_the_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / paths.PREPARED_DIR).mkdir(parents=True)
    (tmp_path / paths.PREPARED_DIR / "manifest.json").write_text("{}")
    work = make_workspace(tmp_path / "build" / "seeds", 2, {"profile": "smoke", "seed": 0, "baseline": {"epochs": 1}})
    assert (work / paths.PREPARED_DIR / "manifest.json").read_text() == "{}"  # a link, not a copy: one split for every seed
    assert yaml.safe_load((work / "params.yaml").read_text()) == {"profile": "smoke", "seed": 2, "baseline": {"epochs": 1}}
    assert make_workspace(tmp_path / "build" / "seeds", 2, {"seed": 0}) == work  # idempotent: the link is replaced


def test_gathered_rows_carry_their_predictions_as_rows_of_the_seeds_stage(tmp_path):
    work = tmp_path / "seed1"
    classes = np.arange(20) % 10
    row = ResultRow(method="ann", library="torch", dataset="digits", split_hash="s1", arch="cnn", timesteps=0, accuracy=1.0,
                    ann_accuracy=1.0, spikes_per_image=0.0, synops_per_image=0.0, macs_per_image=10.0, energy_per_image_j=1e-9,
                    params=10, nonzero_params=10, weight_bits=32, seed=1, test_images=20, stage="baseline",
                    predictions=Predictions.of(classes))
    write_rows(work / paths.BASELINE_RESULTS, [row])
    (gathered,) = gathered_rows(work, "baseline")
    assert gathered.stage == "seeds" and gathered.seed == 1 and gathered.predictions_file == ""
    assert list(gathered.predictions.classes) == list(classes)
