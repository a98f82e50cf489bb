"""Typed, nested configuration read from YAML, with ``_base_`` inheritance.

A config file is a YAML mapping. Its optional top-level ``_base_`` key (a path or a list of paths, relative to
the file's own folder) names files it inherits from, as fast-reid's ``_BASE_`` and mmcv's ``_base_`` do: the
bases are loaded recursively and merged in order, then the file's own keys are deep-merged on top. A mapping that
holds ``_delete_: true`` replaces the inherited mapping instead of merging into it.

The loaded plain dict is then turned into (frozen) dataclasses by :func:`from_dict`, which checks every value
against the field annotations and reports mistakes with the file and the dotted key::

    raw = apply_overrides(load_config_file("configs/x.yaml"), {"phase2.lr": 1e-3})
    cfg = from_dict(ExperimentConfig, raw, where="configs/x.yaml")

Every error is a :class:`ConfigError` (a ``ValueError``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

__all__ = [
    "NEUTRAL_DEFAULT", "ConfigError", "load_config_file", "merge", "apply_overrides", "from_dict", "to_dict", "flatten"]

#: Field metadata of an option left out of run identities while it holds its default (an option added after runs
#: exist; :mod:`lib.core.tracking` records the reads): ``field(default=…, metadata=NEUTRAL_DEFAULT)``.
NEUTRAL_DEFAULT = {"identity": "omit_default"}

T = TypeVar("T")

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
_NONE_TYPE = type(None)


class ConfigError(ValueError):
    """A configuration mistake; the message names the file (when known), the dotted key, expected and found.

    Attributes:
        key: The dotted key the error is about, when there is one (``"phase2.lr"``), else ``None``.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


# --------------------------------------------------------------------------------------------------------------
# Loading and merging plain mappings
# --------------------------------------------------------------------------------------------------------------


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping, resolving its ``_base_`` chain.

    ``_base_`` (a str or a list of str) names files relative to this file's folder; each is loaded recursively,
    later bases override earlier ones, and this file's other keys are deep-merged on top (see :func:`merge`).
    An empty file reads as an empty mapping.

    Args:
        path: The YAML file.

    Returns:
        A new plain dict, without the ``_base_`` key (nor any ``_delete_`` key).

    Raises:
        ConfigError: For a missing or unreadable file (naming the file whose ``_base_`` referred to it), invalid
            YAML, a top level that is not a mapping, a malformed ``_base_``, or a cycle of bases.
    """
    return _load(Path(path), chain=[], referrer=None)


def _load(path: Path, chain: list[tuple[Path, str]], referrer: str | None) -> dict[str, Any]:
    display = os.path.normpath(str(path))
    resolved = path.expanduser().resolve()
    seen = [r for r, _ in chain]
    if resolved in seen:
        cycle = " -> ".join([d for _, d in chain[seen.index(resolved):]] + [display])
        raise ConfigError(f"{chain[-1][1]}: cycle of {BASE_KEY} files: {cycle}")

    named_by = f" (named in {BASE_KEY} of {referrer})" if referrer else ""
    if not path.exists():
        raise ConfigError(f"config file not found: {display}{named_by}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{display}: cannot read config file{named_by}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display}: invalid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{display}: the top level must be a mapping, found {_found(data)}")

    own = {k: v for k, v in data.items() if k != BASE_KEY}
    bases = data.get(BASE_KEY)
    if bases is None:
        bases = []
    elif isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{display}: {BASE_KEY} must be a path or a list of paths, found {_found(data[BASE_KEY])}",
                          key=BASE_KEY)

    merged: dict[str, Any] = {}
    link = [*chain, (resolved, display)]
    for base in bases:
        merged = merge(merged, _load(path.parent / Path(base).expanduser(), link, display))
    return merge(merged, own)


def key_sources(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{dotted key: the file that sets it last}`` along a file's ``_base_`` chain, so that an error found in the
    merged configuration can name the file the offending value came from."""
    out: dict[str, str] = {}

    def visit(p: Path, depth: int) -> None:
        if depth > 32 or not p.is_file():
            return
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return
        if not isinstance(data, dict):
            return
        bases = data.get(BASE_KEY) or []
        for b in [bases] if isinstance(bases, str) else bases if isinstance(bases, list) else []:
            if isinstance(b, str):
                visit(p.parent / Path(b).expanduser(), depth + 1)
        for k in flatten({k: v for k, v in data.items() if k != BASE_KEY}):
            out[k] = os.path.normpath(str(p))

    visit(Path(path), 0)
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` over ``base`` into a new dict (the inputs are left untouched).

    Mapping values merge recursively; anything else (lists included) replaces. An override mapping that holds
    ``_delete_: true`` replaces the base mapping instead of merging into it; ``_delete_`` keys are dropped.

    Args:
        base: The mapping to start from.
        override: The mapping whose values win.

    Returns:
        The merged dict (values are deep copies).

    Raises:
        ConfigError: If a ``_delete_`` value is not a bool.
    """
    return _merge(base, override, "")


def _merge(base: Mapping[str, Any], override: Mapping[str, Any], path: str) -> dict[str, Any]:
    if _wants_delete(override, path):
        return _strip_delete(override, path)
    out = _plain_copy(base)
    for key, value in override.items():
        if key == DELETE_KEY:
            continue
        sub = _join(path, key)
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value, sub)
        elif isinstance(value, Mapping):
            out[key] = _strip_delete(value, sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _wants_delete(mapping: Mapping[str, Any], path: str) -> bool:
    flag = mapping.get(DELETE_KEY, False)
    if not isinstance(flag, bool):
        where = f" in {path!r}" if path else ""
        raise ConfigError(f"{DELETE_KEY}{where} must be true or false, found {_found(flag)}",
                          key=_join(path, DELETE_KEY))
    return flag


def _strip_delete(mapping: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == DELETE_KEY:
            _wants_delete(mapping, path)  # type check only
            continue
        out[key] = _strip_delete(value, _join(path, key)) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out


def _plain_copy(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain_copy(v) if isinstance(v, Mapping) else copy.deepcopy(v) for k, v in mapping.items()}


def apply_overrides(d: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set nested values from dotted keys, e.g. ``{"phase2.lr": 1e-3, "loss.ps_components": ["seq5"]}``.

    Intermediate mappings that do not exist are created. A value replaces what was there (mappings included).

    Args:
        d: The (plain, nested) config mapping; left untouched.
        overrides: Dotted key → value.

    Returns:
        A new dict with the overrides applied.

    Raises:
        ConfigError: If a key is empty or malformed, or its path goes through a value that is not a mapping.
    """
    out = _plain_copy(d)
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override key must be a dotted name like 'phase2.lr', found {_found(key)}")
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            if part not in node:
                node[part] = {}
            elif not isinstance(node[part], dict):
                through = ".".join(parts[: i + 1])
                raise ConfigError(f"override {key!r}: {through!r} is {_found(node[part])}, not a mapping", key=key)
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
    return out


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested mapping into dotted keys.

    ``{"a": {"b": 1}, "c": [1]}`` → ``{"a.b": 1, "c": [1]}``; an empty nested mapping stays: ``{"a": {}}``.

    Args:
        d: The nested mapping.
        prefix: Prepended (with a dot) to every key.

    Returns:
        A new flat dict (values are not copied).
    """
    out: dict[str, Any] = {}
    for key, value in d.items():
        dotted = _join(prefix, str(key))
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


# --------------------------------------------------------------------------------------------------------------
# Dataclasses from and to plain mappings
# --------------------------------------------------------------------------------------------------------------


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build the dataclass ``cls`` from a plain mapping, checking every value against the field annotations.

    Fields whose type is a dataclass are built recursively: an absent section keeps the field's default, a given
    mapping is merged over the default instance's values. Missing keys keep the dataclass defaults.

    Supported annotations: ``int`` (bool rejected), ``float`` (int accepted and converted; bool rejected),
    ``bool``, ``str``, ``Literal[...]``, ``X | None``, unions (the first member that fits wins),
    ``tuple[T, ...]`` / ``tuple[A, B]`` (from a list or tuple), ``list[T]``, ``dict[str, T]``, nested
    dataclasses, ``typing.Any`` (no check), and other plain classes (``isinstance`` check).

    Args:
        cls: The dataclass type (annotations may be strings, as with ``from __future__ import annotations``).
        data: The plain mapping, e.g. from :func:`load_config_file`.
        where: Prefix of every error message, e.g. the YAML file's path.

    Returns:
        The ``cls`` instance.

    Raises:
        ConfigError: For a wrongly typed value, an unknown or missing key, or a ``ValueError`` raised by the
            dataclass's own ``__post_init__`` (re-raised with ``where`` and the dotted section name).
        TypeError: If ``cls`` is not a dataclass or its annotations cannot be resolved (a programming error).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass type, found {cls!r}")
    return _build(cls, data, where, "", None)


def to_dict(obj: Any) -> dict[str, Any]:
    """Return a dataclass instance as a plain JSON-able dict, recursively.

    Nested dataclasses become dicts, tuples become lists and dicts are copied; fields declared with
    ``init=False`` are left out, so that ``from_dict(type(x), to_dict(x)) == x``.

    Args:
        obj: A dataclass instance.

    Returns:
        A new plain dict.

    Raises:
        TypeError: If ``obj`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_dict needs a dataclass instance, found {type(obj).__name__}")
    return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _build(cls: type[T], data: Any, where: str, path: str, base: Any) -> T:
    """Build ``cls`` from ``data``; ``base`` (an instance of ``cls`` or None) supplies the values of absent keys."""
    if not isinstance(data, Mapping):
        what = path or "the top level"
        raise ConfigError(f"{where}: {what} must be {_describe(cls)}, found {_found(data)}", key=path or None)
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # NameError for an unresolvable string annotation, mostly
        raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}") from exc

    init_fields = [f for f in dataclasses.fields(cls) if f.init]
    valid = [f.name for f in init_fields]
    for key in data:
        if key not in valid:
            dotted = _join(path, str(key))
            raise ConfigError(f"{where}: unknown key {dotted!r}; valid keys of {path or cls.__name__}: "
                              f"{', '.join(valid)}", key=dotted)

    kwargs: dict[str, Any] = {}
    for f in init_fields:
        dotted = _join(path, f.name)
        if f.name in data:
            default = getattr(base, f.name) if base is not None else _field_default(f)
            kwargs[f.name] = _convert(hints[f.name], data[f.name], where, dotted, default)
        elif base is not None:
            kwargs[f.name] = copy.deepcopy(getattr(base, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {dotted!r} ({_describe(hints[f.name])})", key=dotted)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        section = f"{path}: " if path else ""
        raise ConfigError(f"{where}: {section}{exc}", key=_checked_key(exc, valid, path) or None) from exc


def _checked_key(exc: ValueError, fields: list[str], path: str) -> str:
    """The dotted key a ``__post_init__`` check is about: its message starts with the field's name (``epochs:
    expected ≥ 1``, the workbook's convention), so ``phase1.epochs`` rather than the section ``phase1``. The precise
    key lets :func:`lib.methods.load_config` name the file (or the override) that set the offending value."""
    m = re.match(r"[A-Za-z_]\w*", str(exc))
    return _join(path, m.group()) if m and m.group() in fields else path


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _convert(tp: Any, value: Any, where: str, key: str, default: Any = None) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (tuple, float, dataclass...)."""
    if tp is Any or tp is object:
        return value
    if tp is None or tp is _NONE_TYPE:
        if value is None:
            return None
        raise _mismatch(tp, value, where, key)
    origin, args = get_origin(tp), get_args(tp)

    if origin is Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise _mismatch(tp, value, where, key)

    if origin is Union or origin is types.UnionType:
        if value is None and _NONE_TYPE in args:
            return None
        errors: list[ConfigError] = []
        for arm in args:
            if arm is _NONE_TYPE:
                continue
            try:
                return _convert(arm, value, where, key, default)
            except ConfigError as exc:
                errors.append(exc)
        deeper = [e for e in errors if e.key != key]
        if len(deeper) == 1:  # e.g. Optional[Section] with a bad value inside the section: report that one
            raise deeper[0]
        raise _mismatch(tp, value, where, key)

    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _mismatch(tp, value, where, key)
        return _build(tp, value, where, key, default if isinstance(default, tp) else None)

    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _mismatch(tp, value, where, key)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _mismatch(tp, value, where, key)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _mismatch(tp, value, where, key)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _mismatch(tp, value, where, key)

    if tp in (tuple, list) or origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _mismatch(tp, value, where, key)
        container = tuple if (tp is tuple or origin is tuple) else list
        if not args:
            return container(value)
        if container is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _mismatch(tp, value, where, key)
            return tuple(_convert(a, v, where, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        return container(_convert(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))

    if tp is dict or origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _mismatch(tp, value, where, key)
        key_tp, value_tp = args if args else (Any, Any)
        out: dict[Any, Any] = {}
        for k, v in value.items():
            try:
                k = _convert(key_tp, k, where, key)
            except ConfigError:
                raise ConfigError(f"{where}: {key} keys must be {_describe(key_tp)}, found {_found(k)}",
                                  key=key) from None
            out[k] = _convert(value_tp, v, where, _join(key, str(k)))
        return out

    if isinstance(tp, type) and origin is None:
        if isinstance(value, tp):
            return value
        raise _mismatch(tp, value, where, key)
    raise TypeError(f"{where}: {key}: unsupported annotation {tp!r}")


# --------------------------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------------------------


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _found(value: Any) -> str:
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _describe(tp: Any) -> str:
    """A human description of the annotation ``tp``: ``int``, ``one of 'a', 'b'``, ``a list of float``..."""
    if tp is Any or tp is object:
        return "anything"
    if tp is None or tp is _NONE_TYPE:
        return "None"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_describe(a) for a in args)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__} section)"
    if tp in (tuple, list) or origin in (tuple, list):
        if not args:
            return "a list"
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} items ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_describe(args[0])}"
    if tp is dict or origin in (dict, Mapping):
        if not args:
            return "a mapping"
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp)


def _scalar_types(tp: Any) -> set[Any]:
    """The scalar classes an annotation accepts (through unions), to pick a hint for a wrongly typed value."""
    if get_origin(tp) is Union or get_origin(tp) is types.UnionType:
        return set().union(*(_scalar_types(a) for a in get_args(tp)))
    return {tp} if tp in (int, float, bool) else set()


_EXPONENT = re.compile(r"([+-]?)(\d+)(?:\.(\d*))?[eE]([+-]?)(\d+)")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


def _hint(tp: Any, value: Any) -> str:
    """An explanation of a common YAML pitfall behind ``value`` not fitting ``tp`` (or "")."""
    if value is None:
        return " (an empty YAML value reads as null)"
    if not isinstance(value, str):
        return ""
    accepted = _scalar_types(tp)
    text = value.strip()
    if float in accepted:
        m = _EXPONENT.fullmatch(text)
        if m:
            sign, whole, frac, exp_sign, exp = m.groups()
            fixed = f"{sign}{whole}.{frac or '0'}e{exp_sign or '+'}{exp}"
            return f" (YAML reads {text} as a string: write {fixed})"
        if text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            return " (YAML spells infinity .inf and not-a-number .nan)"
    if accepted & {int, float} and _PLAIN_NUMBER.fullmatch(text):
        return " (a quoted number is a string in YAML: drop the quotes)"
    if bool in accepted and text.lower() in ("true", "false", "yes", "no", "on", "off"):
        return " (a quoted boolean is a string in YAML: drop the quotes)"
    return ""


def _mismatch(tp: Any, value: Any, where: str, key: str) -> ConfigError:
    what = key or "the top level"
    return ConfigError(f"{where}: {what} must be {_describe(tp)}, found {_found(value)}{_hint(tp, value)}", key=key)
