"""A third method, registered from outside ``lib/`` (issue #23 §2's proof of the method contract).

``toy``: one stage, ``train`` — a one-convolution network with a linear classifier, trained with cross entropy on
the HR training images and tested LR query vs HR gallery on its pooled feature. It is deliberately small; what it
shows is the contract: its own configuration (a :class:`lib.methods.MethodConfig`), one stage whose ``modules``
hook both its build and :func:`lib.inference.load_run` use, a table spec shipped beside it, and hooks for the
explorer, the sweep and ``python -m lib.rank`` — with no file under ``lib/`` edited.

Register it by importing this package (``LIB_METHODS=tests.third_method`` for the command lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lib.core.learning import chance_ce
from lib.core.runs import Stage, StageContext, StagePlan
from lib.core.tracking import unwrap
from lib.data.datasets import ImageDataset
from lib.data.samplers import RandomIdentitySampler
from lib.engine.evaluate import evaluate_split
from lib.engine.optim import OptimConfig
from lib.inference.matcher import EmbedderMatcher
from lib.methods import METHODS, Method, MethodConfig, WorkbookTable

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ToyModelConfig:
    width: int = 16

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width: expected at least 1, found {self.width}")


@dataclass(frozen=True)
class ToyTrainConfig(OptimConfig):
    optimizer: str = "adam"
    epochs: int = 2
    lr: float = 1e-3


@dataclass(frozen=True)
class ToyConfig(MethodConfig):
    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    train: ToyTrainConfig = field(default_factory=ToyTrainConfig)


class ToyNet(nn.Module):
    """``x -> (feature, logits)``: one strided convolution, global average pooling, a linear classifier."""

    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 5, stride=4, padding=2), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return f, self.classifier(f)


class ToyEmbedder(nn.Module):
    """The pooled feature, the test's embedding."""

    def __init__(self, net: ToyNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]


class ToyStep:
    def __init__(self, model: ToyNet, prec) -> None:
        self.model, self.prec = model, prec

    def __call__(self, batch: dict):
        x = self.prec.prepare_input(batch["img"])
        y = batch["label"].to(self.prec.device)
        loss = F.cross_entropy(self.model(x)[1].float(), y)
        return loss, {"loss_ce": loss.detach()}, x.shape[0]


def _modules(cfg: Any, identity: Mapping[str, Any], deps: Mapping[str, Any]) -> dict:
    return {"model": ToyNet(int(identity.get("num_classes", 1)), cfg.model.width)}


def build_train(ctx: StageContext) -> StagePlan:
    cfg, prec, t = ctx.cfg, ctx.prec, ctx.test
    split = ctx.ds.split(ctx.split)
    train = ImageDataset(split.train, cfg.data.size, use="hr", seed=cfg.seed, pipeline=cfg.data.pipeline)
    model = prec.prepare_module(_modules(cfg, {"num_classes": train.num_classes}, ctx.deps)["model"])
    size, seed = cfg.data.size, cfg.seed

    def evaluate() -> dict:
        return {"lr": evaluate_split(ToyEmbedder(model), split, size=size, protocol=ctx.ds.eval_protocol, precision=prec,
                                     batch_size=t.batch_size, flip=t.flip, num_repeats=t.num_repeats, seed=seed)}
    return StagePlan(
        modules={"model": model}, dataset=train,
        sampler=RandomIdentitySampler(train.pids, cfg.data.num_identities, cfg.data.num_instances, seed=cfg.seed),
        optim=unwrap(cfg.train), make_step=lambda m: ToyStep(m["model"], prec), evaluate=evaluate,
        identity={"num_classes": train.num_classes}, eval_settings={"flip": t.flip, "num_repeats": t.num_repeats},
        chance={"loss_ce": chance_ce(train.num_classes)},
    )


def query_path(output: str, runs: Mapping[str, Any], cfg: Any):
    return ToyEmbedder(runs["train"].modules["model"]), "bilinear"


def matcher(output: str, runs: Mapping[str, Any], cfg: Any, precision):
    return EmbedderMatcher(output, ToyEmbedder(runs["train"].modules["model"]), size=cfg.data.size,
                           precision=precision, flip=cfg.test.flip, batch_size=cfg.test.batch_size)


TOY = METHODS.register("toy", Method(
    name="toy", config_class=ToyConfig, stages={"train": Stage("train", build_train, modules=_modules)},
    outputs={"toy": ("train", "lr")}, paper_config=str((HERE / "paper.yaml").relative_to(HERE.parents[1])),
    query_path=query_path, matcher=matcher, weights_keys=(),
    tables=(WorkbookTable("toy", "toy_table", (), spec_file=str(HERE / "toy_table.yaml")),),  # no notebook of its own
))
