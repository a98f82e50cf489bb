"""FTWA's stage graph: one stage, ``train`` — the whole network trained end to end with FTWA Eq. (8) (Sec. 2, 3.2).

Data: the training images of the split as (LR, HR) items (:class:`~lib.data.datasets.PairDataset`, ``data.pair_mode``:
``stored`` — HR images get a fresh I'_LR, LR images enter as they are), P × K batches. Test (``metrics['lr']``): LR
queries vs HR gallery with the matching ``test.match`` (:mod:`.matching`; every matching is recorded beside it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.learning import chance_ce
from ...core.runs import Stage, StageContext, StagePlan
from ...core.tracking import unwrap
from ...data.datasets import PairDataset
from ...data.samplers import RandomIdentitySampler
from ...data.transforms import PairedAugment
from ...losses import LossComposer
from ...models.ftwa import FTWANet
from .matching import FTWAMatcher, StreamEmbedder, evaluate_ftwa
from .steps import FTWAStep

__all__ = ["STAGES", "build_model", "query_path", "matcher"]


def build_model(cfg, num_classes: int) -> FTWANet:
    """The network of a configuration (reads ``model``, ``raft`` (when enabled) and ``swa``)."""
    m = cfg.model
    raft = ({"width": cfg.raft.width, "blocks": cfg.raft.blocks, "steps": cfg.raft.steps,
             "attention": cfg.raft.attention} if cfg.raft.enabled else None)
    return FTWANet(num_classes, backbone=m.backbone, weights=m.weights, last_stride=m.last_stride,
                   two_stream=m.two_stream, raft=raft, swa=cfg.swa.enabled,
                   evaluator_hidden=cfg.swa.hidden if cfg.swa.enabled else 128, shared_classifier=m.shared_classifier)


def _train_modules(cfg, identity: Mapping[str, Any], deps: Mapping[str, Any]) -> dict:
    """The stage's one module: the network of ``num_classes`` identities."""
    return {"model": build_model(cfg, int(identity.get("num_classes", 1)))}


def build_train(ctx: StageContext) -> StagePlan:
    """Train FTWA (FTWA Eq. (8)) and evaluate LR queries against the HR gallery."""
    cfg, prec = ctx.cfg, ctx.prec
    d = cfg.data
    pairs = PairDataset(ctx.ds.split(ctx.split).train, d.size, pair_mode=d.pair_mode, rates=unwrap(d.rates),
                        seed=cfg.seed, augment=PairedAugment(pad=d.pad, erase_prob=d.random_erasing),
                        native_lr=d.native_lr, pipeline=d.pipeline)
    weights = unwrap(cfg.train.losses)
    if float(weights.get("raft", 0.0)) != 0.0 and not cfg.raft.enabled:
        raise ValueError("train.losses.raft is not 0 but raft.enabled is false: L_RAFT (FTWA Eq. (2)) trains T; set "
                         "the weight to 0 for a variant without RAFT")
    model = prec.prepare_module(_train_modules(cfg, {"num_classes": pairs.num_classes}, ctx.deps)["model"])
    loss = LossComposer(weights, cfg.loss)
    size, seed, rates, t = d.size, cfg.seed, tuple(unwrap(d.rates)), ctx.test

    def evaluate() -> dict:
        return {"lr": evaluate_ftwa(model, ctx.ds.split(ctx.split), size=size, protocol=ctx.ds.eval_protocol,
                                    precision=prec, rates=rates, match=t.match, batch_size=t.batch_size, flip=t.flip,
                                    num_repeats=t.num_repeats, seed=seed, weight_floor=t.weight_floor,
                                    pipeline=pairs.pipeline)}
    return StagePlan(
        modules={"model": model}, dataset=pairs,
        sampler=RandomIdentitySampler(pairs.pids, d.num_identities, d.num_instances, seed=cfg.seed),
        optim=unwrap(cfg.train), make_step=lambda m: FTWAStep(m["model"], loss, prec), evaluate=evaluate,
        identity={"num_classes": pairs.num_classes, "excluded_native_lr": pairs.num_excluded,
                  "native_lr_images": pairs.num_native_lr},
        # (runs finished before weight_floor was recorded re-evaluate once: their log-weights were rounded to bf16)
        eval_settings={"match": t.match, "weight_floor": t.weight_floor, "flip": t.flip, "num_repeats": t.num_repeats},
        # FTWA Eq. (5) sums ln C at chance for each image group a batch has (the term logs that level beside itself);
        # each classifier on each group is judged on its own too, so a stream whose SWA weight collapsed is caught
        chance={"loss_cls": "loss_cls_chance"} | {f"loss_ce_{k}": chance_ce(pairs.num_classes)
                                                  for k in ("hr", "hr_p", "lr", "lr_p")},
    )


def query_path(output: str, runs: dict, cfg):
    """What embeds one LR query at test time: the LR stream, T and both evaluators (the gallery is embedded
    offline)."""
    return StreamEmbedder(runs["train"].modules["model"], "lr"), "bilinear"


def matcher(output: str, runs: dict, cfg, precision) -> FTWAMatcher:
    """FTWA's test (``test.match``) as a :class:`lib.inference.Matcher`."""
    return FTWAMatcher(runs["train"].modules["model"], rates=cfg.data.rates, match=cfg.test.match, name=output,
                       weight_floor=cfg.test.weight_floor,
                       size=cfg.data.size, precision=precision, flip=cfg.test.flip, batch_size=cfg.test.batch_size,
                       pipeline=getattr(cfg.data, "pipeline", "pil"))


#: The stage graph.
STAGES: dict[str, Stage] = {"train": Stage("train", build_train, modules=_train_modules)}
