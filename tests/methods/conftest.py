"""What the SNN-method stages read, written into a scratch directory: the prepared digits split,
the trained digits CNN as models/ann.pt and its baseline row."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from baselines.models import ArchConfig
from spikebench.data import SplitData, load_dataset, make_splits, write_prepared
from spikebench.energy import MacCounter, count_params
from spikebench.io import save_checkpoint
from spikebench.results import RowContext, write_rows
from spikebench.training import accuracy


def write_stage_inputs(work: Path, model: torch.nn.Module, data: SplitData) -> None:
    raw = load_dataset("digits")
    write_prepared(work / "data/prepared", raw, make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=0), seed=0)
    config = ArchConfig("cnn", data.input_shape, data.num_classes, channels=(16, 32, 64))
    save_checkpoint(work / "models/ann.pt", model.state_dict(), {**config.to_meta(), "dataset": "digits", "split_hash": data.split_hash})
    ann_accuracy = accuracy(model, data.test)
    row = RowContext.of(data, seed=0).row("ann", "torch", "cnn", timesteps=0, accuracy=ann_accuracy, test_images=len(data.test[1]),
                                          ann_accuracy=ann_accuracy, macs_per_image=float(MacCounter(model).count(data.input_shape)),
                                          params=count_params(model), weight_bits=32)
    write_rows(work / "results/baseline.json", [row])


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory, digits_cnn, digits_data):
    """A factory: a fresh scratch directory named `name` holding the stage inputs."""

    def make(name: str) -> Path:
        work = tmp_path_factory.mktemp(name)
        write_stage_inputs(work, digits_cnn, digits_data)
        return work

    return make
