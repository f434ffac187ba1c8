"""hardware/ann/models.py reads st_pruning's spatial settings itself (a library module may not
import a stage module): they must equal st_pruning's own, in every profile."""

from __future__ import annotations

import pytest

from hardware.ann.models import spatial_settings
from methods.st_pruning import METHOD, StPruningParams
from spikebench.params import load_section, read_params_file


@pytest.mark.parametrize("profile", ["default", "smoke"])
def test_spatial_settings_are_st_pruning_s(profile: str) -> None:
    raw = read_params_file()
    raw["profile"] = profile
    _, params = load_section(StPruningParams, METHOD, raw=raw)
    assert spatial_settings(raw) == params.spatial()
