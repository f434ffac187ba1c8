"""params.yaml: loading, profile resolution and validation.

Layout of params.yaml::

    profile: default          # default | smoke
    seed: 0
    device: auto              # auto | cpu | cuda
    <stage>:                  # one section per stage
      key: value              # the default profile's value
      smoke: {key: value}     # overrides applied when profile == smoke

Each section is described by a frozen dataclass whose fields carry their constraints
in `metadata` (`choices`, `min`, `max`, `min_exclusive`). `load_section` checks for
unknown keys, wrong types and out-of-range values and raises a one-line `ParamsError`
naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from spikebench.errors import ParamsError

PROFILES = ("default", "smoke")
DEVICES = ("auto", "cpu", "cuda")
PARAMS_FILE = "params.yaml"

T = TypeVar("T")


def constraint(**rules: Any) -> Any:
    """A required dataclass field with validation rules (choices, min, max, min_exclusive, nonempty).

    Fields have no defaults on purpose: params.yaml is the one place a value lives, so a
    missing key is an error, never a silent fallback to a second definition.
    """
    return dataclasses.field(metadata=rules)


@dataclasses.dataclass(frozen=True)
class CommonParams:
    """Top-level keys every stage reads."""

    profile: str = constraint(choices=PROFILES)
    seed: int = constraint(min=0)
    device: str = constraint(choices=DEVICES)


def read_params_file(path: str | Path = PARAMS_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found; run from the repository root")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ParamsError(f"{path}: invalid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return raw


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(annotation)[0])}"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _check_value(key: str, value: Any, annotation: Any, rules: dict) -> Any:
    if not _type_ok(value, annotation):
        raise ParamsError(f"params.yaml: {key} must be {_type_name(annotation)}, got {value!r}")
    if annotation is float:
        value = float(value)
    items = value if isinstance(value, list) else [value]
    if "nonempty" in rules and isinstance(value, list) and not value:
        raise ParamsError(f"params.yaml: {key} must not be empty")
    for item in items:
        if item is None:
            continue
        if "choices" in rules and item not in rules["choices"]:
            raise ParamsError(f"params.yaml: {key} must be one of {', '.join(map(str, rules['choices']))}; got {item!r}")
        if "min" in rules and item < rules["min"]:
            raise ParamsError(f"params.yaml: {key} must be >= {rules['min']}, got {item!r}")
        if "max" in rules and item > rules["max"]:
            raise ParamsError(f"params.yaml: {key} must be <= {rules['max']}, got {item!r}")
        if "min_exclusive" in rules and item <= rules["min_exclusive"]:
            raise ParamsError(f"params.yaml: {key} must be > {rules['min_exclusive']}, got {item!r}")
    return value


def parse_dataclass(cls: type[T], raw: dict, prefix: str) -> T:
    """Build `cls` from a mapping, validating every key against the field rules."""
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: {prefix} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"params.yaml: unknown key {prefix}.{unknown[0]}; valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, fld in fields.items():
        if name in raw:
            values[name] = _check_value(f"{prefix}.{name}", raw[name], hints[name], dict(fld.metadata))
        elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            raise ParamsError(f"params.yaml: missing key {prefix}.{name}; add it (see the README's parameter section)")
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(prefix)
    return obj


def load_common(raw: dict) -> CommonParams:
    top = {k: raw[k] for k in ("profile", "seed", "device") if k in raw}
    return parse_dataclass(CommonParams, top, "top level")


def load_section(cls: type[T], section: str, path: str | Path = PARAMS_FILE, raw: dict | None = None) -> tuple[CommonParams, T]:
    """Common params plus section `section` resolved for the active profile."""
    raw = read_params_file(path) if raw is None else raw
    common = load_common(raw)
    body = dict(raw.get(section) or {})
    overrides = {name: body.pop(name) for name in PROFILES if name in body}
    for name, over in overrides.items():
        if not isinstance(over, dict):
            raise ParamsError(f"params.yaml: {section}.{name} must be a mapping of overrides")
    body.update(overrides.get(common.profile, {}))
    return common, parse_dataclass(cls, body, section)


def resolve_device(device: str) -> str:
    """Map `auto` to cuda when available; refuse `cuda` on a machine without one."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: device is cuda but no CUDA device is available; use auto or cpu")
    return device
