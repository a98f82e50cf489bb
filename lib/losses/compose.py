"""Loss terms by name, composed with weights: ``L = Σ_name w_name · term_name``.

Generic, for every method: a method registers its terms in :data:`LOSS_TERMS` under their names, subclasses
:class:`LossInputs` with what its terms read beyond the network's output and the labels, and keeps their
hyper-parameters in its own loss configuration (the ``loss`` section of its YAML). A stage builds a
:class:`LossComposer` from the weights of its ``losses`` and that configuration; a term with weight 0 is not built,
so any term can be removed. The terms, their inputs and their configurations live with their methods:

* PS-HRNet (:mod:`lib.methods.pshrnet.losses`): ``ce``, ``triplet``, ``sr``, ``ps`` — L_TOTAL, PS-HRNet Eq. (12);
* FTWA (:mod:`lib.methods.ftwa.losses`): ``swa_cls``, ``swa_tri``, ``raft`` — L_ReID, FTWA Eq. (8).

A method's configuration accepts only its own terms (:func:`check_terms`). Every term is computed in float32 and
returns ``(loss, parts)``: ``loss`` a scalar with a graph (or ``None`` where the batch has nothing for it), ``parts``
detached tensors (no host synchronisation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..core.registry import Registry

__all__ = ["LOSS_TERMS", "LossInputs", "LossTerm", "LossComposer", "check_terms"]

#: ``name -> (the method's loss configuration) -> term``; a term is ``(LossInputs) -> (loss, parts)``.
LOSS_TERMS = Registry("loss term")


@dataclass
class LossInputs:
    """What a step hands the loss terms: the trained network's output and the labels of the batch. A method whose
    terms read more (a restored image, a teacher's output) subclasses it with those fields."""

    out: Any  # the trained model's output (e.g. ReIDOutput, FTWAOutput)
    targets: torch.Tensor

    def need(self, term: str, *fields: str) -> None:
        """Raise, naming them, if any of ``fields`` (the inputs ``term`` reads) is ``None`` in this stage."""
        missing = [f for f in fields if getattr(self, f) is None]
        if missing:
            raise ValueError(f"loss term {term!r} needs {', '.join(missing)}, which this stage does not provide "
                             f"(set its weight to 0 or remove it from the stage's losses)")


class LossTerm(nn.Module):
    """Base of a registered loss term: it takes the settings named in ``reads`` from its method's loss configuration
    when it is built — inside the stage's build, so they are part of the run's identity — and keeps each as an
    attribute of the same name; ``setup()`` then builds what the term needs from them. ``forward(inputs) ->
    (loss or None, {part: value})``: ``None`` when the batch has nothing the term applies to."""

    reads: tuple[str, ...] = ()

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        for name in self.reads:
            setattr(self, name, getattr(cfg, name))
        self.setup()

    def setup(self) -> None:
        """Build sub-modules from the settings read (nothing by default)."""


def check_terms(losses: Iterable[str], allowed: Iterable[str], paper: str, equation: str) -> None:
    """A method's stage configuration names only that method's terms: the first other name is an error that names
    it, the allowed ones and the paper's equation (``check_terms(losses, ('ce', …), 'PS-HRNet', 'Eq. (12)')``)."""
    allowed = tuple(allowed)
    for name in losses:
        if name not in allowed:
            raise ValueError(f"losses: {name!r} is not one of {paper}'s terms {allowed} ({paper} {equation})")


class LossComposer(nn.Module):
    """``Σ w · term`` over the named terms with a non-zero weight.

    Args:
        weights: ``{term name: weight}`` (a stage's ``losses``); weight 0 leaves a term out.
        cfg: the method's loss configuration (or a tracked reader of it): each term reads its own settings from it.

    ``forward(LossInputs) -> (total, parts)``: ``total`` a float32 scalar with a graph, ``parts`` detached
    float32 tensors (each term's own parts, ``total``). Unknown names list the registered terms.
    """

    def __init__(self, weights: Mapping[str, float], cfg: Any) -> None:
        super().__init__()
        self.weights = {n: float(w) for n, w in weights.items() if float(w) != 0.0}
        if not self.weights:
            raise ValueError(f"losses: every weight is 0 in {dict(weights)}; a stage needs at least one loss term")
        self.terms = nn.ModuleDict({n: LOSS_TERMS.build(n, cfg) for n in self.weights})

    def forward(self, x: LossInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = None, {}
        for name, term in self.terms.items():
            value, p = term(x)
            if value is None:  # e.g. no sample with an HR original in this batch
                continue
            parts.update(p)
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        if total is None:  # no term applies to this batch (e.g. only L_SR/L_PS and no sample with an HR original)
            total = torch.zeros((), device=x.targets.device, requires_grad=True)
        parts["total"] = total.detach()
        return total, parts

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={w:g}" for n, w in self.weights.items())
