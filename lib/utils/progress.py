"""Progress you can see from the terminal while papermill runs a notebook (whose own output stays in the notebook).

The kernel's trainer and run lifecycle call :func:`report` with one line per event — a stage reused, resumed or
started, one line per epoch (loss, seconds per epoch, ETA), an evaluation. When the environment variable
:data:`ENV` names a file, the line is appended to it; otherwise nothing happens (a notebook run by hand shows its
tqdm bars instead). :class:`ProgressTail`, used by ``python -m lib.workbook``, creates that file for each
notebook and prints new lines to the terminal as they come, prefixed with the notebook's name; the runner hands the
file's name to the kernel in the kernel's own environment (:func:`lib.kernel.kernel_manager_with_env`), so two
notebooks started from two threads at once each report to their own file. Quiet (the file is still written) when
``CI`` or ``WORKBOOK_QUIET`` is set.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

__all__ = ["ENV", "report", "epoch_line", "format_seconds", "ProgressTail", "quiet", "bars_off"]

#: The environment variable naming the progress file: in a notebook's kernel, set at its start by the runner
#: (:func:`lib.kernel.kernel_manager_with_env`); :class:`ProgressTail` also sets it in this process while it is open.
ENV = "WORKBOOK_PROGRESS_FILE"


def quiet() -> bool:
    """Whether terminal progress is off (``CI`` or ``WORKBOOK_QUIET`` set, and not to ``0`` / ``false`` / ``no``)."""
    off = ("", "0", "false", "no")
    return os.environ.get("CI", "").lower() not in off or os.environ.get("WORKBOOK_QUIET", "0").lower() not in off


def bars_off(progress: bool = True) -> bool:
    """``disable=`` for a tqdm bar: off when the caller asks for no progress, under :func:`quiet`, or when tqdm's own
    ``TQDM_DISABLE`` is set (an explicit ``disable=False`` would otherwise override that variable)."""
    off = ("", "0", "false", "no")
    return not progress or quiet() or os.environ.get("TQDM_DISABLE", "").lower() not in off


def report(line: str) -> None:
    """Append one progress line to the file named by :data:`ENV` (no-op when unset, and on every process but the
    first under ``torchrun``)."""
    path = os.environ.get(ENV)
    if not path or os.environ.get("RANK", "0") != "0":
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line.replace("\n", " ") + "\n")
    except OSError:  # progress must never break a run
        pass


def format_seconds(s: float) -> str:
    """``75`` → ``'1m15s'``, ``3700`` → ``'1h01m'``."""
    s = int(round(max(0.0, s)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def epoch_line(desc: str, epoch: int, epochs: int, loss: float | None, epoch_s: float, mean_epoch_s: float) -> str:
    """``'<desc> epoch 3/30 loss 1.234 12.1s/epoch ETA 5m27s'`` (``epoch`` 1-based; ETA from the mean epoch time)."""
    text = f"{desc} epoch {epoch}/{epochs}"
    if loss is not None:
        text += f" loss {loss:.4g}"
    return text + f" {epoch_s:.1f}s/epoch ETA {format_seconds(mean_epoch_s * (epochs - epoch))}"


#: The logs of the tails open in this process, oldest first, and :data:`ENV`'s value before the first opened; under
#: ``_TAILS_LOCK``. Tails may close in any order (two reproductions in two threads of one process): :data:`ENV` names
#: the newest still open, and is restored once the last closes.
_TAILS: list[str] = []
_ENV_BEFORE: list[str | None] = [None]
_TAILS_LOCK = threading.Lock()


class ProgressTail:
    """``with ProgressTail(path, prefix):`` — point :data:`ENV` at ``path`` (emptied first) for the duration and
    print every line appended to it as ``[prefix] line`` (a background thread polling every ``interval`` s).

    Tails open in several threads at once may close in any order; when the last closes, :data:`ENV` is what it was
    before the first opened."""

    def __init__(self, path: str | os.PathLike, prefix: str, *, interval: float = 1.0, stream=None) -> None:
        self.path, self.prefix, self.interval = Path(path), prefix, interval
        self.stream = stream if stream is not None else sys.stdout
        self._stop = threading.Event()
        self._pos = 0
        self.lines: list[str] = []

    def _drain(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self._pos)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind("\n") + 1  # only whole lines
        self._pos += len(chunk[:end].encode("utf-8"))
        for line in chunk[:end].splitlines():
            self.lines.append(line)
            if not quiet():
                print(f"[{self.prefix}] {line}", file=self.stream, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._drain()

    def __enter__(self) -> ProgressTail:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        with _TAILS_LOCK:
            if not _TAILS:
                _ENV_BEFORE[0] = os.environ.get(ENV)
            _TAILS.append(str(self.path))
            os.environ[ENV] = str(self.path)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        self._stop.set()
        self._thread.join()
        self._drain()
        with _TAILS_LOCK:
            _TAILS.remove(str(self.path))
            now = _TAILS[-1] if _TAILS else _ENV_BEFORE[0]
            if now is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = now
        return False
