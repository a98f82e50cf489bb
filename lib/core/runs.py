"""The generic run lifecycle: build a stage, name it by what it reads, reuse / resume / train / evaluate.

A *method* (PS-HRNet, FTWA, …) is a graph of *stages* (phase 1 → phase 2; a baseline). Running a stage:

1. its ``build`` makes the models, data, step and evaluation from a :class:`~lib.core.tracking.ConfigReader`;
2. its **identity** is what it read (dotted key → value), plus the data (dataset, manifest hash, split), the
   resolved numerics and the identities of the stages it depends on — no hand-kept key lists;
3. the run lives in a folder named by the identity's hash, ``runs/<method>/<dataset>/stages/split<k>/
   <stage>-<hash>/``: two variants that differ only in phase 2 share one phase-1 folder (Table VII's variants
   train one teacher), variants never overwrite each other, and each variant sees its runs through links
   ``runs/<method>/<dataset>/variants/<variant>/split<k>/<stage>``;
4. a finished run (``model.pt`` + ``metrics.json`` vouching for it) is reused; if only evaluation settings
   changed, or it has no per-query records (``per_query.json``, what the tables' intervals resample), it is
   re-evaluated; a killed run resumes from ``checkpoints/last.pt``; otherwise it trains.

Before any of that, the dataset's LR files are checked against the manifest the identity names
(:meth:`lib.data.MLRDataset.verify_split`): a run never trains, evaluates or is reused on images other than those.
Checkpoints and ``model.pt`` are read with the restricted unpickler (:mod:`lib.engine.checkpoint`): a run folder
from someone else cannot run code here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..engine import distributed as D
from ..engine.checkpoint import load_checkpoint, save_checkpoint
from ..engine.evaluate import split_per_query
from ..engine.optim import OptimConfig
from ..engine.precision import Precision
from ..engine.runtime import RuntimeConfig
from ..engine.trainer import Trainer
from ..losses.triplet import DISTANCE_DTYPE
from ..models.weights import pretrained_weights_skipped
from ..utils.io import atomic_write_json, jsonable
from ..utils.seed import seed_everything
from ..utils.progress import report
from .tracking import ConfigReader

__all__ = ["Stage", "BuildModules", "StageContext", "StagePlan", "RunResult", "run_stage", "identity_key", "saved_history", "PER_QUERY_FILE",
           "HIDDEN_SECTIONS", "run_lock", "RUN_LOCK_FILE",
           "LazyModules", "release", "build_stage", "stage_dir", "finished_record"]

#: Configuration sections a stage never reads through its reader (they are not part of any identity).
HIDDEN_SECTIONS = ("test", "runtime")
#: The lock a process holds on a run folder while it checks, trains or evaluates the run (:func:`run_lock`).
RUN_LOCK_FILE = ".run.lock"
#: A finished run's per-query records (``{"outputs": {output: {index, pid, rank1, ap}}, "eval": …}``), written with
#: ``metrics.json``; a run finished without one is evaluated again when reused (nothing retrains).
PER_QUERY_FILE = "per_query.json"


@dataclass
class StageContext:
    """What a stage's ``build`` gets: the tracked configuration and everything that is not configuration."""

    method: str
    stage: str
    cfg: ConfigReader  # reads are recorded: the identity
    test: Any  # evaluation settings (a re-evaluation, never a retraining, when they change)
    runtime: RuntimeConfig
    ds: Any  # MLRDataset or ValidationView
    split: int
    prec: Precision
    deps: dict[str, RunResult]
    progress: bool = True


@dataclass
class StagePlan:
    """What a stage trains and how it is evaluated.

    ``modules`` are trained and saved; ``make_step(modules | frozen) -> step`` (see :class:`~lib.engine.Trainer`);
    ``evaluate() -> metrics`` runs on the plain modules; ``identity`` adds facts of the data (e.g. the number
    of classes); ``eval_settings`` are recorded so a change re-evaluates the finished run.
    """

    modules: dict[str, nn.Module]
    dataset: Any
    sampler: Any
    optim: OptimConfig
    make_step: Callable[[dict[str, nn.Module]], Callable]
    evaluate: Callable[[], dict[str, Any]]
    frozen: dict[str, nn.Module] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    eval_settings: dict[str, Any] = field(default_factory=dict)
    monitor: Callable[[], dict[str, float]] | None = None  # after every epoch: extra history columns (observes only)
    chance: dict[str, float] = field(default_factory=dict)  # history column of an identity loss → its chance level


class BuildModules(Protocol):
    """``(cfg, identity, {stage: run}) -> {name: module}``: a stage's modules, untrained, from a configuration, the
    facts its ``build`` recorded in the identity (``num_classes`` …) and its loaded dependency runs. The stage's
    ``build`` makes its modules with it, and :func:`lib.inference.load_run` rebuilds a finished run's with it, so
    the two cannot drift apart."""

    def __call__(self, cfg: Any, identity: Mapping[str, Any], deps: Mapping[str, RunResult]) -> dict[str, nn.Module]: ...


@dataclass(frozen=True)
class Stage:
    """A node of a method's stage graph: ``build(ctx) -> StagePlan``; ``deps`` are run first (their results are
    ``ctx.deps``); ``seed_offset`` is added to the configuration's seed for this stage; ``modules``
    (:class:`BuildModules`) makes the stage's modules, for its ``build`` and for rebuilding a finished run."""

    name: str
    build: Callable[[StageContext], StagePlan]
    deps: tuple[str, ...] = ()
    seed_offset: int = 0
    modules: BuildModules | None = None


@dataclass
class RunResult:
    """A finished stage: its modules, metrics, history, folder and identity."""

    stage: str
    modules: dict[str, nn.Module]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    run_dir: Path
    identity: dict[str, Any]
    key: str


class LazyModules(Mapping):
    """A finished run's modules, read from its ``model.pt`` on first access (:func:`lib.inference.load_run`, on the
    device it was trained on). What :meth:`RunResult.released` leaves in place of the trained modules, so a
    notebook that trains many runs does not hold them all on the device (notebook 03 at paper size: ≈ 32 × 104 M
    parameters) while the few that are looked at again (Table III's G, the methods table's query path) still load."""

    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        self.run_dir, self.device = Path(run_dir), device
        self._modules: dict[str, nn.Module] | None = None

    @property
    def loaded(self) -> bool:
        return self._modules is not None

    def _load(self) -> dict[str, nn.Module]:
        if self._modules is None:
            from ..inference import load_run  # the inference layer sits above the core

            self._modules = load_run(self.run_dir, device=self.device).modules
        return self._modules

    def __getitem__(self, name: str) -> nn.Module:
        return self._load()[name]

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def release(result: RunResult) -> RunResult:
    """``result`` with its modules replaced by :class:`LazyModules` (the trained ones can be freed)."""
    try:
        device = json.loads((result.run_dir / "metrics.json").read_text()).get("device", "auto")
    except (OSError, ValueError):
        device = "auto"
    return replace(result, modules=LazyModules(result.run_dir, device))


def identity_key(identity: dict) -> str:
    """12 hex digits of the SHA-256 of the identity's canonical JSON."""
    text = json.dumps(jsonable(identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _finished(run_dir: Path, identity: dict) -> dict | None:
    p = run_dir / "metrics.json"
    if not p.is_file() or not (run_dir / "model.pt").is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON ({e}); delete it to re-evaluate the run") from None
    return rec if jsonable(rec.get("run")) == jsonable(identity) else None


def _load_modules(run_dir: Path, modules: dict[str, nn.Module]) -> None:
    path = run_dir / "model.pt"
    st = load_checkpoint(path)
    for n, m in modules.items():
        try:
            m.load_state_dict(st[n])
        except (KeyError, RuntimeError) as e:
            raise RuntimeError(f"{path}: cannot load '{n}' ({str(e)[:300]}); delete {run_dir} to retrain") from None


def saved_history(run_dir: str | Path) -> list[dict]:
    """A run folder's ``history.json`` (per-epoch records), ``[]`` when it has none (or it is unreadable)."""
    p = Path(run_dir) / "history.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else []
    except json.JSONDecodeError:
        return []


def _verdict(plan: StagePlan, history: list[dict], where: str) -> str | None:
    """:func:`lib.core.learning.not_learning` of the run's identity losses, printed when it fails."""
    from .learning import not_learning

    verdict = not_learning(history, plan.chance) if plan.chance else None
    if verdict and D.is_main():
        report(f"{where}: NOT LEARNING — {verdict}")
    return verdict


def _judged(metrics: dict, verdict: str | None) -> dict:
    """``metrics`` with ``not_learning`` set in every output's record (those with a Rank-1) when the run failed, and
    removed where an earlier verdict no longer holds."""
    def one(v: dict) -> dict:
        v = {k: x for k, x in v.items() if k != "not_learning"}
        return v | ({"not_learning": verdict} if verdict else {})
    return {k: one(v) if isinstance(v, dict) and "rank1" in v else v for k, v in metrics.items()}


def _link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (relative symlink, replaced atomically)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == rel:
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(rel, tmp)
    os.replace(tmp, link)


def build_stage(stage: Stage, *, method: str, cfg: Any, ds: Any, split: int, deps: dict[str, RunResult],
                progress: bool = True) -> tuple[StagePlan, dict]:
    """``(plan, identity)`` of one stage: its ``build`` from the seeded RNG, and the identity of what it read (the run
    folder is named by its :func:`identity_key`). Trains nothing: :func:`run_stage` and the plan of runs
    (:mod:`lib.scale.plan`) both start here."""
    runtime: RuntimeConfig = cfg.runtime
    prec = runtime.precision_for()
    reader = ConfigReader(cfg, hidden=HIDDEN_SECTIONS)
    ctx = StageContext(method=method, stage=stage.name, cfg=reader, test=cfg.test, runtime=runtime, ds=ds,
                       split=split, prec=prec, deps=deps, progress=progress)
    seed_everything(reader.seed + stage.seed_offset)
    plan = stage.build(ctx)
    identity = {
        "method": method, "stage": stage.name, "dataset": ds.name, "manifest_sha256": ds.fingerprint,
        "split": split, "precision": prec.name, "config": reader.reads,
        "deps": {n: d.key for n, d in sorted(deps.items())}, "max_steps_per_epoch": runtime.max_steps_per_epoch,
        **plan.identity,
        # under torchrun the global batch is world_size × P × K: another training (absent for one process)
        **({"world_size": D.world_size()} if D.world_size() > 1 else {}),
    }
    reader.freeze()
    return plan, identity


def stage_dir(root: str | Path, method: str, dataset: str, split: int, stage: str, key: str) -> Path:
    """``<root>/<method>/<dataset>/stages/split<k>/<stage>-<key>``: where a run with identity ``key`` lives."""
    return Path(root) / method / dataset / "stages" / f"split{split}" / f"{stage}-{key}"


def finished_record(run_dir: Path, identity: dict) -> dict | None:
    """The ``metrics.json`` of a finished run of ``identity`` in ``run_dir`` (``None``: not finished there)."""
    return _finished(run_dir, identity)


def run_stage(
    stage: Stage,
    *,
    method: str,
    cfg: Any,
    ds: Any,
    split: int,
    root: str | Path,
    deps: dict[str, RunResult] | None = None,
    variant: str | None = None,
    progress: bool = True,
) -> RunResult:
    """Reuse, re-evaluate, resume or train one stage of ``method`` on ``ds`` / ``split``.

    Args:
        cfg: the method's typed configuration (with ``seed``, ``test`` and ``runtime`` sections).
        root: the runs folder (``outputs/<profile>/runs``).
        deps: finished runs of the stages this one depends on.
        variant: the variant name under which to link the run (``None``: no link).
    """
    deps = deps or {}
    runtime: RuntimeConfig = cfg.runtime
    prec = runtime.precision_for()
    if runtime.uses_image_cache() and hasattr(ds, "manifest_path"):  # the same pixels, decoded once (issue #22)
        from ..data.image_cache import activate, build_cache, open_cache

        try:
            activate(open_cache(ds) or build_cache(ds, progress=progress))
        except OSError as e:  # e.g. a read-only dataset folder: slower, not wrong; said, not silent
            msg = f"{ds.name}: the decoded-image cache could not be written ({e}); decoding the image files instead"
            report(msg)
            print(msg, file=sys.stderr, flush=True)

    def build() -> tuple[StagePlan, dict]:
        return build_stage(stage, method=method, cfg=cfg, ds=ds, split=split, deps=deps, progress=progress)

    # First built without pretrained weights: a finished run's model.pt overwrites every tensor, so reusing it
    # fetches and reads nothing (tables rebuild offline). A run that trains is built again, with them.
    with pretrained_weights_skipped():
        plan, identity = build()
    seen = D.values_on_ranks(ds.fingerprint)  # under torchrun, every rank must train on the same build
    if len(set(seen)) > 1:
        raise RuntimeError(f"{getattr(ds, 'manifest_path', ds.name)}: the ranks loaded different builds of the dataset (manifest sha256 "
                           f"{', '.join(f[:12] for f in seen)} on ranks 0..{len(seen) - 1}): it was rebuilt while they "
                           "started; start the job again")
    verify = getattr(ds, "verify_split", None)  # the LR files match the manifest the identity names (MLRDataset)
    if callable(verify):
        verify(split)
    key = identity_key(identity)
    root = Path(root)
    run_dir = stage_dir(root, method, ds.name, split, stage.name, key)
    where = f"{method}/{stage.name} {ds.name} split {split}" + (f" [{variant}]" if variant else "")
    t0 = time.time()
    with run_lock(run_dir, where):  # one process per run folder: a second waits, then reuses what the first made
        result = _reuse_or_train(stage, plan, identity, key, run_dir, where, build, runtime, prec, ds, t0, progress)
    if variant is not None and D.is_main():
        _link(root / method / ds.name / "variants" / variant / f"split{split}" / stage.name, run_dir)
    r1 = {k: v["rank1"] for k, v in result.metrics.items() if isinstance(v, dict) and "rank1" in v}
    report(f"{where}: done in {time.time() - t0:.0f}s" + "".join(f", {k} Rank-1 {100 * v:.1f}%" for k, v in r1.items()))
    return result


def _reuse_or_train(stage: Stage, plan: StagePlan, identity: dict, key: str, run_dir: Path, where: str,
                    build: Callable[[], tuple[StagePlan, dict]], runtime: RuntimeConfig, prec: Precision, ds: Any,
                    t0: float, progress: bool) -> RunResult:
    """:func:`run_stage` under the run's lock: reuse (``plan`` was built without pretrained weights), re-evaluate, or
    build again with them and train / evaluate."""
    done = _finished(run_dir, identity)
    report(f"{where}: {'reusing the finished run' if done is not None else 'training'} {run_dir.name}")
    if done is not None:
        _load_modules(run_dir, plan.modules)
        verdict = _verdict(plan, saved_history(run_dir), where)
        stale = done.get("eval") != jsonable(plan.eval_settings) or not (run_dir / PER_QUERY_FILE).is_file()
        if stale and D.is_main():  # a run finished before per-query records were kept is evaluated once more
            done = _finish(run_dir, identity, plan, _judged(plan.evaluate(), verdict), [], prec, ds, t0, previous=done)
        elif _judged(done["metrics"], verdict) != done["metrics"] and D.is_main():  # the verdict on disk too
            done = done | {"metrics": _judged(done["metrics"], verdict)}
            atomic_write_json(run_dir / "metrics.json", done)
        if D.is_main():
            _drop_checkpoint(run_dir, runtime, where)  # left by a version that kept it
        D.barrier()
        return RunResult(stage.name, plan.modules, _judged(done["metrics"], verdict), [], run_dir, identity, key)
    plan, again = build()  # now with the pretrained weights the configuration names, from the same seed
    if jsonable(again) != jsonable(identity):
        diff = sorted(k for k in set(again) | set(identity) if jsonable(again.get(k)) != jsonable(identity.get(k)))
        raise RuntimeError(f"{where}: building the stage twice gave two identities (they differ in {diff}); a stage's "
                           "build must read the same configuration whether or not pretrained weights are loaded")
    if not any(p.requires_grad for m in plan.modules.values() for p in m.parameters()):
        # nothing to learn (e.g. the bicubic "SR module"): evaluate only, no training loop, no optimiser
        if D.is_main():
            atomic_write_json(run_dir / "identity.json", identity)
            metrics = _finish(run_dir, identity, plan, plan.evaluate(), [], prec, ds, t0)["metrics"]
        D.barrier()
        if not D.is_main():
            metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
        return RunResult(stage.name, plan.modules, metrics, [], run_dir, identity, key)
    trainer = Trainer(
        trainable=plan.modules, frozen=plan.frozen, make_step=plan.make_step, dataset=plan.dataset,
        sampler=plan.sampler, optim=plan.optim, precision=prec, run_dir=run_dir, run_config=identity,
        progress=progress, desc=where, monitor_fn=plan.monitor, **runtime.trainer_kwargs(),
    )
    if D.is_main():
        atomic_write_json(run_dir / "identity.json", identity)
    history = trainer.fit()
    verdict = _verdict(plan, history, where)
    metrics: dict[str, Any] = {}
    if D.is_main():
        metrics = _finish(run_dir, identity, plan, _judged(plan.evaluate(), verdict), history, prec, ds, t0)["metrics"]
        _drop_checkpoint(run_dir, runtime)
    D.barrier()
    if not D.is_main():  # every rank continues with rank 0's saved model (BN statistics are per rank)
        _load_modules(run_dir, plan.modules)
        metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    return RunResult(stage.name, plan.modules, metrics, history, run_dir, identity, key)


def _drop_checkpoint(run_dir: Path, runtime: RuntimeConfig, where: str | None = None) -> None:
    """Remove a finished run's ``checkpoints/last.pt`` (its ``model.pt`` holds the trained modules; the resume
    state is hundreds of MB at paper size), unless ``runtime.keep_checkpoint``."""
    last = run_dir / "checkpoints" / "last.pt"
    if runtime.keep_checkpoint or not last.is_file():
        return
    last.unlink()
    try:
        last.parent.rmdir()
    except OSError:  # something else lives there: left as it is
        pass
    if where:
        report(f"{where}: removed the finished run's resume checkpoint {last} (model.pt is kept)")


@contextmanager
def run_lock(run_dir: Path, where: str = ""):
    """Hold ``<run_dir>/.run.lock`` (filelock; an OS lock, so a process killed with -9 releases it at once) while a run
    is checked, trained or evaluated: two workers, or two reproductions on one output folder, never train one run
    twice — the second waits, then reuses the finished run (or resumes what a dead holder left). Under torchrun only
    rank 0 takes it, and every rank waits for it at a barrier."""
    from filelock import FileLock, Timeout

    lock = None
    if D.is_main():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(run_dir / RUN_LOCK_FILE))
            lock.acquire(timeout=0)
        except Timeout:
            msg = f"{where}: another process holds {lock.lock_file}; waiting for it to finish this run"
            report(msg)
            print(f"[run] {msg}", file=sys.stderr, flush=True)  # also where no progress file is read (scripts)
            lock.acquire()
        except OSError as e:  # a read-only copy of someone's finished runs: nothing will be written, no lock needed
            if not ((run_dir / "model.pt").is_file() and (run_dir / "metrics.json").is_file()):
                raise OSError(f"{where}: cannot lock the run folder {run_dir} ({e}); it must be writable to train "
                              "the run there") from None
            lock = None
    D.barrier()
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _finish(run_dir: Path, identity: dict, plan: StagePlan, metrics: dict, history: list, prec: Precision, ds: Any,
            t0: float, previous: dict | None = None) -> dict:
    """Write ``model.pt``, ``per_query.json`` (the per-query records of every output) and then ``metrics.json``
    (which vouches for both), each atomically."""
    metrics, per_query = split_per_query(metrics)
    atomic_write_json(run_dir / PER_QUERY_FILE, {"outputs": per_query, "eval": jsonable(plan.eval_settings)})
    if previous is None:
        save_checkpoint(run_dir / "model.pt", {"identity": jsonable(identity), **{n: m.state_dict() for n, m in plan.modules.items()}})
    rec = dict(previous or {}) | {
        "run": identity, "data": ds.provenance(), "eval": jsonable(plan.eval_settings), "metrics": metrics,
        "device": str(prec.device), "torch": torch.__version__,
    }
    if previous is None:
        rec |= {
            "epochs": len(history),
            # CPU kernels sum in an order that depends on the thread count: the same run trained with other
            # threads ends elsewhere (docs/getting_started.md); recorded, not part of the identity
            "threads": torch.get_num_threads(),
            # the batch-hard distances' dtype (lib.losses.triplet.DISTANCE_DTYPE); absent in runs finished before
            # it was recorded, which computed them under the run's autocast (bf16 where PRECISION is bf16)
            "loss_distances": DISTANCE_DTYPE,
            "train_time_s": round(sum(h.get("time_s", 0.0) for h in history), 1),
            "wall_time_s": round(time.time() - t0, 1),
            "final_losses": {k: v for k, v in (history[-1] if history else {}).items() if k.startswith("loss_")},
        }
    atomic_write_json(run_dir / "metrics.json", rec)
    return rec
