"""The command line: `spikebench ...` and every stage module's `--help`, none of which runs anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spikebench import cli
from spikebench.errors import cli_main, params_sections

ROOT = Path(__file__).resolve().parents[2]
SPIKEBENCH = Path(sys.executable).parent / "spikebench"
SUBCOMMANDS = ("run", "smoke", "leaderboard", "stages", "times", "ui")


def stage_modules() -> list[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return [stage["cmd"].split()[stage["cmd"].split().index("-m") + 1] for stage in stages.values()]


def run_in_empty_dir(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run from an empty folder (no params.yaml, no data): a stage that started would fail or write there."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLCONFIGDIR": str(cwd.parent / "mpl")}
    env.pop("MLFLOW_TRACKING_URI", None)  # a stage that ran would create ./mlflow.db
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_console_script_help_at_every_level():
    assert SPIKEBENCH.exists(), "the console script is missing: re-run `make setup` (pip install -e)"
    top = subprocess.run([str(SPIKEBENCH), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert top.returncode == 0 and top.stdout.startswith("usage: spikebench")
    for name in SUBCOMMANDS:
        assert name in top.stdout
        sub = subprocess.run([str(SPIKEBENCH), name, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert sub.returncode == 0 and sub.stdout.startswith(f"usage: spikebench {name}"), sub.stderr


def test_stage_help_prints_usage_and_runs_nothing(tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    result = run_in_empty_dir([sys.executable, "-m", "methods.conversion", "--help"], work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m methods.conversion")
    assert "Rueckauer" in result.stdout  # the module's docstring
    assert "params.yaml (sections: conversion)" in " ".join(result.stdout.split())
    assert list(work.iterdir()) == []


def test_stage_rejects_an_unknown_flag_on_one_line(tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    result = run_in_empty_dir([sys.executable, "-m", "methods.conversion", "--epochs", "3"], work)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unrecognized arguments: --epochs 3" in lines[0], result.stderr
    assert list(work.iterdir()) == []


@pytest.mark.slow  # one interpreter (torch import) per stage
@pytest.mark.parametrize("module", stage_modules())
def test_every_stage_module_answers_help(module, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    result = run_in_empty_dir([sys.executable, "-m", module, "--help"], work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: python -m {module}")
    assert list(work.iterdir()) == []


def test_cli_main_leaves_argv_alone_when_called_in_process(monkeypatch):
    """Tests call a stage's main() directly under pytest's own argv: it must run, not parse."""
    calls = []
    monkeypatch.setattr(sys, "argv", ["pytest", "-q", "--unknown"])
    cli_main(lambda: calls.append(1))()
    assert calls == [1]


def test_params_sections_found_in_the_source():
    def main():
        load_section(object, "rtl_sim")  # noqa: F821 (only read, never run)
        load_section(object, "hardware")  # noqa: F821

    assert params_sections(main) == ["rtl_sim", "hardware"]


def test_stages_lists_every_stage_with_module_and_summary():
    table = cli.stage_table(ROOT)
    assert [module for _, module, _ in table] == stage_modules()
    assert all(summary and not summary.startswith("Stage `") for _, _, summary in table)


LEADERBOARD_MD = """# spikebench leaderboard

## digits (split 0123abcd)

| method | library | arch | T | accuracy | energy/img (µJ, 45 nm) | run |
|---|---|---|---|---|---|---|
| ann | torch | cnn | – | 97.50% | 0.120 | [1896d612](http://127.0.0.1:5000/#/runs/1) |
| conversion | spikebench | cnn | 32 | 96.80% | 0.052 | [f0a5d14c](http://127.0.0.1:5000/#/runs/2) |

![accuracy vs T](plots/accuracy_vs_T.png)

## RMP-SNN latency vs hard-reset conversion

| baseline | factor |
|---|---|
| hard reset | 1.9× |
"""


def fake_checkout(tmp_path: Path, leaderboard: str | None) -> Path:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("profile: smoke\n")
    (tmp_path / "sub").mkdir()
    if leaderboard is not None:
        (tmp_path / "leaderboard").mkdir()
        (tmp_path / "leaderboard" / "LEADERBOARD.md").write_text(leaderboard)
    return tmp_path


def test_headline_tables_read_only_the_dataset_sections():
    tables = cli.headline_tables(LEADERBOARD_MD)
    assert [heading for heading, _, _ in tables] == ["digits (split 0123abcd)"]
    _, header, rows = tables[0]
    assert header[0] == "method" and len(rows) == 2 and rows[1][-1] == "f0a5d14c"  # links reduced to their text


def test_leaderboard_command_prints_the_headline_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(fake_checkout(tmp_path, LEADERBOARD_MD) / "sub")  # found from a subfolder too
    assert cli.main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    assert "digits (split 0123abcd)" in out and "96.80%" in out and "conversion" in out
    assert "arch" not in out and "f0a5d14c" not in out  # the short view leaves these columns out
    assert str(tmp_path / "leaderboard" / "LEADERBOARD.md") in out
    assert cli.main(["leaderboard", "--all-columns"]) == 0
    assert "f0a5d14c" in capsys.readouterr().out


def test_leaderboard_command_missing_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(fake_checkout(tmp_path, None))
    assert cli.main(["leaderboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LEADERBOARD.md is missing" in err[0]


def test_outside_a_checkout_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["stages"]) == 2
    assert "not inside a spikebench checkout" in capsys.readouterr().err


def test_unknown_subcommand_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "spikebench.cli", "frobnicate"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_smoke_runs_a_temp_experiment_and_prints_its_leaderboard(tmp_path, monkeypatch, capsys):
    """`spikebench smoke` = `dvc exp run --temp -S profile=smoke`, then the new experiment's headline table."""
    root = fake_checkout(tmp_path, "# no table yet\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    calls = []

    def fake_dvc(cmd, cwd, env=None):  # what `dvc exp run` leaves behind: a commit under refs/exps
        calls.append((list(cmd[1:]), env["MLFLOW_TRACKING_URI"]))
        (root / "leaderboard" / "LEADERBOARD.md").write_text(LEADERBOARD_MD)
        subprocess.run([*git, "commit", "-qam", "exp"], cwd=root, check=True)
        subprocess.run(["git", "update-ref", "refs/exps/ab/cdef/smoky-exp", "HEAD"], cwd=root, check=True)
        subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=root, check=True)
        return 0

    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(cli, "_call", fake_dvc)
    assert cli.main(["smoke", "-S", "stdp.epochs=1"]) == 0
    assert calls == [(["exp", "run", "--temp", "-S", "profile=smoke", "-S", "stdp.epochs=1"], f"sqlite:///{root / 'mlflow.db'}")]
    out = capsys.readouterr().out
    assert "96.80%" in out and "smoky-exp" in out
    assert (root / "leaderboard" / "LEADERBOARD.md").read_text() == "# no table yet\n"  # the workspace is untouched
