"""The shared result-row schema and its files."""

from __future__ import annotations

import json

import pytest

from spikebench.errors import SpikebenchError
from spikebench.results import ResultRow, read_rows, rows_frame, write_rows


def make_row(**overrides) -> ResultRow:
    fields = dict(
        method="conversion", library="spikebench", dataset="digits", split_hash="abc", arch="cnn", timesteps=8,
        accuracy=0.9, ann_accuracy=0.95, spikes_per_image=100.0, synops_per_image=1e4, macs_per_image=1e3,
        energy_per_image_j=1e-8, params=1000, nonzero_params=900, weight_bits=32, seed=0,
    )
    fields.update(overrides)
    return ResultRow(**fields)


def test_row_records_provenance_automatically():
    row = make_row()
    assert len(row.git_commit.split("+")[0]) in (40, 7) or row.git_commit == "unknown"
    assert "torch" in row.library_versions and "numpy" in row.library_versions


@pytest.mark.parametrize(("field", "value", "message"), [
    ("method", "magic", "unknown method 'magic'"),
    ("library", "tensorflow", "unknown library 'tensorflow'"),
    ("accuracy", 91.5, "accuracy 91.5 outside"),
])
def test_invalid_rows_are_refused(field, value, message):
    with pytest.raises(SpikebenchError, match=message):
        make_row(**{field: value})


def test_rows_round_trip_and_concat(tmp_path):
    write_rows(tmp_path / "a.json", [make_row(), make_row(timesteps=16, extra={"reset": "zero"})])
    write_rows(tmp_path / "b.json", [make_row(method="ann", library="torch", timesteps=0)])
    assert json.loads((tmp_path / "a.json").read_text())["rows"][1]["extra"] == {"reset": "zero"}
    assert read_rows(tmp_path / "a.json")[1].timesteps == 16
    frame = rows_frame([tmp_path / "a.json", tmp_path / "b.json"])
    assert list(frame.method) == ["conversion", "conversion", "ann"]


def test_unreadable_results_file_names_the_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"rows": [{"method": "ann"}]}')
    with pytest.raises(SpikebenchError, match="bad.json: not a results file"):
        read_rows(tmp_path / "bad.json")
    with pytest.raises(SpikebenchError, match="missing.json: results file missing"):
        read_rows(tmp_path / "missing.json")
