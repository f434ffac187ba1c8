"""The layering the README promises, checked on the source: core at the bottom, stages above it, nothing sideways.

- nothing under `spikebench/` imports a package above it;
- a stage module (the `python -m` module of a `dvc.yaml` stage) is imported by no other module;
- a stage module is named after its stage (`<package>/<stage>.py`);
- no function in the packages is longer than MAX_FUNCTION_LINES.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spikebench", "baselines", "methods", "hardware", "leaderboard", "experiments")
UPPER = ("baselines", "methods", "hardware", "leaderboard", "experiments", "benchmarks")
MAX_FUNCTION_LINES = 80


def stage_modules() -> dict[str, str]:
    """DVC stage name -> the module its command runs."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        words = stage["cmd"].split()
        out[name] = words[words.index("-m") + 1]
    return out


def package_files() -> list[Path]:
    return sorted(f for package in PACKAGES for f in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, with `from a import b` also giving `a.b` (b may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_core_imports_no_package_above_it():
    offenders = [f"{module_name(f)} imports {m}" for f in (ROOT / "spikebench").rglob("*.py")
                 for m in imported_modules(f) if m.split(".")[0] in UPPER]
    assert not offenders, offenders


def test_no_module_imports_a_stage_module():
    stages = set(stage_modules().values())
    offenders = [f"{module_name(f)} imports {m}" for f in package_files() for m in imported_modules(f) & stages
                 if module_name(f) != m]
    assert not offenders, offenders


def test_stage_modules_are_named_after_their_stage():
    misnamed = {stage: module for stage, module in stage_modules().items() if module.rsplit(".", 1)[-1] != stage}
    assert not misnamed, misnamed
    for module in stage_modules().values():
        source = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
        assert "def main(" in source, f"{module} has no main()"


@pytest.mark.parametrize("path", package_files(), ids=module_name)
def test_functions_read_in_one_sitting(path: Path):
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{module_name(path)}: {long}"
