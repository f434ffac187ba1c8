"""One exception family for user-facing errors, and the CLI wrapper that prints them.

Stages raise a `SpikebenchError` subclass with a one-line message naming the file or
parameter and the fix; `cli_main` turns it into `error: <message>` on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class SpikebenchError(Exception):
    """A problem the user can fix; the message says what and how, on one line."""


class ParamsError(SpikebenchError):
    """An invalid value in params.yaml (or a method's arguments)."""


class DatasetError(SpikebenchError):
    """A missing, corrupt or mismatched dataset or split."""


class ModelError(SpikebenchError):
    """A model the requested operation cannot handle (e.g. an unsupported layer)."""


def cli_main(func: Callable[[], object]) -> Callable[[], None]:
    """Run `func` as a command-line entry point with one-line errors."""

    @functools.wraps(func)
    def wrapper() -> None:
        try:
            func()
        except SpikebenchError as err:
            message = " ".join(str(err).split())
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper
