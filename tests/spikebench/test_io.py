"""Atomic outputs and checkpoints."""

from __future__ import annotations

import pytest
import torch

from spikebench.errors import ModelError
from spikebench.io import atomic_write_bytes, load_checkpoint, save_checkpoint


def test_failed_write_leaves_previous_file_and_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_bytes(target, b"old")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", explode)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    state = {"w": torch.arange(4.0)}
    save_checkpoint(tmp_path / "m.pt", state, {"arch": "cnn", "shape": [1, 8, 8]})
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert torch.equal(loaded["w"], state["w"]) and meta["shape"] == [1, 8, 8]


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="bad.pt: not a readable spikebench checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="missing.pt: model file not found"):
        load_checkpoint(tmp_path / "missing.pt")
