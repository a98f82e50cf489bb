"""Which keys of a re-ID toolbox's checkpoint belong to the backbone: torchreid, fast-reid, reid-strong-baseline.

A ``file:`` weight source (:func:`lib.models.build_backbone`) may hold a whole re-ID model saved by a toolbox rather
than a bare backbone. :func:`checkpoint_layout` looks at the keys (after :func:`~lib.models.weights.read_checkpoint`
has unwrapped ``state_dict`` / ``model`` and stripped ``module.``) and :meth:`CheckpointLayout.backbone_key` maps
each one:

* a **wrapper prefix** that every key carries (``module.``, ``model.``, repeated ones too) is stripped;
* a **backbone container** (:data:`BACKBONE_CONTAINERS`: fast-reid's ``backbone.``, reid-strong-baseline's
  ``base.``) is stripped from the keys under it;
* outside a container, the **re-ID heads and input buffers** (:data:`REID_HEAD_NAMES`: ``classifier``, ``fc``,
  ``bottleneck``, ``heads``, ``pixel_mean``, ``pixel_std`` as the first name of a key) map to ``None``: ignored and
  counted in :attr:`LoadReport.ignored <lib.models.weights.LoadReport>`;
* any other key is offered to the backbone unchanged (one it lacks is reported *unexpected*).

A key with a head's name that the backbone itself has is kept (:meth:`CheckpointLayout.key_map`'s ``keep``): none
of this project's backbones has such a module (their own classifiers are gone), and none is ever dropped as a head.

The layouts (learnt from the toolboxes' sources; none of their code is used here):

* **torchreid** (KaiyangZhou/deep-person-reid): ``torchreid.utils.save_checkpoint`` writes ``{'state_dict',
  'epoch', 'rank1', 'optimizer', 'scheduler'}``, ``rank1`` a numpy float (read as data, see
  :func:`~lib.models.weights.read_checkpoint`), the keys with ``module.`` when trained under DataParallel. The
  model's keys sit at the top level; its ResNets name the trunk as torchvision does (``conv1``, ``bn1``,
  ``layer1``–``layer4`` with ``conv1..3`` / ``bn1..3`` / ``downsample.0/1``), followed by the re-ID head:
  ``fc.*`` (the optional embedding, ``fc_dims``: Linear → BatchNorm1d → ReLU) and ``classifier.*``.
* **fast-reid** (JDAI-CV/fast-reid): ``Checkpointer.save`` writes ``{'model', 'optimizer', 'scheduler',
  'iteration' | 'epoch', ...}``. The ``Baseline`` meta-architecture's keys are ``pixel_mean`` / ``pixel_std`` (its
  input normalisation, on a 0–255 scale: ImageNet's mean and std, as this project's ``normalize``), ``backbone.*``
  and ``heads.*`` (``EmbeddingHead``: ``heads.bottleneck.0.*`` the BN-neck, ``heads.weight`` the classifier —
  ``heads.classifier.weight`` in older releases —, ``heads.pool_layer.p`` GeM's exponent). Its ResNet's names equal
  torchvision's (``backbone.conv1.weight``, ``backbone.layer1.0.conv1.weight``, ``backbone.layer1.0.downsample.0
  .weight``); its variants add tensors torchvision's ResNet lacks — IBN (``bn1.IN.*`` / ``bn1.BN.*`` instead of
  ``bn1.*``), SE (``se.*``), non-local blocks (``NL_2.*``, ``NL_3.*``) — which come out unexpected / missing, and a
  file too far off is refused by :func:`~lib.models.weights.check_matched_share`. Its stem max-pool
  (``ceil_mode=True``, no padding) has no tensor but is not torchvision's (``padding=1``): the weights load
  exactly, the features are not bit-identical to fast-reid's.
* **reid-strong-baseline** (BoT, Luo et al.): ``base.*`` the backbone, ``bottleneck.*`` the BN-neck,
  ``classifier.*``.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

__all__ = ["WRAPPER_PREFIXES", "BACKBONE_CONTAINERS", "REID_HEAD_NAMES", "CheckpointLayout", "checkpoint_layout"]

#: Prefixes a wrapper puts in front of every key (DataParallel / DDP, Lightning-style ``model.``).
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "model.")
#: Sub-modules holding the backbone inside a re-ID model, looked for in this order.
BACKBONE_CONTAINERS: tuple[str, ...] = ("backbone.", "base.")
#: First names of the keys of re-ID heads and input buffers: never a backbone's tensor.
REID_HEAD_NAMES: frozenset[str] = frozenset({"classifier", "fc", "bottleneck", "heads", "pixel_mean", "pixel_std"})


@dataclass(frozen=True)
class CheckpointLayout:
    """How the backbone's keys sit in a checkpoint.

    Attributes:
        wrapper: the prefix every key carries (stripped), e.g. ``'model.'``; ``''`` for none.
        container: the backbone's sub-module, e.g. ``'backbone.'`` (fast-reid); ``''`` when the backbone's keys are at
            the top level (torchreid, torchvision, timm, HRNet's official files).
    """

    wrapper: str = ""
    container: str = ""

    def backbone_key(self, key: str) -> str | None:
        """The backbone's name for the checkpoint key ``key``, or ``None`` for a re-ID head's key (ignored)."""
        if self.wrapper and key.startswith(self.wrapper):
            key = key[len(self.wrapper):]
        if self.container and key.startswith(self.container):
            return key[len(self.container):]
        if key.split(".", 1)[0] in REID_HEAD_NAMES:
            return None
        return key

    def key_map(self, inner: Callable[[str], str | None] | None = None,
                keep: Container[str] = ()) -> Callable[[str], str | None]:
        """:meth:`backbone_key`, then ``inner`` (a backbone's own ``checkpoint_key_map``) on what is left.

        Args:
            inner: the backbone's key map (identity when ``None``).
            keep: the backbone's own keys: a key with a head's name that maps onto one of them is kept, not
                ignored (no backbone here has such a tensor; this makes sure none is ever dropped as a head).
        """
        def inner_or_same(key: str) -> str | None:
            return key if inner is None else inner(key)

        def mapped(key: str) -> str | None:
            name = self.backbone_key(key)
            if name is not None:
                return inner_or_same(name)
            kept = inner_or_same(key[len(self.wrapper):] if key.startswith(self.wrapper) else key)
            return kept if kept is not None and kept in keep else None

        return mapped

    def describe(self) -> str:
        """For :attr:`LoadReport.layout <lib.models.weights.LoadReport>`: ``"backbone under 'backbone.'"``, ``''``
        for a plain state dict."""
        parts = [f"'{self.wrapper}' stripped"] if self.wrapper else []
        if self.container:
            parts.append(f"backbone under '{self.container}'")
        return ", ".join(parts)


def checkpoint_layout(keys: Iterable[str]) -> CheckpointLayout:
    """The :class:`CheckpointLayout` of a state dict's keys: the wrapper prefix all of them share, then the first of
    :data:`BACKBONE_CONTAINERS` that any of them starts with."""
    keys = list(keys)
    wrapper = ""
    while keys:
        more = next((w for w in WRAPPER_PREFIXES if all(k.startswith(wrapper + w) for k in keys)), None)
        if more is None:
            break
        wrapper += more
    inner = [k[len(wrapper):] for k in keys]
    container = next((c for c in BACKBONE_CONTAINERS if any(k.startswith(c) for k in inner)), "")
    return CheckpointLayout(wrapper=wrapper, container=container)
