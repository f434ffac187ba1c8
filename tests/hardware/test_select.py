"""The select rule: lowest energy within the ANN margin among mappable SNN rows."""

from __future__ import annotations

import pytest

from hardware.selection import choose, load_selected
from spikebench.errors import ModelError
from spikebench.results import ResultRow


def _row(method, accuracy, energy, mappable=True, timesteps=8):
    typed = {"mappable": bool(mappable), "model_path": f"models/{method}_snn.pt"} if mappable is not None else {}
    return ResultRow(method=method, library="spikebench", dataset="digits", split_hash="abc", arch="cnn", timesteps=timesteps,
                     accuracy=accuracy, ann_accuracy=0.95, spikes_per_image=0, synops_per_image=0, macs_per_image=0,
                     energy_per_image_j=energy, params=1, nonzero_params=1, weight_bits=32, seed=0, test_images=100, git_commit="x",
                     library_versions={"torch": "x"}, **typed)


def test_lowest_energy_within_margin_wins():
    rows = [_row("ann", 0.95, 1e-5, mappable=None), _row("conversion", 0.94, 3e-6), _row("rmp", 0.945, 2e-6),
            _row("rmp", 0.90, 1e-7, timesteps=2), _row("st_pruning", 0.95, 1e-8, mappable=False)]
    chosen, account = choose(rows, "min_energy", 0.02)
    assert (chosen.method, chosen.energy_per_image_j) == ("rmp", 2e-6)
    assert account["model_path"] == "models/rmp_snn.pt" and "lowest energy" in account["reason"]
    assert sum(c["eligible"] for c in account["candidates"]) == 2


def test_no_candidate_within_margin_is_a_clear_error():
    rows = [_row("ann", 0.95, 1e-5, mappable=None), _row("conversion", 0.80, 3e-6)]
    with pytest.raises(ModelError, match="select.margin"):
        choose(rows, "min_energy", 0.02)
    chosen, _ = choose(rows, "max_accuracy", 0.02)
    assert chosen.method == "conversion"


def test_a_mappable_flag_left_in_extra_does_not_make_a_candidate():
    rows = [_row("ann", 0.95, 1e-5, mappable=None), _row("conversion", 0.94, 3e-6, mappable=None)]
    rows[1].extra = {"mappable": True, "model_path": "models/conversion_snn.pt"}  # the old untyped keys
    with pytest.raises(ModelError, match="no hardware-mappable SNN rows"):
        choose(rows, "min_energy", 0.02)


def test_load_selected_refuses_missing_corrupt_and_foreign_split_choices(tmp_path):
    path = tmp_path / "selected.json"
    with pytest.raises(ModelError, match="missing; run the select stage"):
        load_selected("abc", path)
    path.write_text('{"model_path": "models/rmp_snn.pt"')  # truncated
    with pytest.raises(ModelError, match="unreadable"):
        load_selected("abc", path)
    path.write_text('{"model_path": "models/rmp_snn.pt", "split_hash": "abc", "timesteps": 8}')
    assert load_selected("abc", path)["timesteps"] == 8
    with pytest.raises(Exception, match="split") as error:
        load_selected("other", path)
    assert "\n" not in str(error.value)
