"""PS-HRNet's stages (paper Sec. III-D): phase 1 → phase 2, and the bicubic ID baseline.

* ``phase1`` trains HRNet-ReID-H on HR images with L_ID (PS-HRNet Eq. (10)); evaluated with LR queries (no SR: what
  happens without super-resolution, ``metrics['lr']``) and, where queries have HR originals (not CAVIAR), HR queries
  (``metrics['hr']``).
* ``phase2`` freezes it as the teacher (eval mode, fed the HR image) and trains the student G → HRNet-ReID-L on
  the LR image of each pair with L_TOTAL (PS-HRNet Eq. (12)); test: query and gallery both through G + HRNet-ReID-L.
* ``baseline`` trains the same network on bicubic-upsampled LR images with L_ID only, from the same initial
  weights (our addition, for an honest comparison at equal budget); test without SR.
* ``solo_sr`` (Table III's "Solo SR") trains G alone with L_SR (PS-HRNet Eq. (5)) on the (LR, HR) pairs; its Rank-1
  is the phase-1 teacher's on G's restorations (query and gallery through G, as PS-HRNet's test). With ``sr.name:
  bicubic`` nothing is trained: the row is bicubic up-sampling.

Every stage with an SR module also measures restoration quality (PSNR / SSIM, :mod:`lib.metrics.restoration`) on
the test queries that have an HR original; where none has (CAVIAR: natively LR queries), on the test gallery's HR
images down-sampled at each training rate. The numbers sit beside Rank-1 in ``metrics['lr']`` (``psnr``,
``ssim``, ``psnr_r<r>``, ``ssim_r<r>``). While it trains, a stage with a trainable G also logs G's restoration of a
fixed set of training images after every epoch, beside its input's (``g_psnr`` vs ``input_psnr`` in
``history.csv``; ``runtime.monitor_images``), so every run shows whether G left its input.

Each ``build`` reads the configuration through the stage's tracked reader, so a stage's identity is exactly the
settings it uses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from ...core.learning import chance_ce
from ...core.runs import Stage, StageContext, StagePlan
from ...core.tracking import unwrap
from ...data.datasets import ImageDataset, PairDataset
from ...data.samplers import RandomIdentitySampler
from ...data.transforms import PairedAugment
from ...engine.evaluate import evaluate_split
from ...engine.optim import OptimConfig
from ...losses import LossComposer
from ...metrics.restoration import restoration_quality
from ...models import ReIDEmbedder, build_reid_model, build_sr
from .steps import IDStep, PseudoSiameseStep, SoloSRStep

__all__ = ["STAGES", "query_path", "matcher"]


def _augment(cfg: Any) -> PairedAugment:
    return PairedAugment(pad=cfg.data.pad, erase_prob=cfg.data.random_erasing)


def _sampler(dataset, cfg: Any, seed: int) -> RandomIdentitySampler:
    return RandomIdentitySampler(dataset.pids, cfg.data.num_identities, cfg.data.num_instances, seed=seed)


def _pairs(ctx: StageContext, resize_interpolation: str = "bilinear", native_lr: bool | None = None) -> PairDataset:
    cfg = ctx.cfg
    return PairDataset(ctx.ds.split(ctx.split).train, cfg.data.size, pair_mode=cfg.data.pair_mode,
                       rates=unwrap(cfg.data.rates), seed=cfg.seed, resize_interpolation=resize_interpolation,
                       augment=_augment(cfg), native_lr=cfg.data.native_lr if native_lr is None else native_lr,
                       pipeline=cfg.data.pipeline)


def _evaluator(ctx: StageContext, embedder, size, seed: int, **kw):
    """``evaluate(query_use='stored'|'hr')``: the dataset's protocol with the (untracked) test settings, its images
    made by the training's data path (``data.pipeline``)."""
    t, split = ctx.test, ctx.ds.split(ctx.split)
    kw = {"pipeline": ctx.cfg.data.pipeline} | kw

    def evaluate(query_use: str = "stored") -> dict:
        return evaluate_split(embedder, split, size=size, protocol=ctx.ds.eval_protocol, precision=ctx.prec,
                              query_use=query_use, batch_size=t.batch_size, flip=t.flip, num_repeats=t.num_repeats,
                              seed=seed, progress=False, **kw)
    return evaluate


def _eval_settings(ctx: StageContext, restoration: bool = False) -> dict:
    out = {"flip": ctx.test.flip, "num_repeats": ctx.test.num_repeats, "feature": ctx.test.feature}
    return out | ({"restoration_space": ctx.test.restoration_space} if restoration else {})


def _restoration(ctx: StageContext, sr, size, rates) -> dict:
    """PSNR / SSIM of G's restorations: the test queries with an HR original, else the HR gallery down-sampled."""
    s = ctx.ds.split(ctx.split)
    images = [im for im in s.query if im.has_hr_original] or [im for im in s.gallery if im.has_hr_original]
    q = restoration_quality(sr, images, size=size, precision=ctx.prec, space=ctx.test.restoration_space, rates=rates,
                            batch_size=ctx.test.batch_size)
    return {k: v for k, v in q.items() if k.startswith(("psnr", "ssim"))} | {
        "restoration_images": q["num_images"], "restoration_source": q["source"]}


class _InputOnly(torch.nn.Identity):
    """G's input as it is (the LR image resized with G's own interpolation): the baseline G must improve on."""

    def __init__(self, interpolation: str) -> None:
        super().__init__()
        self.input_interpolation = interpolation


def _monitor(ctx: StageContext, sr, size, rates):
    """``() -> {g_psnr, g_ssim, input_psnr, input_ssim}``: G's restoration after an epoch on the first
    ``runtime.monitor_images`` training images with an HR original (fixed, never test images), beside its own input's
    quality — so a run's ``history.csv`` shows whether G moved from its input at all. ``None`` when off or G has
    nothing to train (bicubic)."""
    n = ctx.runtime.monitor_images
    images = [im for im in ctx.ds.split(ctx.split).train if im.has_hr_original][:n]
    if not n or not images or not any(p.requires_grad for p in sr.parameters()):
        return None
    kw = dict(size=size, precision=ctx.prec, space=ctx.test.restoration_space, rates=rates, batch_size=ctx.test.batch_size)
    base: dict = {}

    def monitor() -> dict:
        if not base:  # the input does not change: measured once
            base.update(restoration_quality(_InputOnly(sr.input_interpolation), images, **kw))
        q = restoration_quality(sr, images, **kw)
        return {"g_psnr": q["psnr"], "g_ssim": q["ssim"], "input_psnr": base["psnr"], "input_ssim": base["ssim"]}
    return monitor


def _sr_evaluate(ctx: StageContext, model, sr, size, seed: int, rates):
    """Query and gallery through G → ``model`` (LR query vs HR gallery), plus G's restoration quality."""
    emb = ReIDEmbedder(model, sr, ctx.test.feature)
    interp = getattr(sr, "input_interpolation", "bilinear")
    return lambda: {"lr": _evaluator(ctx, emb, size, seed, resize_interpolation=interp)() | _restoration(ctx, sr, size, rates)}


def _id_modules(cfg: Any, identity: Mapping[str, Any], deps: Mapping[str, Any]) -> dict:
    """Phase 1's and the baseline's module: the re-ID network of ``num_classes`` identities."""
    return {"model": build_reid_model(cfg.model, int(identity.get("num_classes", 1)))}


def _phase2_modules(cfg: Any, identity: Mapping[str, Any], deps: Mapping[str, Any]) -> dict:
    """Phase 2's student and G: with ``phase2.init: teacher`` the student is a copy of the loaded teacher (the stage
    then never reads ``model``, so its identity does not describe the network), else a new re-ID network; G after
    the student (the initialisation order of the first runs)."""
    if cfg.phase2.init == "teacher":
        if "phase1" not in deps:
            raise ValueError("phase 2 with init: teacher needs its phase-1 run")
        student = copy.deepcopy(deps["phase1"].modules["model"])
    else:
        student = build_reid_model(cfg.model, int(identity.get("num_classes", 1)))
    return {"student": student, "sr": build_sr(cfg.sr)}


def _solo_sr_modules(cfg: Any, identity: Mapping[str, Any], deps: Mapping[str, Any]) -> dict:
    """Solo SR's module: G alone."""
    return {"sr": build_sr(cfg.sr)}


def _id_stage(ctx: StageContext, stage_cfg: Any, dataset, key: str, offset: int, evaluate) -> StagePlan:
    cfg, prec = ctx.cfg, ctx.prec
    model = prec.prepare_module(_id_modules(cfg, {"num_classes": dataset.num_classes}, ctx.deps)["model"])
    loss = LossComposer(unwrap(stage_cfg.losses), cfg.loss)  # terms read only their own settings
    return StagePlan(
        modules={"model": model}, dataset=dataset, sampler=_sampler(dataset, cfg, cfg.seed + offset),
        optim=unwrap(stage_cfg), make_step=lambda m: IDStep(m["model"], loss, prec, key),
        evaluate=lambda: evaluate(model), identity={"num_classes": dataset.num_classes}, eval_settings=_eval_settings(ctx),
        chance={"loss_ce": chance_ce(dataset.num_classes)},  # L_ID's cross entropy at a uniform prediction
    )


def build_phase1(ctx: StageContext) -> StagePlan:
    """Phase 1: HRNet-ReID-H on HR training images, L_ID (PS-HRNet Eq. (10))."""
    cfg = ctx.cfg
    s = ctx.ds.split(ctx.split)
    train = ImageDataset(s.train, cfg.data.size, use="hr", augment=_augment(cfg), seed=cfg.seed,
                         pipeline=cfg.data.pipeline)
    hr_queries = all(im.has_hr_original for im in s.query)  # not CAVIAR: its LR camera has no HR version
    size, seed = cfg.data.size, cfg.seed

    def evaluate(model) -> dict:
        run = _evaluator(ctx, ReIDEmbedder(model, feature=ctx.test.feature), size, seed)
        return {"lr": run()} | ({"hr": run("hr")} if hr_queries else {})
    return _id_stage(ctx, cfg.phase1, train, "img", 0, evaluate)


def build_baseline(ctx: StageContext) -> StagePlan:
    """The bicubic + ID baseline: the same network on bicubic-upsampled LR images, L_ID only; test without SR."""
    cfg = ctx.cfg
    pairs = _pairs(ctx, resize_interpolation="bicubic")
    size, seed = cfg.data.size, cfg.seed

    def evaluate(model) -> dict:
        emb = ReIDEmbedder(model, feature=ctx.test.feature)
        return {"lr": _evaluator(ctx, emb, size, seed, resize_interpolation="bicubic")()}
    return _id_stage(ctx, cfg.baseline, pairs, "lr", 2, evaluate)


def build_phase2(ctx: StageContext) -> StagePlan:
    """Phase 2: frozen teacher + G → HRNet-ReID-L student, L_TOTAL (PS-HRNet Eq. (12))."""
    cfg, prec = ctx.cfg, ctx.prec
    teacher = ctx.deps["phase1"].modules["model"]
    pairs = _pairs(ctx)
    weights = unwrap(cfg.phase2.losses)
    needs_teacher = float(weights.get("ps", 0.0)) != 0.0
    if needs_teacher and "logits" in cfg.loss.ps_components:
        n = getattr(getattr(teacher, "head", None), "num_classes", None)
        if n not in (None, pairs.num_classes):
            raise ValueError(f"phase 2: the teacher classifies {n} identities but the pair set has {pairs.num_classes}; "
                             "L_PS on ℓ_c needs the same label space (drop 'logits' from loss.ps_components)")
    built = _phase2_modules(cfg, {"num_classes": pairs.num_classes}, ctx.deps)
    student = prec.prepare_module(built["student"].requires_grad_(True))
    sr = prec.prepare_module(built["sr"])
    pairs.resize_interpolation = sr.input_interpolation  # how the module wants its LR input resized
    frozen = prec.prepare_module(copy.deepcopy(teacher)).eval().requires_grad_(False)  # the caller's model is untouched
    loss = LossComposer(weights, cfg.loss)
    size, seed, rates = cfg.data.size, cfg.seed, tuple(unwrap(cfg.data.rates))
    return StagePlan(
        modules={"student": student, "sr": sr}, frozen={"teacher": frozen}, dataset=pairs,
        sampler=_sampler(pairs, cfg, cfg.seed + 1), optim=unwrap(cfg.phase2),
        make_step=lambda m: PseudoSiameseStep(m["teacher"], m["sr"], m["student"], loss, prec, needs_teacher),
        evaluate=_sr_evaluate(ctx, student, sr, size, seed, rates),
        identity={"num_classes": pairs.num_classes, "excluded_native_lr": pairs.num_excluded,
                  "native_lr_images": pairs.num_native_lr},
        eval_settings=_eval_settings(ctx, restoration=True), monitor=_monitor(ctx, sr, size, rates),
        chance={"loss_ce": chance_ce(pairs.num_classes)},
    )


def build_solo_sr(ctx: StageContext) -> StagePlan:
    """Solo SR (Table III): G alone with L_SR (PS-HRNet Eq. (5)) on the pairs with an HR original; tested with the
    teacher."""
    cfg, prec = ctx.cfg, ctx.prec
    teacher = prec.prepare_module(copy.deepcopy(ctx.deps["phase1"].modules["model"])).eval().requires_grad_(False)
    sr = prec.prepare_module(_solo_sr_modules(cfg, {}, ctx.deps)["sr"])
    pairs = _pairs(ctx, resize_interpolation=sr.input_interpolation, native_lr=False)  # no HR target: no L_SR
    size, seed, rates = cfg.data.size, cfg.seed, tuple(unwrap(cfg.data.rates))
    if any(p.requires_grad for p in sr.parameters()):
        loss, optim = LossComposer(unwrap(cfg.solo_sr.losses), cfg.loss), unwrap(cfg.solo_sr)
    else:  # bicubic: nothing is trained (run_stage evaluates only), so the training recipe is not part of the row
        loss, optim = None, OptimConfig()
    return StagePlan(
        modules={"sr": sr}, frozen={"teacher": teacher}, dataset=pairs, sampler=_sampler(pairs, cfg, cfg.seed + 3),
        optim=optim, make_step=lambda m: SoloSRStep(m["sr"], loss, prec),
        evaluate=_sr_evaluate(ctx, teacher, sr, size, seed, rates),
        identity={"num_classes": pairs.num_classes, "excluded_native_lr": pairs.num_excluded},
        eval_settings=_eval_settings(ctx, restoration=True), monitor=_monitor(ctx, sr, size, rates),
    )


def query_path(output: str, runs: dict, cfg: Any):
    """``(module, resize_interpolation)`` that embeds an LR query for ``output`` (as its evaluation does)."""
    feature = cfg.test.feature
    if output == "pshrnet":
        sr = runs["phase2"].modules["sr"]
        return ReIDEmbedder(runs["phase2"].modules["student"], sr, feature), sr.input_interpolation
    if output == "baseline":
        return ReIDEmbedder(runs["baseline"].modules["model"], feature=feature), "bicubic"
    if output == "solo_sr":
        sr = runs["solo_sr"].modules["sr"]
        return ReIDEmbedder(runs["phase1"].modules["model"], sr, feature), sr.input_interpolation
    return ReIDEmbedder(runs["phase1"].modules["model"], feature=feature), "bilinear"  # teacher_lr / teacher_hr


def matcher(output: str, runs: dict, cfg: Any, precision):
    """The test of ``output`` as a :class:`lib.inference.EmbedderMatcher`: query and gallery through the same
    embedder (G included where the output has one), resized as its evaluation resizes them, cosine distance."""
    from ...inference.matcher import EmbedderMatcher

    embedder, interp = query_path(output, runs, cfg)
    return EmbedderMatcher(output, embedder, interpolation=interp, sr=embedder.sr, size=cfg.data.size,
                           precision=precision, flip=cfg.test.flip, batch_size=cfg.test.batch_size,
                           pipeline=getattr(cfg.data, "pipeline", "pil"))


#: The stage graph, in dependency order.
STAGES: dict[str, Stage] = {
    "phase1": Stage("phase1", build_phase1, modules=_id_modules),
    "phase2": Stage("phase2", build_phase2, deps=("phase1",), seed_offset=1, modules=_phase2_modules),
    "baseline": Stage("baseline", build_baseline, seed_offset=2, modules=_id_modules),
    "solo_sr": Stage("solo_sr", build_solo_sr, deps=("phase1",), seed_offset=3, modules=_solo_sr_modules),
}
