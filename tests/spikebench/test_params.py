"""params.yaml validation: one-line errors naming the key, profile overrides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from baselines.train import BaselineParams
from leaderboard.build import LeaderboardParams
from spikebench.errors import ParamsError
from spikebench.params import constraint, load_section, read_params_file
from spikebench.prepare import DataParams


@dataclass(frozen=True)
class Example:
    epochs: int = constraint(3, min=1)
    lr: float = constraint(0.1, min_exclusive=0.0)
    mode: str = constraint("a", choices=("a", "b"))
    schedule: list[int] = constraint([4, 2], nonempty=True, min=1)
    path: str | None = constraint(None)


def section(body: dict, profile: str = "default") -> Example:
    return load_section(Example, "example", raw={"profile": profile, "example": body})[1]


def test_defaults_and_int_accepted_for_float():
    params = section({"lr": 1})
    assert params == Example(3, 1.0, "a", [4, 2], None) and isinstance(params.lr, float)


def test_smoke_profile_overrides_only_its_keys():
    body = {"epochs": 10, "smoke": {"epochs": 2}}
    assert section(body).epochs == 10
    assert section(body, "smoke").epochs == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"epoch": 3}, "unknown key example.epoch"),
        ({"epochs": "3"}, "example.epochs must be int"),
        ({"epochs": True}, "example.epochs must be int"),
        ({"epochs": 0}, "example.epochs must be >= 1"),
        ({"lr": 0.0}, "example.lr must be > 0.0"),
        ({"mode": "c"}, "example.mode must be one of a, b"),
        ({"schedule": []}, "example.schedule must not be empty"),
        ({"schedule": [4, 0]}, "example.schedule must be >= 1"),
        ({"smoke": {"bogus": 1}}, None),  # not the active profile: ignored
        ({"smoke": 3}, "example.smoke must be a mapping"),
    ],
)
def test_invalid_values_name_the_key(body, message):
    if message is None:
        section(body)
        return
    with pytest.raises(ParamsError, match=message):
        section(body)


def test_unknown_override_key_in_active_profile_is_refused():
    with pytest.raises(ParamsError, match="unknown key example.bogus"):
        section({"smoke": {"bogus": 1}}, "smoke")


def test_top_level_keys_are_validated():
    with pytest.raises(ParamsError, match="params.profile must be one of default, smoke"):
        load_section(Example, "example", raw={"profile": "fast"})
    with pytest.raises(ParamsError, match="params.device must be one of auto, cpu, cuda"):
        load_section(Example, "example", raw={"device": "tpu"})


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: default\nbaseline: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: invalid YAML \(line"):
        read_params_file(path)


@pytest.mark.parametrize("profile", ["default", "smoke"])
@pytest.mark.parametrize(("cls", "name"), [(DataParams, "data"), (BaselineParams, "baseline"), (LeaderboardParams, "leaderboard")])
def test_repository_params_file_is_valid_for_both_profiles(profile, cls, name):
    raw = yaml.safe_load(open("params.yaml"))
    raw["profile"] = profile
    load_section(cls, name, raw=raw)


def test_smoke_profile_selects_digits():
    raw = yaml.safe_load(open("params.yaml"))
    assert load_section(DataParams, "data", raw={**raw, "profile": "smoke"})[1].dataset == "digits"
    assert load_section(DataParams, "data", raw={**raw, "profile": "default"})[1].dataset == "fashion_mnist"
