"""Methods by name (:data:`METHODS`), each in its own package, sharing data, engine, losses, evaluation, tables.

A :class:`Method` is a typed configuration class plus a graph of stages (:class:`~lib.core.runs.Stage`) and the
*outputs* a table can show (``output name -> (stage, metrics key)``). Configurations come from YAML files with
``_base_`` inheritance (``configs/<method>/*.yaml``, each naming its ``method``); a *variant* is a configuration
plus a few dotted overrides (``phase2.losses.ps: 0``).

    method = METHODS.get("pshrnet")
    cfg = load_config("configs/pshrnet/cpu.yaml", {"phase2.losses.ps": 0.0})
    metrics, runs = run_variant(method, cfg, ds=ds, split=0, root="outputs/cpu/runs", variant="sr_id")
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.config import ConfigError, apply_overrides, flatten, from_dict, key_sources, load_config_file, to_dict
from ..core.registry import Registry
from ..core.runs import RunResult, Stage, run_stage
from ..utils.io import jsonable
from ..utils.paths import repo_root, resolve_path
from .contract import (BuildModules, MatcherHook, Method, MethodConfig, MethodsRow, QueryPath, TestConfig,
                       WorkbookTable)

__all__ = ["METHODS", "Method", "MethodConfig", "TestConfig", "QueryPath", "BuildModules", "MatcherHook",
           "WorkbookTable", "MethodsRow", "load_config", "config_method", "method_of", "run_variant", "differences",
           "RESULT_RUNTIME_KEYS", "PLUGINS_ENV", "import_plugins"]

#: Runtime settings that change what a run computes (listed among a table's differences from the paper).
RESULT_RUNTIME_KEYS = ("runtime.max_steps_per_epoch",)

#: Methods by name; ``lib.methods.<name>`` registers itself on import.
METHODS = Registry("method")


def method_of(cfg: Any) -> Method:
    """The registered :class:`Method` whose configuration class ``cfg`` is an instance of."""
    mro = type(cfg).__mro__  # the registered configuration class nearest to cfg's own class
    hits = [(mro.index(m.config_class), m) for m in METHODS.in_order() if m.config_class in mro]
    if hits:
        return min(hits, key=lambda h: h[0])[1]
    raise TypeError(f"{type(cfg).__name__} is the configuration of no registered method (registered: "
                    f"{', '.join(METHODS.names())}; a method outside lib/methods registers through {PLUGINS_ENV})")


def config_method(data: Mapping[str, Any], where: str) -> Method:
    """The :class:`Method` a configuration mapping names in its ``method`` key."""
    name = data.get("method")
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"{where}: 'method' must name a registered method (one of {', '.join(METHODS.names())}; a "
                          f"method package outside lib/methods is imported through {PLUGINS_ENV}), found {name!r}")
    return METHODS.get(name)


def load_config(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None):
    """A method's typed configuration from a YAML file (``_base_`` resolved), with dotted ``overrides`` on top.

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key or a wrong type, naming the file and the key — where
            the offending value was written: an override (``override phase1.epochs=-1``), or the file of the
            ``_base_`` chain it comes from.
    """
    p = resolve_path(path)
    data = load_config_file(p)
    method = config_method(data, str(p))
    overrides = dict(overrides or {})
    body = apply_overrides({k: v for k, v in data.items() if k != "method"}, overrides)
    where = str(p) if not overrides else f"{p} (+ overrides {overrides})"
    try:
        return from_dict(method.config_class, body, where=where)
    except ConfigError as e:
        key, detail = e.key, str(e).removeprefix(f"{where}: ")
        # an override set it: the key itself, a key inside an overridden mapping, or the section of an overridden key
        hit = next((k for k in overrides if key and (k == key or key.startswith(k + ".") or k.startswith(key + "."))),
                   None)
        if hit is not None:
            raise ConfigError(f"override {hit}={overrides[hit]!r} (configuration {p} + overrides): {detail}",
                              key=key) from None
        src = key_sources(p)  # else the file of the _base_ chain the offending value came from
        origin = next((src[k] for k in (key, *(k for k in src if key and k.startswith(key + "."))) if k in src),
                      None) if key else None
        if origin and os.path.normpath(origin) != os.path.normpath(str(p)):
            raise ConfigError(f"{e} (the value comes from {origin})", key=key) from None
        raise


def run_variant(method: Method, cfg: Any, *, ds: Any, split: int, root: str | Path, variant: str = "default",
                outputs: Iterable[str] | None = None, progress: bool = True) -> tuple[dict[str, dict], dict[str, RunResult]]:
    """Run (or reuse) the stages ``outputs`` need on one split; returns ``({output: metrics}, {stage: run})``.

    ``outputs`` default to all of the method's; an output whose metrics key a run lacks (e.g. the HR-query result
    on CAVIAR, whose queries have no HR original) is left out.
    """
    outputs = list(outputs or method.outputs)
    runs: dict[str, RunResult] = {}
    for s in method.stages_for(outputs):
        stage = method.stages[s]
        runs[s] = run_stage(stage, method=method.name, cfg=cfg, ds=ds, split=split, root=root, variant=variant,
                            deps={d: runs[d] for d in stage.deps}, progress=progress)
    metrics = {o: runs[method.outputs[o][0]].metrics[method.outputs[o][1]] for o in outputs
               if method.outputs[o][1] in runs[method.outputs[o][0]].metrics}
    return metrics, runs


def differences(method: Method, ours: Any, paper: Any, skip: Iterable[str] = (),
                read: Iterable[str] | None = None) -> list[str]:
    """Every setting of ``ours`` that differs from ``paper`` (both the method's configurations), in words:
    ``'data.height 128 (paper 256)'``. Keys under ``method.not_compared`` or ``skip`` are left out, and so are the
    execution settings (``runtime.*``) except those that change what is trained (:data:`RESULT_RUNTIME_KEYS`).

    ``read``: the configuration keys the row's runs read (their identities' ``config``): a setting no stage of the
    row read cannot have shaped it (Table V's phase-1 rows do not list phase-2 settings) and is left out; evaluation
    and execution sections (``test``, ``runtime``) are never in identities and are always compared."""
    read = None if read is None else set(read)

    def used(k: str) -> bool:
        if read is None or k.split(".")[0] in ("test", "runtime"):
            return True
        return any(k == r or k.startswith(r + ".") or r.startswith(k + ".") for r in read)
    a, b = flatten(jsonable(to_dict(ours))), flatten(jsonable(to_dict(paper)))
    a = {k: v for k, v in a.items() if v != {}}  # an emptied mapping shows as its removed keys
    b = {k: v for k, v in b.items() if v != {}}
    drop = tuple(method.not_compared) + tuple(skip)
    out = []
    for k in sorted(set(a) | set(b), key=lambda k: (k.split(".")[0], k)):
        execution = k.startswith("runtime.") and k not in RESULT_RUNTIME_KEYS
        if execution or any(k == d or k.startswith(d + ".") for d in drop) or a.get(k) == b.get(k) or not used(k):
            continue
        fmt = lambda v: (",".join(map(str, v)) or "none") if isinstance(v, list) else ("—" if v is None else str(v))  # noqa: E731
        out.append(f"{k} {fmt(a.get(k))} (paper {fmt(b.get(k))})")
    return out


def paper_config_path(method: Method) -> Path:
    return repo_root() / method.paper_config


#: Environment variable naming extra method packages to import (comma-separated module names, e.g.
#: ``LIB_METHODS=my_lab.sr_reid``): each registers its :class:`Method` on import, and every part of the workbook —
#: tables, plan, explorer, sweep, ``python -m lib.rank`` — then knows it without an edit under ``lib/``.
PLUGINS_ENV = "LIB_METHODS"


def import_plugins(names: str | None = None) -> list[str]:
    """Import the method packages named in ``names`` (default: the :data:`PLUGINS_ENV` variable); returns them.

    Raises:
        ImportError: a package that cannot be imported, naming it and the variable it came from.
    """
    names = os.environ.get(PLUGINS_ENV, "") if names is None else names
    done = []
    for mod in (n.strip() for n in names.split(",")):
        if not mod:
            continue
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise ImportError(f"{PLUGINS_ENV}={names!r}: cannot import method package {mod!r} ({e}); it must be "
                              "importable from PYTHONPATH (the pool's workers start in the repository root)") from e
        done.append(mod)
    return done


# Every method package registers itself (BasicSR's auto-import of *_arch.py, made explicit), in the order tables
# and the methods table list them; then the packages named in LIB_METHODS.
from . import pshrnet  # noqa: E402,F401
from . import ftwa  # noqa: E402,F401

import_plugins()
