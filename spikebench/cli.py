"""`spikebench`: the command line over the pipeline (DVC), the results and the MLflow UI.

Every command runs in the checkout that contains the current directory (the folder with
`dvc.yaml`). Pipeline work runs as subprocesses (`dvc ...`, `python -m ...`): this module
imports no stage module and nothing above the core.

  spikebench run [STAGE ...]   dvc repro (the whole pipeline, or the stages named and what they need)
  spikebench smoke             the smoke profile as a DVC experiment (params.yaml stays as it is)
  spikebench leaderboard       the headline table(s) of leaderboard/LEADERBOARD.md
  spikebench stages            every stage with its module and what it does
  spikebench times             how long each stage took in its latest MLflow run
  spikebench ui                the MLflow UI on http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

LEADERBOARD = Path("leaderboard") / "LEADERBOARD.md"
HEADLINE = re.compile(r"^## (\S+) \(split [0-9a-f]+\)\s*$")  # `## <dataset> (split <hash>)`
# the columns `spikebench leaderboard` shows by default (all with --all-columns), when present
# the short view's columns: a header is kept when it is one of these or starts with one and a space
SHORT_COLUMNS = ("method", "library", "T", "accuracy", "Δ vs ANN", "p (McNemar)", "SOPs/img", "energy/img", "compression")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


class CliError(Exception):
    """A one-line problem: printed as `spikebench: error: ...`, exit 2."""


def repo_root(start: Path | None = None) -> Path:
    """The checkout holding `start` (default: the current directory): the nearest folder with dvc.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    raise CliError(f"{here} is not inside a spikebench checkout (no dvc.yaml above it); cd into the repository")


def _tracking_env(root: Path) -> dict[str, str]:
    """The environment for pipeline subprocesses: the checkout's MLflow store unless one is set."""
    env = dict(os.environ)
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    env.setdefault("MPLCONFIGDIR", str(root / ".mplconfig"))
    return env


def _call(cmd: Sequence[str], root: Path, env: dict[str, str] | None = None) -> int:
    print("$ " + " ".join(cmd), flush=True)
    try:
        return subprocess.call(list(cmd), cwd=root, env=env)
    except FileNotFoundError as err:
        raise CliError(f"{cmd[0]}: not found; run `make setup` and use .venv/bin (or activate .venv)") from err


def _tool(name: str) -> str:
    """`name` from the running interpreter's bin folder (the venv), else from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


# ---- stages -------------------------------------------------------------------------------

def stage_table(root: Path) -> list[tuple[str, str, str]]:
    """(stage, module, first line of the module's docstring) for every stage of dvc.yaml, in order."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    table = []
    for name, stage in stages.items():
        words = str(stage["cmd"]).split()
        module = words[words.index("-m") + 1] if "-m" in words else ""
        path = root.joinpath(*module.split(".")).with_suffix(".py") if module else None
        doc = (ast.get_docstring(ast.parse(path.read_text())) if path and path.is_file() else None) or stage.get("desc") or ""
        paragraph = " ".join(doc.strip().split("\n\n")[0].split())
        summary = re.sub(r"^Stage `[^`]+`:\s*", "", paragraph)
        summary = summary if len(summary) <= 100 else summary[:99].rsplit(" ", 1)[0] + " …"
        table.append((name, module, summary))
    return table


def cmd_stages(args: argparse.Namespace) -> int:
    table = stage_table(repo_root())
    width_name = max(len(n) for n, _, _ in table)
    width_module = max(len(m) for _, m, _ in table)
    for name, module, summary in table:
        print(f"{name:<{width_name}}  {module:<{width_module}}  {summary}")
    print("\n`python -m <module> --help` describes a stage; `spikebench run <stage>` runs it (and what it needs).")
    return 0


# ---- leaderboard --------------------------------------------------------------------------

def _cells(line: str) -> list[str]:
    return [LINK.sub(r"\1", cell.strip()) for cell in line.strip().strip("|").split("|")]


def headline_tables(markdown: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of each dataset's headline table in LEADERBOARD.md."""
    tables, lines = [], markdown.splitlines()
    for i, line in enumerate(lines):
        if not HEADLINE.match(line):
            continue
        body = [row for row in lines[i + 1:] if not row.startswith("## ")]
        body = body[: next((k for k, r in enumerate(body) if r.startswith("![")), len(body))]
        rows = [r for r in body if r.startswith("|")]
        if len(rows) >= 2:
            tables.append((line[3:].strip(), _cells(rows[0]), [_cells(r) for r in rows[2:]]))
    return tables


def render_table(header: list[str], rows: list[list[str]], all_columns: bool) -> str:
    short = [i for i, name in enumerate(header) if any(name == s or name.startswith(f"{s} ") for s in SHORT_COLUMNS)]
    keep = (list(range(len(header))) if all_columns else short) or list(range(len(header)))
    table = [[header[i] for i in keep], *[[row[i] if i < len(row) else "" for i in keep] for row in rows]]
    widths = [max(len(r[c]) for r in table) for c in range(len(keep))]
    numeric = [all(re.match(r"^[-+]?[\d.,]+[%×]?$|^[–-]$|^all$", r[c]) for r in table[1:]) for c in range(len(keep))]
    out = []
    for k, row in enumerate(table):
        out.append("  ".join(cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric, strict=True)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _experiment_ref(root: Path, rev: str) -> str:
    """A DVC experiment's name (`refs/exps/.../<name>`) as its git ref; any other revision as given."""
    refs = subprocess.run(["git", "for-each-ref", "refs/exps", "--format=%(refname)"], cwd=root, capture_output=True, text=True)
    named = [ref for ref in refs.stdout.split() if ref.rsplit("/", 1)[-1] == rev]
    return named[0] if named else rev


def _leaderboard_text(root: Path, rev: str | None) -> str:
    if rev is None:
        path = root / LEADERBOARD
        if not path.is_file():
            raise CliError(f"{LEADERBOARD} is missing; run `spikebench run` (or `make run`) to build it")
        return path.read_text()
    shown = subprocess.run(["git", "show", f"{_experiment_ref(root, rev)}:{LEADERBOARD.as_posix()}"], cwd=root, capture_output=True, text=True)
    if shown.returncode != 0:
        raise CliError(f"no {LEADERBOARD} at revision {rev!r}: {shown.stderr.strip().splitlines()[-1] if shown.stderr.strip() else 'git show failed'}")
    return shown.stdout


def cmd_leaderboard(args: argparse.Namespace) -> int:
    root = repo_root()
    tables = headline_tables(_leaderboard_text(root, args.rev))
    if not tables:
        raise CliError(f"{LEADERBOARD}: no headline table (`## <dataset> (split ...)`); re-run the leaderboard stage")
    for heading, header, rows in tables:
        print(f"\nHeadline: {heading}\n")
        print(render_table(header, rows, args.all_columns))
    source = f"{LEADERBOARD} at {args.rev}" if args.rev else root / LEADERBOARD
    print(f"\nFull leaderboard (detail tables, hardware, claims, plots): {source}")
    return 0


# ---- pipeline -----------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    root = repo_root()
    flags = (["--force"] if args.force else []) + (["--dry"] if args.dry else [])
    rc = _call([_tool("dvc"), "repro", *flags, *args.stages], root, _tracking_env(root))
    if rc == 0 and not args.stages and not args.dry:
        print()
        cmd_leaderboard(argparse.Namespace(rev=None, all_columns=False))
    return rc


def _newest_experiment(root: Path) -> str | None:
    refs = subprocess.run(["git", "for-each-ref", "refs/exps", "--sort=-committerdate", "--count=1", "--format=%(refname)"],
                          cwd=root, capture_output=True, text=True)
    return refs.stdout.strip().rsplit("/", 1)[-1] or None


def cmd_smoke(args: argparse.Namespace) -> int:
    """`dvc exp run --temp -S profile=smoke`: runs in a temporary copy, so the workspace is untouched."""
    root = repo_root()
    before = _newest_experiment(root)
    extra = (["-n", args.name] if args.name else []) + [a for p in args.set_param for a in ("-S", p)]
    rc = _call([_tool("dvc"), "exp", "run", "--temp", "-S", "profile=smoke", *extra], root, _tracking_env(root))
    if rc != 0:
        return rc
    after = _newest_experiment(root)
    if after and after != before:
        cmd_leaderboard(argparse.Namespace(rev=after, all_columns=False))
    name = after if after and after != before else "<name>"
    print(f"\nThe workspace is unchanged. Compare: dvc exp show; this leaderboard again: spikebench leaderboard --rev {name}; "
          f"its files in the workspace: dvc exp apply {name}")
    return 0


def cmd_times(args: argparse.Namespace) -> int:
    root = repo_root()
    return subprocess.call([sys.executable, "-m", "spikebench.timings"], cwd=root, env=_tracking_env(root))


def cmd_ui(args: argparse.Namespace) -> int:
    root = repo_root()
    store = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {store}); Ctrl-C stops it", flush=True)
    try:
        return _call([_tool("mlflow"), "ui", "--host", "127.0.0.1", "--port", str(args.port), "--backend-store-uri", store], root)
    except KeyboardInterrupt:
        return 0


# ---- parser -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikebench", description=__doc__.split("\n\n  spikebench")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="`spikebench COMMAND --help` describes a command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="reproduce the pipeline (dvc repro), then print the headline table",
                              description="Run `dvc repro` (every stage, or STAGE and what it needs); stages whose inputs did "
                                          "not change are skipped. A full run ends with the leaderboard's headline table.")
    run.add_argument("stages", nargs="*", metavar="STAGE", help="stage names (see `spikebench stages`); default: all")
    run.add_argument("-f", "--force", action="store_true", help="re-run even unchanged stages (dvc repro --force)")
    run.add_argument("--dry", action="store_true", help="only print what would run (dvc repro --dry)")
    run.set_defaults(handler=cmd_run)

    smoke = commands.add_parser("smoke", help="the smoke profile as a DVC experiment (a few minutes)",
                                description="Run the whole pipeline on the smoke profile (digits, short training) as a DVC "
                                            "experiment in a temporary copy: `dvc exp run --temp -S profile=smoke`. The "
                                            "workspace (params.yaml, results, leaderboard) is left as it is; the runs go to "
                                            "the same MLflow store. Compare afterwards with `dvc exp show`.")
    smoke.add_argument("-n", "--name", help="the experiment's name (default: DVC picks one)")
    smoke.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                       help="another params.yaml override for this experiment (repeatable), e.g. -S stdp.epochs=1")
    smoke.set_defaults(handler=cmd_smoke)

    board = commands.add_parser("leaderboard", help="print the headline table(s) of leaderboard/LEADERBOARD.md",
                                description="Print each dataset's headline table from leaderboard/LEADERBOARD.md.")
    board.add_argument("-a", "--all-columns", action="store_true", help="every column (default: the main ones)")
    board.add_argument("--rev", help="the leaderboard of a DVC experiment (its name, see `dvc exp show`) or a git revision")
    board.set_defaults(handler=cmd_leaderboard)

    stages = commands.add_parser("stages", help="list the stages, their modules and what they do",
                                 description="List the stages of dvc.yaml with their module and one-line description.")
    stages.set_defaults(handler=cmd_stages)

    times = commands.add_parser("times", help="how long each stage took (latest MLflow runs)",
                                description="Print each stage's time in its latest MLflow run (python -m spikebench.timings).")
    times.set_defaults(handler=cmd_times)

    ui = commands.add_parser("ui", help="serve the MLflow UI on 127.0.0.1",
                             description="Serve the MLflow UI for this checkout's store (MLFLOW_TRACKING_URI, else "
                                         "sqlite:///<repo>/mlflow.db) on the loopback interface only.")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    ui.set_defaults(handler=cmd_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CliError as err:
        print(f"spikebench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `spikebench leaderboard | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
