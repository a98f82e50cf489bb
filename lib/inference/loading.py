"""A finished run folder → its configuration and trained modules, without the data it was trained on.

A run's ``metrics.json`` holds its identity: the method, the stage and every configuration value the stage read
while it was built (:mod:`lib.core.tracking`), plus the evaluation settings. Replaying those reads on the method's
configuration class rebuilds the configuration the stage saw (what it did not read cannot shape its modules);
the stage's ``modules`` hook (the one its ``build`` makes them with) makes the modules, ``model.pt`` fills them. Dependencies (phase 2's and Solo
SR's teacher) are the sibling folders the identity names.

    run = load_run("outputs/tiny/runs/pshrnet/synthetic/variants/default/split0/phase2")
    matcher = run.matcher("pshrnet")            # lib.inference.Matcher
    split = run.split()                         # the split it was trained and tested on
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..core.config import ConfigError, apply_overrides, from_dict, to_dict
from ..engine.checkpoint import UnsafeCheckpointError, load_checkpoint
from ..engine.precision import Precision, resolve_device, resolve_precision
from ..models.weights import pretrained_weights_skipped
from ..utils.paths import resolve_path

__all__ = ["RunLoadError", "LoadedRun", "load_run", "RunEntry", "OutputRun", "find_runs", "output_runs", "by_label",
           "config_from_identity"]


class RunLoadError(ValueError):
    """A folder is not a finished run this workbook can load (the message says why and what to do)."""


def config_from_identity(method: Any, identity: dict, eval_settings: dict | None = None,
                         inherited: dict | None = None) -> Any:
    """The typed configuration a stage saw: the configuration class's defaults with the identity's reads (and the
    recorded evaluation settings under ``test``) on top; ``inherited``: reads of its dependencies, applied first
    (phase 2 copied from its teacher never reads ``model``: the teacher's reads say what the network is).
    Pre-trained ``model.weights`` are not fetched again (``none``): the saved state replaces every weight."""
    reads = dict(inherited or {}) | dict(identity.get("config", {}))
    reads.pop("<root>", None)
    ordered = dict(sorted(reads.items(), key=lambda kv: kv[0].count(".")))  # whole sections before their leaves
    ordered |= {f"test.{k}": v for k, v in (eval_settings or {}).items()}
    body = apply_overrides(to_dict(from_dict(method.config_class, {})), ordered)
    if isinstance(body.get("model"), dict) and "weights" in body["model"]:
        body["model"]["weights"] = "none"
    try:
        return from_dict(method.config_class, body, where=f"run identity ({method.name})")
    except ConfigError as e:
        raise RunLoadError(f"the run's recorded configuration no longer fits {method.name}'s configuration class: {e}; "
                           "it was made by another version of the workbook") from None


def _precision(name: str, device: str = "auto") -> Precision:
    """The run's numerics (``bf16+channels_last`` …) on this machine's device."""
    return resolve_precision(resolve_device(device), "bf16" if name.startswith("bf16") else "fp32",
                             "channels_last" in name)


@dataclass
class LoadedRun:
    """A finished stage loaded from its folder (see the module docstring).

    Attributes:
        run_dir: the stage folder (``…/stages/split<k>/<stage>-<hash>``).
        method: the :class:`lib.methods.Method`; ``stage``: its stage name; ``cfg``: the rebuilt configuration.
        record: ``metrics.json`` (identity under ``run``, ``metrics``, ``data`` provenance, ``eval``).
        modules: the trained modules (eval mode, on ``precision.device``); ``deps``: loaded dependency stages.
    """

    run_dir: Path
    method: Any
    stage: str
    cfg: Any
    record: dict
    modules: dict[str, nn.Module]
    precision: Precision
    deps: dict[str, LoadedRun] = field(default_factory=dict)
    _dataset: Any = field(default=None, repr=False)  # loaded once; holds its build on disk as long as the run lives

    @property
    def identity(self) -> dict:
        return self.record["run"]

    @property
    def metrics(self) -> dict:
        return self.record["metrics"]

    @property
    def outputs(self) -> list[str]:
        """The method outputs this stage produces (``teacher_hr``, an HR-query test, only where recorded)."""
        return [o for o, (s, key) in self.method.outputs.items() if s == self.stage and key in self.metrics]

    def runs(self) -> dict[str, LoadedRun]:
        """``{stage: run}`` of this run and its dependencies (what the method's hooks take)."""
        out: dict[str, LoadedRun] = {}
        for d in self.deps.values():
            out |= d.runs()
        return out | {self.stage: self}

    def matcher(self, output: str | None = None):
        """The :class:`~lib.inference.Matcher` of ``output`` (default: this stage's first output)."""
        outs = self.outputs
        output = output or (outs[0] if outs else None)
        if output not in outs:
            raise RunLoadError(f"{self.run_dir}: output {output!r} is not produced by stage {self.stage!r} "
                               f"(it produces {', '.join(outs) or 'nothing loadable'})")
        if self.method.matcher is None:
            raise RunLoadError(f"method {self.method.name!r} has no test-time matcher")
        return self.method.matcher(output, self.runs(), self.cfg, self.precision)

    def manifest_path(self) -> Path:
        """The MLR manifest the run was tested on: the build it was made on when that is still on disk (the dataset
        folder may have been rebuilt since, :mod:`lib.data.mlr_store`), else the recorded path, else the profile's
        ``mlr/`` copy of it."""
        from ..data.mlr_store import build_for

        data = self.record.get("data", {})
        rec = Path(data.get("manifest", ""))
        profile_dir = self.run_dir.parents[5] if len(self.run_dir.parents) > 5 else self.run_dir.parent
        alt = profile_dir / "mlr" / rec.parent.name / rec.name if rec.name else None
        places = [p for p in (rec, alt) if p is not None and p.name]
        made_on = data.get("of_manifest_sha256") or self.identity.get("manifest_sha256", "")  # a validation view's data
        for place in places:
            own = build_for(place, made_on)
            if own is not None:
                return own
        for place in places:
            if place.is_file():
                return place
        raise RunLoadError(f"{self.run_dir}: its dataset manifest {rec} does not exist (nor {alt}); rebuild the dataset "
                           "with notebook 01 for the same profile")

    def dataset(self):
        """The :class:`~lib.data.MLRDataset` of the run (checked against the recorded manifest hash)."""
        from ..data import MLRDataset

        if self._dataset is not None:
            return self._dataset
        ds = MLRDataset.load(self.manifest_path())
        want = self.identity.get("manifest_sha256")
        if want and ds.fingerprint != want:
            raise RunLoadError(f"{self.run_dir}: the manifest {ds.manifest_path} changed since the run was made "
                               f"(sha256 {ds.fingerprint[:12]}…, the run recorded {want[:12]}…)")
        self._dataset = ds
        return ds

    def split(self):
        """The split the run was trained and tested on."""
        return self.dataset().split(int(self.identity["split"]))


def load_run(path: str | Path, *, device: str = "auto") -> LoadedRun:
    """Load a finished run folder (a stage folder or a variant link to one).

    Raises:
        RunLoadError: the folder does not exist, holds no finished run (no ``model.pt`` / ``metrics.json``: still
            training, killed — rerun its notebook to resume), or belongs to an unknown method or stage.
    """
    from ..methods import METHODS, PLUGINS_ENV

    p = resolve_path(path)
    if not p.exists():
        raise RunLoadError(f"run folder {p} does not exist")
    run_dir = p.resolve()
    if not run_dir.is_dir():
        raise RunLoadError(f"{p} is not a folder: expected a run folder holding model.pt and metrics.json")
    missing = [n for n in ("model.pt", "metrics.json") if not (run_dir / n).is_file()]
    if missing:
        hint = (" (training started but did not finish; rerun its notebook or `make reproduce` to resume from "
                "checkpoints/last.pt)" if (run_dir / "checkpoints" / "last.pt").is_file() else "")
        raise RunLoadError(f"{p} is not a finished run: {' and '.join(missing)} missing{hint}")
    try:
        record = json.loads((run_dir / "metrics.json").read_text())
        identity = record["run"]
        name, stage = identity["method"], identity["stage"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunLoadError(f"{run_dir / 'metrics.json'}: not a run record ({e})") from None
    if name not in METHODS:
        raise RunLoadError(f"{run_dir}: method {name!r} is not registered (known: {', '.join(METHODS.names())}; a "
                           f"method package outside lib/methods is imported through {PLUGINS_ENV}=package)")
    method = METHODS.get(name)
    if stage not in method.stages:
        raise RunLoadError(f"{run_dir}: method {name!r} has no stage {stage!r}")
    if not method.can_rebuild(stage):
        raise RunLoadError(f"{run_dir}: method {name!r}'s stage {stage!r} has no `modules` hook "
                           "(lib.core.runs.Stage), so its modules cannot be rebuilt outside a training run")
    deps = {}
    for dep, key in identity.get("deps", {}).items():
        dep_dir = run_dir.parent / f"{dep}-{key}"
        if not dep_dir.is_dir():
            raise RunLoadError(f"{run_dir}: its {dep} run {dep_dir} is missing")
        deps[dep] = load_run(dep_dir, device=device)
    inherited: dict = {}
    for d in deps.values():
        inherited |= d.identity.get("config", {})
    cfg = config_from_identity(method, identity, record.get("eval"), inherited)
    prec = _precision(identity.get("precision", "fp32"), device)
    with pretrained_weights_skipped():  # model.pt overwrites every tensor: no weights are fetched or read
        modules = method.modules(stage, cfg, identity, deps)
    try:
        state = load_checkpoint(run_dir / "model.pt")
    except UnsafeCheckpointError as e:  # a pickle that would run code: refused, never loaded
        raise RunLoadError(str(e)) from None
    except Exception as e:  # truncated / not a checkpoint
        raise RunLoadError(f"{run_dir / 'model.pt'}: cannot be read ({type(e).__name__}: {str(e)[:200]}); delete "
                           f"{run_dir} to retrain") from None
    for n, m in modules.items():
        try:
            m.load_state_dict(state[n])
        except (KeyError, RuntimeError) as e:
            raise RunLoadError(f"{run_dir / 'model.pt'}: cannot load '{n}' ({str(e)[:300]})") from None
        prec.prepare_module(m).eval()
    return LoadedRun(run_dir, method, stage, cfg, record, modules, prec, deps)


@dataclass(frozen=True)
class RunEntry:
    """A variant's link to a finished stage: ``runs/<method>/<dataset>/variants/<variant>/split<k>/<stage>``."""

    method: str
    dataset: str
    variant: str
    split: int
    stage: str
    path: Path

    @property
    def finished(self) -> bool:
        return (self.path / "model.pt").is_file() and (self.path / "metrics.json").is_file()


def find_runs(profile_dir: str | Path) -> list[RunEntry]:
    """Every variant link under ``profile_dir/runs`` that points at a finished run, sorted."""
    root = resolve_path(profile_dir) / "runs"
    out = []
    for link in sorted(root.glob("*/*/variants/*/split*/*")):
        method, dataset, _, variant, split, stage = link.relative_to(root).parts
        if not split[5:].isdigit():
            continue
        e = RunEntry(method, dataset, variant, int(split[5:]), stage, link)
        if e.finished:
            out.append(e)
    return out


@dataclass(frozen=True)
class OutputRun:
    """One trained output of one dataset and split: ``label`` (``method/variant/output``), its stage link, the
    output name."""

    label: str
    entry: RunEntry
    output: str

    @property
    def dataset(self) -> str:
        return self.entry.dataset

    @property
    def split(self) -> int:
        return self.entry.split


def output_runs(profile_dir: str | Path, dataset: str | None = None, split: int | None = None,
                skip_outputs: tuple[str, ...] = (), skip_keys: tuple[str, ...] = ("hr",)) -> list[OutputRun]:
    """The LR-query outputs of the finished runs of a profile (outputs read from the metrics key ``hr`` — HR
    queries, such as PS-HRNet's ``teacher_hr`` — are skipped; ``skip_outputs`` names more), optionally
    of one dataset and split, sorted by (dataset, split, label). Variants that share a run (Table VII's variants
    share one teacher) give it once, under ``default`` where that is one of them, else the first variant by name."""
    from ..methods import METHODS

    out: list[OutputRun] = []
    seen: set[tuple[Path, str]] = set()
    entries = sorted(find_runs(profile_dir), key=lambda e: (e.variant != "default", e.variant))
    for e in entries:
        if (dataset is not None and e.dataset != dataset) or (split is not None and e.split != split):
            continue
        if e.method not in METHODS:
            continue
        for o, (stage, key) in METHODS.get(e.method).outputs.items():
            if stage == e.stage and o not in skip_outputs and key not in skip_keys and (e.path.resolve(), o) not in seen:
                seen.add((e.path.resolve(), o))
                out.append(OutputRun(f"{e.method}/{e.variant}/{o}", e, o))
    return sorted(out, key=lambda r: (r.dataset, r.split, r.label))


def by_label(runs: list[OutputRun]) -> dict[str, OutputRun]:
    """``{label: run}`` of the outputs of ONE dataset and split (raises if several datasets / splits are mixed)."""
    keys = {(r.dataset, r.split) for r in runs}
    if len(keys) > 1:
        raise ValueError(f"by_label: outputs of several datasets / splits {sorted(keys)}; filter by dataset and split")
    return {r.label: r for r in runs}
