"""Command-line entry points: a user's mistake is one ``error: …`` line and exit status 2, never a traceback.

What counts as the user's mistake (:data:`USER_ERRORS`): a bad name, key, value or type (``ValueError``: the
configuration's ``ConfigError``, :class:`~lib.utils.paths.BadNameError`, a dataset whose files differ from its
manifest), an unknown key (``KeyError``), a file that is missing, unreadable or cannot be written (``OSError``: an
image that cannot be decoded, a full disk, a folder named like an image), a checkpoint the safe loader refuses, a
dataset folder that cannot be switched. The message names the file, key or value. Every other exception is a bug
and keeps its traceback; ``WORKBOOK_TRACEBACK=1`` shows the traceback of a user error too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["USER_ERRORS", "run_main"]


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..data.mlr_store import MLRBuildError
    from ..engine.checkpoint import UnsafeCheckpointError

    return ValueError, KeyError, OSError, UnsafeCheckpointError, MLRBuildError


USER_ERRORS = _user_errors()


def run_main(main: Callable[..., int], *args) -> int:
    """``main(*args)``; a :data:`USER_ERRORS` exception prints ``error: <message>`` to stderr and returns 2."""
    try:
        return main(*args)
    except USER_ERRORS as e:
        if os.environ.get("WORKBOOK_TRACEBACK") == "1":
            raise
        text = e.args[0] if isinstance(e, KeyError) and e.args else e  # a KeyError's str() is its repr
        print(f"error: {text}", file=sys.stderr)
        return 2
