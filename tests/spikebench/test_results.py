"""The shared result-row schema and its files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from spikebench.errors import SpikebenchError
from spikebench.predictions import Predictions, load_predictions
from spikebench.results import ENERGY_MODEL, ResultRow, RowContext, git_commit, headline_metrics, read_rows, rows_frame, write_rows


def make_row(**overrides) -> ResultRow:
    fields = dict(
        method="conversion", library="spikebench", dataset="digits", split_hash="abc", arch="cnn", timesteps=8,
        accuracy=0.9, ann_accuracy=0.95, spikes_per_image=100.0, synops_per_image=1e4, macs_per_image=1e3,
        energy_per_image_j=1e-8, params=1000, nonzero_params=900, weight_bits=32, seed=0, test_images=500,
    )
    fields.update(overrides)
    return ResultRow(**fields)


def test_row_records_provenance_automatically():
    row = make_row()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert row.git_commit.split("+")[0] == head  # the tests run inside the repository: never "unknown"
    assert row.git_commit in (head, head + "+dirty")
    assert "torch" in row.library_versions and "numpy" in row.library_versions


def test_git_commit_outside_a_repository_is_unknown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert git_commit.__wrapped__() == "unknown"


def test_row_context_fills_the_shared_fields_and_the_op_model_energy():
    context = RowContext.of(SimpleNamespace(dataset="digits", split_hash="abc"), seed=3, run=SimpleNamespace(stage="conversion"))
    ops = SimpleNamespace(spikes=10.0, synops=200.0, macs=50.0, energy_j=4.6e-12 * 50 + 0.9e-12 * 200)
    snn = context.row("conversion", "spikebench", "cnn", timesteps=8, accuracy=0.9, test_images=100, ann_accuracy=0.95, ops=ops,
                      params=(1000, 900), weight_bits=32, headline=False)
    ann = context.row("ann", "torch", "cnn", timesteps=0, accuracy=0.95, test_images=100, ann_accuracy=0.95, macs_per_image=1e6,
                      params=(1000, 1000), weight_bits=32)
    assert (snn.dataset, snn.split_hash, snn.seed, snn.stage) == ("digits", "abc", 3, "conversion")
    assert snn.synops_per_image == 200.0 and snn.nonzero_params == 900 and snn.headline is False
    assert ann.energy_per_image_j == pytest.approx(4.6e-6) and ann.synops_per_image == 0.0
    assert snn.energy_model == ann.energy_model == ENERGY_MODEL


@pytest.mark.parametrize(("field", "value", "message"), [
    ("method", "magic", "unknown method 'magic'"),
    ("library", "tensorflow", "unknown library 'tensorflow'"),
    ("accuracy", 91.5, "accuracy 91.5 outside"),
    ("test_images", 0, "test_images must be >= 1"),
    ("mappable", True, "mappable row needs its model_path"),
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


def test_write_rows_also_writes_flat_headline_metrics(tmp_path):
    exported = make_row(timesteps=4, headline=True, mappable=True, model_path="models/x.pt", accuracy=0.91, extra={"compression": 4.9})
    rows = [make_row(headline=False, accuracy=0.5), make_row(timesteps=8, accuracy=0.93), exported]
    write_rows(tmp_path / "results" / "st.json", rows)
    metrics = json.loads((tmp_path / "metrics" / "st.json").read_text())
    assert metrics == {"accuracy": 91.0, "test_images": 500, "T": 4, "sops": 10000, "energy_uj": 0.01, "compression": 4.9}
    assert all(not isinstance(v, (dict, list)) for v in metrics.values())  # flat: DVC shows every key as a column
    assert headline_metrics([make_row(headline=False, accuracy=0.25)])["accuracy"] == 25.0  # no headline row: the first row


def test_git_commit_ignores_the_pipelines_own_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], check=True)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "a.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "dvc.lock").write_text("a\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "x"], check=True)
    (tmp_path / "results" / "a.json").write_text('{"rows": []}')
    (tmp_path / "dvc.lock").write_text("b\n")
    assert not git_commit.__wrapped__().endswith("+dirty")  # the pipeline rewrote its outputs: still clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit.__wrapped__().endswith("+dirty")


LABELS = np.arange(50) % 10  # a 50-image test split


def _predicted(index: np.ndarray, wrong: int) -> Predictions:
    """Predictions of the images `index`, the first `wrong` of them misclassified."""
    classes = LABELS[index].copy()
    classes[:wrong] = (classes[:wrong] + 1) % 10
    return Predictions.of(classes, index)


def test_write_rows_saves_one_predictions_file_per_row_that_reproduces_its_accuracy(tmp_path):
    subset = np.array([49, 3, 17, 0, 28, 41, 5, 9, 33, 12])  # a permuted subset: positions, not the first images
    rows = [make_row(test_images=10, accuracy=0.7, predictions=_predicted(subset, 3), extra={"config": "sweep"}),
            make_row(test_images=50, accuracy=0.9, predictions=_predicted(np.arange(50), 5), extra={"config": "main"}),
            make_row(test_images=50, accuracy=1.0, predictions=_predicted(np.arange(50), 0), extra={"config": "main"})]
    path = tmp_path / "results" / "conversion.json"
    write_rows(path, rows)
    directory = tmp_path / "reports" / "predictions" / "conversion"
    assert len(list(directory.glob("*.npz"))) == 3  # the two rows named alike get their own files
    assert "predictions" not in json.loads(path.read_text())["rows"][0]  # in memory only: the file holds them
    for row in read_rows(path):
        assert Path(row.predictions_file).parent == directory
        found = load_predictions(row.predictions_file, images=row.test_images, split_hash=row.split_hash, row_source=str(path))
        assert float(found.correct(LABELS).mean()) == row.accuracy
    assert list(load_predictions(read_rows(path)[0].predictions_file, images=10, split_hash="abc", row_source="x").indices) == list(subset)


def test_write_rows_removes_the_predictions_of_rows_no_longer_written(tmp_path):
    path = tmp_path / "results" / "stage.json"
    write_rows(path, [make_row(test_images=50, accuracy=0.9, predictions=_predicted(np.arange(50), 5), timesteps=t) for t in (4, 8)])
    kept = read_rows(path)[0].predictions_file
    write_rows(path, [make_row(test_images=50, accuracy=0.9, predictions=_predicted(np.arange(50), 5), timesteps=4)])
    assert [str(p) for p in (tmp_path / "reports" / "predictions" / "stage").glob("*.npz")] == [kept]


def test_a_row_whose_predictions_cover_other_images_than_its_accuracy_is_refused(tmp_path):
    with pytest.raises(SpikebenchError, match="49 predictions for test_images=50"):
        make_row(test_images=50, predictions=_predicted(np.arange(49), 0))
    write_rows(tmp_path / "results" / "s.json", [make_row(test_images=50, accuracy=1.0, predictions=_predicted(np.arange(50), 0))])
    row = read_rows(tmp_path / "results" / "s.json")[0]
    with pytest.raises(SpikebenchError, match="over 60 test images but its predictions file .* holds 50"):
        load_predictions(row.predictions_file, images=60, split_hash=row.split_hash, row_source="results/s.json")
    with pytest.raises(SpikebenchError, match="on split other but its predictions file .* on abc"):
        load_predictions(row.predictions_file, images=50, split_hash="other", row_source="results/s.json")
