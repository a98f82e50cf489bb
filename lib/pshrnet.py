"""PS-HRNet end to end (paper Sec. III): phase 1, phase 2, and the bicubic ID-only baseline.

* Phase 1 trains HRNet-ReID-H on HR images with L_ID (Eq. 10).
* Phase 2 freezes it as the teacher (eval mode, fed the HR image) and trains the student
  VDSR-CA → HRNet-ReID-L on the LR image of each pair with L_total = L_ID + λ_SR·L_SR + λ_PS·L_PS (Eq. 12).
* The baseline trains the same backbone on bicubic-upsampled LR images with L_ID only, for comparison.

Each run lives in its own folder (``checkpoints/last.pt``, ``history.{csv,json}``, ``model.pt``,
``metrics.json``); a finished run with the same configuration is reused, a killed one resumes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.datasets import ImageDataset, PairDataset
from .data.mlr_dataset import MLRDataset
from .data.samplers import RandomIdentitySampler
from .data.transforms import PairedAugment
from .engine.checkpoint import load_checkpoint, save_checkpoint
from .engine.evaluate import evaluate_split
from .engine.precision import Precision, resolve_device, resolve_precision
from .engine.trainer import OptimConfig, Trainer
from .losses import LossConfig, TotalLoss
from .models import VDSRCA, HRNetReID, ReIDEmbedder
from .models.embedder import TEST_FEATURES
from .utils.io import atomic_write_json, jsonable as _jsonable
from .utils.seed import seed_everything

__all__ = ["PSHRNetConfig", "RunResult", "build_reid", "build_sr", "train_phase1", "train_phase2", "train_baseline"]


#: Smallest network input side: every backbone's deepest map is 1/32 of the input.
MIN_INPUT = 32


@dataclass(frozen=True)
class PSHRNetConfig:
    """Everything that defines a PS-HRNet run (defaults: the paper, PROTOCOL §2–§5).

    Model: ``backbone`` (``hrnet_w32``), ``weights`` (``none``/``hub``/``file:PATH``/
    ``deep-sort-mobilenetv2``; the paper starts from ImageNet HRNet-W32-C), ``pooling`` (``avg+max``),
    VDSR-CA ``sr_depth`` 20 / ``sr_width`` 64 / ``sr_reduction`` 4, ``student_init`` (``weights``: like the
    teacher, from ``weights`` — the authors' code; ``teacher``: a copy of the phase-1 model).
    Data: input ``height`` × ``width`` (256 × 128), ``num_identities`` P = 4, ``num_instances`` K = 6,
    ``pair_mode`` (``fresh`` paper / ``mlr`` authors' code), ``rates`` (2, 3, 4), augmentation ``pad`` (10 px)
    and ``random_erasing`` probability (0: the paper uses none), ``native_lr`` (phase 2 and the baseline also
    train on natively LR images such as CAVIAR camera 2, with L_ID only; ``True``).
    Test: ``flip_test`` (authors' code), ``num_repeats`` single-shot gallery draws (10), ``test_feature``
    (``concat`` = the paper's concat(Seq5, ℓ_f); see :mod:`lib.models.embedder`).
    Numerics: ``device``, ``precision`` (``auto``/``bf16``/``fp32``), ``channels_last``; ``max_loss`` (a finite
    loss above it stops the run as diverged, 1e6; raise it with ``sum`` reductions of L_SR/L_PS at full size).
    ``phase1`` / ``phase2`` / ``baseline``: :class:`OptimConfig`; ``loss``: :class:`LossConfig`.
    """

    backbone: str = "hrnet_w32"
    weights: str = "none"
    pooling: str = "avg+max"
    sr_depth: int = 20
    sr_width: int = 64
    sr_reduction: int = 4
    student_init: str = "weights"
    height: int = 256
    width: int = 128
    num_identities: int = 4
    num_instances: int = 6
    pair_mode: str = "fresh"
    rates: tuple[int, ...] = (2, 3, 4)
    pad: int = 10
    random_erasing: float = 0.0
    native_lr: bool = True
    flip_test: bool = True
    test_feature: str = "concat"
    num_repeats: int = 10
    eval_batch_size: int = 64
    device: str = "auto"
    precision: str = "auto"
    channels_last: str | bool = "auto"
    seed: int = 0
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    max_loss: float = 1e6
    phase1: OptimConfig = field(default_factory=OptimConfig)
    phase2: OptimConfig = field(default_factory=OptimConfig)
    baseline: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.student_init not in ("weights", "teacher"):
            raise ValueError(f"PSHRNetConfig.student_init: expected 'weights' or 'teacher', found {self.student_init!r}")
        if min(self.height, self.width) < MIN_INPUT:
            raise ValueError(
                f"PSHRNetConfig: input {self.height}×{self.width} (HEIGHT×WIDTH) is too small: the backbones reduce "
                f"the image 32-fold, so both sides must be ≥ {MIN_INPUT} pixels (paper 256×128)"
            )
        if self.test_feature not in TEST_FEATURES:
            raise ValueError(f"PSHRNetConfig.test_feature: expected one of {TEST_FEATURES}, found {self.test_feature!r}")
        object.__setattr__(self, "rates", tuple(int(r) for r in self.rates))

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loss"] = self.loss.to_dict()
        return d

    def replace(self, **kw) -> PSHRNetConfig:
        return dataclasses.replace(self, **kw)

    @property
    def augment(self) -> PairedAugment:
        """The training augmentation: flip, pad + crop, optional random erasing."""
        return PairedAugment(pad=self.pad, erase_prob=self.random_erasing)


@dataclass
class RunResult:
    """A finished run: its modules, metrics and folder."""

    modules: dict[str, nn.Module]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    run_dir: Path


def build_reid(cfg: PSHRNetConfig, num_classes: int) -> HRNetReID:
    """HRNet-ReID (or the same head on another backbone)."""
    return HRNetReID(cfg.backbone, num_classes=num_classes, pooling=cfg.pooling, weights=cfg.weights)


def build_sr(cfg: PSHRNetConfig) -> VDSRCA:
    """VDSR-CA, the SR module G."""
    return VDSRCA(depth=cfg.sr_depth, width=cfg.sr_width, reduction=cfg.sr_reduction)


def _precision(cfg: PSHRNetConfig) -> Precision:
    return resolve_precision(resolve_device(cfg.device), cfg.precision, cfg.channels_last)


# Settings that do not change what a phase *trains* are left out of its identity: evaluation settings (a
# finished model is re-evaluated when they change), execution details, and other phases' settings — so that
# notebook 03 finds the teacher notebook 02 trained even though it also sets phase-2 options.
_EVAL_KEYS = ("flip_test", "num_repeats", "test_feature")
_NOT_IDENTITY = {"eval_batch_size", "num_workers", "device", "precision", "channels_last", "max_loss", *_EVAL_KEYS}
_PHASE2_ONLY = {"sr_depth", "sr_width", "sr_reduction", "student_init", "pair_mode", "rates", "native_lr", "phase2"}
_PHASE2_LOSS = {"lambda_sr", "lambda_ps", "ps_components", "sr_reduction", "ps_reduction"}


def phase_config(cfg: PSHRNetConfig, phase: str) -> dict[str, Any]:
    """The part of ``cfg`` that determines what ``phase`` (``phase1``, ``phase2``, ``baseline``) trains.

    Phase 2 depends on its own and phase 1's settings (its teacher is the phase-1 run); phase 1 not on the
    SR module, the pairs or phase-2 losses; the baseline not on the SR module, the teacher or L_SR/L_PS.
    """
    d = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_IDENTITY}
    if phase != "baseline":
        d.pop("baseline")
    if phase == "phase2":
        return d
    d["loss"] = {k: v for k, v in d["loss"].items() if k not in _PHASE2_LOSS}
    drop = _PHASE2_ONLY if phase == "phase1" else {"sr_depth", "sr_width", "sr_reduction", "student_init", "phase1", "phase2"}
    return {k: v for k, v in d.items() if k not in drop}


def _identity(ds: MLRDataset, split: int, phase: str, cfg: PSHRNetConfig, prec: Precision, extra: dict | None = None) -> dict:
    """What makes a run the same run: the MLR dataset's content, split, phase, numerics and configuration."""
    return {
        "phase": phase,
        "dataset": ds.name,
        "manifest_sha256": ds.fingerprint,
        "split": split,
        "precision": prec.name,
        "config": phase_config(cfg, phase),
        **(extra or {}),
    }


def _eval_settings(cfg: PSHRNetConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in _EVAL_KEYS}


def _finished(run_dir: Path, identity: dict) -> dict | None:
    """The ``metrics.json`` record of a finished run with this identity, else ``None``."""
    p = run_dir / "metrics.json"
    if not p.is_file() or not (run_dir / "model.pt").is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON ({e}); delete it to re-evaluate the run") from None
    return rec if _jsonable(rec.get("run")) == _jsonable(identity) else None


def _finish(run_dir: Path, identity: dict, modules: dict[str, nn.Module], metrics: dict, history: list, prec: Precision,
            cfg: PSHRNetConfig, ds: MLRDataset, t0: float, previous: dict | None = None) -> dict:
    """Write ``model.pt`` then ``metrics.json`` (which vouches for it), both atomically."""
    if previous is None:
        save_checkpoint(run_dir / "model.pt", {"identity": identity, **{n: m.state_dict() for n, m in modules.items()}})
    rec = dict(previous or {}) | {
        "run": identity,
        "data": ds.provenance(),
        "eval": _eval_settings(cfg),
        "metrics": metrics,
        "device": str(prec.device),
        "torch": torch.__version__,
    }
    if previous is None:
        rec |= {
            "epochs": len(history),
            "train_time_s": round(sum(h.get("time_s", 0.0) for h in history), 1),
            "wall_time_s": round(time.time() - t0, 1),
            "final_losses": {k: v for k, v in (history[-1] if history else {}).items() if k.startswith("loss_")},
        }
    atomic_write_json(run_dir / "metrics.json", rec)
    return rec


def _load_modules(run_dir: Path, modules: dict[str, nn.Module]) -> None:
    path = run_dir / "model.pt"
    st = load_checkpoint(path)
    for n, m in modules.items():
        try:
            m.load_state_dict(st[n])
        except (KeyError, RuntimeError) as e:
            raise RuntimeError(f"{path}: cannot load '{n}' ({str(e)[:300]}); delete {run_dir} to retrain") from None


def _sampler(pids, cfg: PSHRNetConfig, seed: int) -> RandomIdentitySampler:
    return RandomIdentitySampler(pids, cfg.num_identities, cfg.num_instances, seed=seed)


def _eval(embedder, ds, split, cfg, prec, *, query_use="stored", resize_interpolation="bilinear", progress=False):
    return evaluate_split(
        embedder, ds.split(split), size=cfg.size, protocol=ds.eval_protocol, precision=prec, query_use=query_use,
        batch_size=cfg.eval_batch_size, flip=cfg.flip_test, num_repeats=cfg.num_repeats, seed=cfg.seed,
        resize_interpolation=resize_interpolation, progress=progress,
    )


class _IDStep:
    """L_ID on one image per sample: ``batch[key]`` (``img`` in phase 1, the bicubic ``lr`` for the baseline)."""

    def __init__(self, model: nn.Module, loss: TotalLoss, prec: Precision, key: str = "img"):
        self.model, self.loss, self.prec, self.key = model, loss, prec, key

    def __call__(self, batch: dict):
        x = self.prec.prepare_input(batch[self.key])
        y = batch["label"].to(self.prec.device)
        total, parts = self.loss(self.model(x), y)
        return total, parts, x.shape[0]


class _Phase2Step:
    def __init__(self, teacher: nn.Module, sr: nn.Module, student: nn.Module, loss: TotalLoss, prec: Precision):
        self.teacher, self.sr, self.student, self.loss, self.prec = teacher, sr, student, loss, prec

    def __call__(self, batch: dict):
        has_hr, hr, mask = batch.get("has_hr"), batch["hr"], None
        if has_hr is not None and not bool(has_hr.all()):  # natively LR samples in the batch (a CPU tensor: no sync)
            hr = hr[has_hr]
            mask = has_hr.to(self.prec.device, non_blocking=True)
        lr, hr = self.prec.prepare_input(batch["lr"]), self.prec.prepare_input(hr)
        y = batch["label"].to(self.prec.device)
        with torch.no_grad():
            t_out = self.teacher(hr) if hr.shape[0] else None
        restored = self.sr(lr)
        total, parts = self.loss(self.student(restored), y, restored=restored, hr=hr, teacher_out=t_out, hr_mask=mask)
        return total, parts, lr.shape[0]


def _train_or_reuse(
    *,
    ds: MLRDataset,
    split: int,
    cfg: PSHRNetConfig,
    run_dir: str | Path,
    identity: dict,
    modules: dict[str, nn.Module],
    param_groups: list[dict],
    dataset,
    step_fn,
    optim: OptimConfig,
    seed: int,
    evaluate,
    prec: Precision,
    progress: bool,
    frozen: dict[str, nn.Module] | None = None,
) -> RunResult:
    """Reuse a finished run with the same identity, else train (resuming any checkpoint) and evaluate.

    A finished run whose evaluation settings (``flip_test``, ``num_repeats``) differ is re-evaluated, not
    retrained.
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    done = _finished(run_dir, identity)
    if done is not None:
        _load_modules(run_dir, modules)
        if done.get("eval") != _eval_settings(cfg):
            done = _finish(run_dir, identity, modules, evaluate(), [], prec, cfg, ds, t0, previous=done)
        return RunResult(modules, done["metrics"], [], run_dir)
    if (run_dir / "model.pt").is_file():  # a finished run of another configuration: its checkpoint is stale too
        (run_dir / "checkpoints" / "last.pt").unlink(missing_ok=True)
    for stale in ("metrics.json", "model.pt"):  # a new training invalidates whatever finished here before
        (run_dir / stale).unlink(missing_ok=True)
    trainer = Trainer(
        step_fn=step_fn, trainable=modules, frozen=frozen, param_groups=param_groups, dataset=dataset,
        sampler=_sampler(dataset.pids, cfg, seed), optim=optim, precision=prec, run_dir=run_dir, run_config=identity,
        num_workers=cfg.num_workers, max_steps_per_epoch=cfg.max_steps_per_epoch, progress=progress, max_loss=cfg.max_loss,
        desc=f"{identity['phase']} {ds.name} split {split}",
    )
    history = trainer.fit()
    rec = _finish(run_dir, identity, modules, evaluate(), history, prec, cfg, ds, t0)
    return RunResult(modules, rec["metrics"], history, run_dir)


def train_phase1(ds: MLRDataset, split: int, cfg: PSHRNetConfig, run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """Phase 1: HRNet-ReID-H on the HR training images with L_ID (Eq. 10).

    Evaluated two ways: LR query (bilinear-upsampled) vs HR gallery (``metrics['lr']``, the teacher without
    any SR) and, where the queries have HR originals (not CAVIAR), HR query vs HR gallery (``metrics['hr']``).
    """
    prec = _precision(cfg)
    s = ds.split(split)
    train = ImageDataset(s.train, cfg.size, use="hr", augment=cfg.augment, seed=cfg.seed)
    hr_queries = all(im.has_hr_original for im in s.query)  # not CAVIAR: its LR camera has no HR version
    identity = _identity(ds, split, "phase1", cfg, prec, {"num_classes": train.num_classes})
    seed_everything(cfg.seed)
    model = prec.prepare_module(build_reid(cfg, train.num_classes))
    emb = ReIDEmbedder(model, feature=cfg.test_feature)
    return _train_or_reuse(
        ds=ds, split=split, cfg=cfg, run_dir=run_dir, identity=identity, modules={"model": model},
        param_groups=[{"name": "reid", "params": list(model.parameters()), "lr": cfg.phase1.lr}],
        dataset=train, step_fn=_IDStep(model, TotalLoss(cfg.loss), prec, "img"), optim=cfg.phase1, seed=cfg.seed,
        evaluate=lambda: {"lr": _eval(emb, ds, split, cfg, prec)}
        | ({"hr": _eval(emb, ds, split, cfg, prec, query_use="hr")} if hr_queries else {}),
        prec=prec, progress=progress,
    )


def train_phase2(
    ds: MLRDataset, split: int, cfg: PSHRNetConfig, run_dir: str | Path, teacher: nn.Module, *, progress: bool = True
) -> RunResult:
    """Phase 2: frozen teacher + VDSR-CA → HRNet-ReID-L student, L_total (Eq. 12).

    Test: LR query and HR gallery both go through VDSR-CA + HRNet-ReID-L (``metrics['lr']``).
    """
    prec = _precision(cfg)
    pairs = PairDataset(ds.split(split).train, cfg.size, pair_mode=cfg.pair_mode, rates=cfg.rates, seed=cfg.seed,
                        augment=cfg.augment, native_lr=cfg.native_lr)
    teacher_classes = getattr(getattr(teacher, "head", None), "num_classes", None)
    if "logits" in cfg.loss.ps_components and teacher_classes not in (None, pairs.num_classes):
        raise ValueError(
            f"phase 2: the teacher classifies {teacher_classes} identities but the pair set has {pairs.num_classes}; "
            "L_PS on ℓ_c needs the same label space (drop 'logits' from ps_components)"
        )
    identity = _identity(ds, split, "phase2", cfg, prec, {"num_classes": pairs.num_classes, "excluded_native_lr": pairs.num_excluded,
                                                       "native_lr_images": pairs.num_native_lr})
    seed_everything(cfg.seed + 1)
    student = copy.deepcopy(teacher) if cfg.student_init == "teacher" else build_reid(cfg, pairs.num_classes)
    student = prec.prepare_module(student.requires_grad_(True))
    sr = prec.prepare_module(build_sr(cfg))
    teacher = prec.prepare_module(copy.deepcopy(teacher)).eval().requires_grad_(False)  # the caller's model is untouched
    return _train_or_reuse(
        ds=ds, split=split, cfg=cfg, run_dir=run_dir, identity=identity, modules={"student": student, "sr": sr},
        frozen={"teacher": teacher},
        param_groups=[
            {"name": "reid", "params": list(student.parameters()), "lr": cfg.phase2.lr},
            {"name": "sr", "params": list(sr.parameters()), "lr": cfg.phase2.lr_sr},
        ],
        dataset=pairs, step_fn=_Phase2Step(teacher, sr, student, TotalLoss(cfg.loss), prec), optim=cfg.phase2,
        seed=cfg.seed + 1, evaluate=lambda: {"lr": _eval(ReIDEmbedder(student, sr, cfg.test_feature), ds, split, cfg, prec)},
        prec=prec, progress=progress,
    )


def train_baseline(ds: MLRDataset, split: int, cfg: PSHRNetConfig, run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """The same backbone on bicubic-upsampled LR images with L_ID only (no SR, no teacher).

    Budget: ``cfg.baseline`` (by default as many epochs as phase 1 + phase 2).
    Test: LR query (bicubic-upsampled) vs HR gallery, no SR.
    """
    prec = _precision(cfg)
    pairs = PairDataset(ds.split(split).train, cfg.size, pair_mode=cfg.pair_mode, rates=cfg.rates, seed=cfg.seed,
                        resize_interpolation="bicubic", augment=cfg.augment, native_lr=cfg.native_lr)
    identity = _identity(ds, split, "baseline", cfg, prec, {"num_classes": pairs.num_classes})
    seed_everything(cfg.seed + 2)
    model = prec.prepare_module(build_reid(cfg, pairs.num_classes))
    return _train_or_reuse(
        ds=ds, split=split, cfg=cfg, run_dir=run_dir, identity=identity, modules={"model": model},
        param_groups=[{"name": "reid", "params": list(model.parameters()), "lr": cfg.baseline.lr}],
        dataset=pairs, step_fn=_IDStep(model, TotalLoss(cfg.loss), prec, "lr"), optim=cfg.baseline, seed=cfg.seed + 2,
        evaluate=lambda: {"lr": _eval(ReIDEmbedder(model, feature=cfg.test_feature), ds, split, cfg, prec,
                                   resize_interpolation="bicubic")},
        prec=prec, progress=progress,
    )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


# Execution details: recorded with every run, but not differences in *what* is computed.
_NOT_REDUCTIONS = {"device", "num_workers", "eval_batch_size", "precision", "channels_last", "max_loss", "baseline"}  # the paper has no baseline


def reductions(cfg: PSHRNetConfig, num_splits_run: int, num_splits_protocol: int) -> list[str]:
    """Every setting of ``cfg`` that differs from the paper's (``PSHRNetConfig(weights='hub')``), in words.

    Computed by comparing the two configurations field by field, so a table can never claim the paper's
    setting by mistake; printed above every table a profile produces.
    """
    ours = _flatten(cfg.to_dict())
    paper = _flatten(PSHRNetConfig(weights="hub").to_dict())
    out = []
    for k in ours:
        if k.split(".")[0] in _NOT_REDUCTIONS or k in _NOT_REDUCTIONS:
            continue
        a, b = _jsonable(ours[k]), _jsonable(paper.get(k))
        if a != b:
            fmt = lambda v: (",".join(map(str, v)) or "none") if isinstance(v, list) else str(v)  # noqa: E731
            out.append(f"{k} {fmt(a)} (paper {fmt(b)})")
    if num_splits_run < num_splits_protocol:
        out.append(f"{num_splits_run} of {num_splits_protocol} identity splits")
    return out
