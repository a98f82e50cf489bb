"""Which configuration values a stage actually reads: the basis of its identity (no hand-kept key lists).

A stage builds its models, data and loss from a :class:`ConfigReader` around the typed configuration. Every
leaf value read through it is recorded under its dotted key (``phase2.lr``, ``loss.ps_components``); a stage's
identity is exactly that record. A new configuration field therefore enters the identity of the stages that
read it and of no other. After the identity is fixed the reader is *frozen*: reading a key that is not in the
record raises (a stage must read everything that shapes its training while it is built), so the identity
can never silently miss a setting.

Sections that are not part of any identity (evaluation and execution settings) are *hidden* from the reader;
a stage receives them separately.

An option added to a configuration class after runs exist can be declared *neutral at its default*
(``field(default=…, metadata=NEUTRAL_DEFAULT)``): while it holds its default it is left out of the record (read
alone or as part of a whole section, :func:`unwrap`), so adding it does not invalidate the runs made before it
existed; set to anything else it enters the identity like every other key.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

__all__ = ["ConfigReader", "LateConfigRead", "unwrap", "NEUTRAL_DEFAULT"]

from .config import NEUTRAL_DEFAULT  # noqa: E402  (declared with the configuration; recorded here)


class LateConfigRead(RuntimeError):
    """A stage read a configuration key after its identity was computed."""


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v) if not _neutral(f, getattr(v, f.name))}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _neutral(f: dataclasses.Field, value: Any) -> bool:
    """A field declared :data:`NEUTRAL_DEFAULT` that holds its default."""
    if f.metadata.get("identity") != "omit_default":
        return False
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return value == default


class _Log:
    def __init__(self, hidden: frozenset[str]) -> None:
        self.reads: dict[str, Any] = {}
        self.frozen = False
        self.hidden = hidden

    def record(self, path: str, value: Any) -> None:
        if self.frozen and path not in self.reads and not any(path.startswith(p + ".") for p in self.reads):
            raise LateConfigRead(
                f"configuration key {path!r} was read after the stage's identity was computed; read it while the "
                "stage is built (so that it is part of the identity)")
        self.reads.setdefault(path, _plain(value))


class ConfigReader:
    """Attribute access to a dataclass configuration that records every leaf read.

    Nested dataclasses come back wrapped (so their reads are recorded with the dotted path); properties and
    methods of the configuration classes run on the wrapper, so what *they* read is recorded too.
    :func:`unwrap` returns the plain object and records the whole subtree as read.

    Args:
        obj: the configuration (a dataclass instance).
        hidden: top-level sections a stage may not read through the reader (e.g. ``test``, ``runtime``).
    """

    __slots__ = ("_obj", "_log", "_prefix")

    def __init__(self, obj: Any, hidden: tuple[str, ...] = (), *, _log: _Log | None = None, _prefix: str = "") -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_log", _log or _Log(frozenset(hidden)))
        object.__setattr__(self, "_prefix", _prefix)

    def __getattr__(self, name: str) -> Any:
        obj, log, path = self._obj, self._log, self._prefix + name
        if path in log.hidden:
            raise AttributeError(f"configuration section {name!r} is not part of a stage's identity; the stage "
                                 "receives it separately (StageContext.test / .runtime)")
        attr = inspect.getattr_static(type(obj), name, None)
        if isinstance(attr, property):
            return attr.fget(self)
        if inspect.isfunction(attr):
            return attr.__get__(self, type(self))
        value = getattr(obj, name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return ConfigReader(value, _log=log, _prefix=path + ".")
        f = next((f for f in dataclasses.fields(obj) if f.name == name), None) if dataclasses.is_dataclass(obj) else None
        if f is None or not _neutral(f, value):  # a neutral option at its default stays out of the identity
            log.record(path, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("configurations are read-only")

    def __repr__(self) -> str:
        return f"ConfigReader({self._obj!r})"

    @property
    def reads(self) -> dict[str, Any]:
        """``{dotted key: value}`` of everything read so far (JSON-able), sorted by key."""
        return dict(sorted(self._log.reads.items()))

    def freeze(self) -> None:
        """From now on, reading a key that was not read before raises :class:`LateConfigRead`."""
        self._log.frozen = True


def unwrap(cfg: Any) -> Any:
    """The plain configuration object behind a reader (recording the whole subtree as read); others unchanged."""
    if isinstance(cfg, ConfigReader):
        obj = object.__getattribute__(cfg, "_obj")
        prefix = object.__getattribute__(cfg, "_prefix")
        object.__getattribute__(cfg, "_log").record(prefix.rstrip(".") or "<root>", obj)
        return obj
    return cfg
