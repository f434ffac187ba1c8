"""The check every stage test makes of its rows' per-image predictions files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikebench.predictions import load_predictions
from spikebench.results import ResultRow


def assert_rows_match_their_predictions(root: Path, rows: list[ResultRow], labels) -> None:
    """Every row has its own predictions file (beside no stale one) over `test_images` distinct test images,
    whose mean correctness against the test split's `labels` at the stored indices is the row's accuracy."""
    labels = np.asarray(labels)
    files = set()
    for row in rows:
        name = f"{row.method}/{row.library} {row.arch} T={row.timesteps} {row.extra.get('config', '')}"
        assert row.predictions_file, f"{name}: no predictions file"
        found = load_predictions(Path(root) / row.predictions_file, images=row.test_images, split_hash=row.split_hash, row_source=name)
        assert len(np.unique(found.indices)) == len(found), f"{name}: an image twice"
        assert found.indices.min() >= 0 and found.indices.max() < len(labels)
        # float32 accuracies (torch) differ from the float64 mean by far less than one image in 10,000
        assert float(found.correct(labels).mean()) == pytest.approx(row.accuracy, abs=1e-6), name
        files.add(Path(root) / row.predictions_file)
    assert len(files) == len(rows), "two rows share a predictions file"
    directories = {f.parent for f in files}
    assert set().union(*(d.glob("*.npz") for d in directories)) == files, "a stale predictions file is left"
