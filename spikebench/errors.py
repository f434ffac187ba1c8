"""One exception family for user-facing errors, and the CLI wrapper that prints them.

Stages raise a `SpikebenchError` subclass with a one-line message naming the file or
parameter and the fix; `cli_main` turns it into `error: <message>` on stderr and exit
status 2, never a traceback. Run as `python -m <stage module>`, `cli_main` also answers
`--help` (the module's docstring, the params.yaml sections it reads) without running, and
rejects any other argument with a one-line usage error (exit 2): a stage takes its settings
from params.yaml only.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
import sys
import textwrap
from collections.abc import Callable


class SpikebenchError(Exception):
    """A problem the user can fix; the message says what and how, on one line."""


class ParamsError(SpikebenchError):
    """An invalid value in params.yaml (or a method's arguments)."""


class DatasetError(SpikebenchError):
    """A missing, corrupt or mismatched dataset or split."""


class ModelError(SpikebenchError):
    """A model the requested operation cannot handle (e.g. an unsupported layer)."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (exit 2), pointing at --help."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help; settings live in params.yaml)\n")


def params_sections(func: Callable) -> list[str]:
    """The params.yaml sections `func` loads (`load_section(Cls, "name")` or a module constant)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return []
    module = sys.modules.get(func.__module__)
    sections = []
    for arg in re.findall(r"load_section\(\s*\w+\s*,\s*([\w\"']+)\s*\)", source):
        name = arg.strip("\"'") if arg[0] in "\"'" else getattr(module, arg, None)
        if isinstance(name, str) and name not in sections:
            sections.append(name)
    return sections


def stage_parser(func: Callable) -> argparse.ArgumentParser:
    """The `--help`-only parser of a stage module run as `python -m package.stage`."""
    module = sys.modules.get(func.__module__)
    spec = getattr(module, "__spec__", None)
    name = spec.name if spec is not None else func.__module__
    sections = params_sections(func)
    epilog = "Takes no arguments: every setting is read from params.yaml"
    epilog += f" (sections: {', '.join(sections)})." if sections else "."
    epilog += f" Usually run by DVC: `dvc repro {name.rsplit('.', 1)[-1]}` (or `spikebench run {name.rsplit('.', 1)[-1]}`)."
    return _OneLineParser(prog=f"python -m {name}", description=getattr(module, "__doc__", None),
                          epilog=textwrap.fill(epilog, 88), formatter_class=argparse.RawDescriptionHelpFormatter)


def cli_main(func: Callable[[], object]) -> Callable[[], None]:
    """Run `func` as a command-line entry point with one-line errors (and `--help` when run as a script)."""

    @functools.wraps(func)
    def wrapper() -> None:
        if func.__module__ == "__main__":  # `python -m ...`; a test calling main() in-process has its own argv
            stage_parser(func).parse_args(sys.argv[1:])
        try:
            func()
        except SpikebenchError as err:
            message = " ".join(str(err).split())
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper
