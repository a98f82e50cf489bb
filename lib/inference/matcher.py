"""What a method's output does at test time, as one object: embed queries, embed a gallery, their distance.

A :class:`Matcher` is built by a method's ``matcher`` hook (:class:`lib.methods.Method`) from loaded runs; it
reproduces the output's evaluation (the same images, resizing, flips, precision and distance), so a matcher run
over a split's test images gives the run's recorded Rank-1 (a test checks it), and it also takes what the
tables never see: queries re-made from their HR originals at any rate (:class:`QuerySource`) and a user's own
image files (``python -m lib.rank``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..data.mlr_build import load_rgb
from ..engine.evaluate import embed_images, score_distances
from ..engine.precision import Precision
from ..metrics import cosine_distance
from ..metrics.restoration import EvalMode, restore_images

__all__ = ["QuerySource", "Matcher", "EmbedderMatcher"]


@dataclass(frozen=True)
class QuerySource:
    """Which version of a query image enters the network.

    ``rate=None``: the image as stored (the LR query of an MLR split, a user's own file); ``rate=1``: its HR
    original; ``rate=r > 1``: the HR original down-sampled by ``r`` as the MLR synthesis does (bicubic,
    anti-aliased) — rates never seen in training included.
    """

    rate: int | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and (not isinstance(self.rate, int) or isinstance(self.rate, bool) or self.rate < 1):
            raise ValueError(f"QuerySource.rate: expected None or an int ≥ 1, found {self.rate!r}")

    @property
    def use(self) -> str:
        return "stored" if self.rate is None else "hr"

    @property
    def downsample_rate(self) -> int | None:
        return self.rate if self.rate is not None and self.rate > 1 else None

    def check(self, images: Sequence[Any]) -> None:
        """Re-making a query needs its HR original (CAVIAR's natively LR queries have none)."""
        if self.rate is not None:
            bad = [im for im in images if not im.has_hr_original]
            if bad:
                raise ValueError(f"query rate {self.rate}: {len(bad)} of {len(images)} queries have no HR original "
                                 f"(e.g. {bad[0].path}; natively LR images can only be used as stored)")

    def lr_image(self, im: Any):
        """The query as a PIL image at its true size (what the network's input is resized from)."""
        from ..data.mlr_build import downsample

        if self.rate is None:
            return load_rgb(im.path)
        hr = load_rgb(im.hr_path)
        return downsample(hr, self.rate, "bicubic", True) if self.rate > 1 else hr


class Matcher:
    """One output of a trained method at test time (subclasses: :class:`EmbedderMatcher`, FTWA's matcher).

    Attributes:
        name: the output (``pshrnet``, ``baseline``, ``ftwa`` …).
        size: network input (height, width); ``precision``, ``flip``, ``batch_size``, ``pipeline``: as the run's
            evaluation.
        sr: the SR module whose restorations :meth:`restore` shows (``None``: the method has none).
    """

    name: str = ""
    sr: nn.Module | None = None

    def __init__(self, *, size: tuple[int, int], precision: Precision, flip: bool = True, batch_size: int = 64,
                 pipeline: str = "pil") -> None:
        self.size, self.precision, self.flip, self.batch_size = tuple(size), precision, flip, batch_size
        self.pipeline = pipeline  # the run's data.pipeline: its test images are made as its evaluation made them

    def embed_queries(self, images: Sequence[Any], source: QuerySource = QuerySource()) -> Any:
        raise NotImplementedError

    def embed_gallery(self, images: Sequence[Any]) -> Any:
        raise NotImplementedError

    def distance(self, q: Any, g: Any) -> np.ndarray:
        """The (query × gallery) distance matrix of two embeddings."""
        raise NotImplementedError

    def feature_arrays(self, q: Any, g: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Two embeddings as plain arrays, and the distance that compares them: ``(qf, gf, metric)`` — 2-D float
        arrays (one row per image) and ``{"distance": NAME, **params}`` with NAME in
        :data:`lib.metrics.DISTANCES`, such that :func:`lib.metrics.distance_matrix` ``(qf, gf, metric)`` equals
        :meth:`distance` ``(q, g)`` bit for bit (what ``python -m lib.features export`` writes)."""
        raise NotImplementedError(f"{type(self).__name__} ({self.name}) cannot write its embeddings as arrays")

    def distances(self, queries: Sequence[Any], gallery: Sequence[Any], source: QuerySource = QuerySource(),
                  *, gallery_embedding: Any = None) -> np.ndarray:
        """Embed and compare (pass ``gallery_embedding`` to reuse one)."""
        g = self.embed_gallery(gallery) if gallery_embedding is None else gallery_embedding
        return self.distance(self.embed_queries(queries, source), g)

    def evaluate(self, split: Any, *, protocol: str, source: QuerySource = QuerySource(), num_repeats: int = 10,
                 seed: int = 0, gallery_embedding: Any = None) -> dict[str, Any]:
        """The split's LR queries (or their re-made versions) vs its HR gallery, scored as the tables do."""
        d = self.distances(split.query, split.gallery, source, gallery_embedding=gallery_embedding)
        pid = lambda ims: np.array([im.pid for im in ims])  # noqa: E731
        cam = lambda ims: np.array([im.camid for im in ims])  # noqa: E731
        return score_distances(d, pid(split.query), pid(split.gallery), cam(split.query), cam(split.gallery),
                               protocol=protocol, num_repeats=num_repeats, seed=seed)

    def restore(self, images: Sequence[Any], source: QuerySource = QuerySource()) -> np.ndarray | None:
        """The SR module's restorations of the queries, ``(N, H, W, 3)`` uint8 at the network size; ``None``
        when the output has no SR module."""
        if self.sr is None:
            return None
        source.check(images)
        with EvalMode([self.sr]):
            return restore_images(self.sr, [source.lr_image(im) for im in images], self.size, self.precision)

    # ------------------------------------------------------------------ helpers for subclasses
    def _features(self, module: nn.Module, images: Sequence[Any], *, use: str, rate: int | None = None,
                  interpolation: str = "bilinear"):
        return embed_images(module, images, size=self.size, precision=self.precision, use=use, rate=rate,
                            interpolation=interpolation, batch_size=self.batch_size, flip=self.flip,
                            pipeline=self.pipeline)[0]


class EmbedderMatcher(Matcher):
    """One embedding network for query and gallery alike, cosine distance (PS-HRNet and its baselines:
    :func:`lib.engine.evaluate.evaluate_split`'s test).

    Args:
        embedder: ``images -> (B, D)`` (e.g. :class:`lib.models.ReIDEmbedder`, SR module included).
        interpolation: how every image is resized to ``size`` (the SR module's input interpolation; ``bicubic``
            for the bicubic baseline).
        sr: the SR module inside ``embedder`` (for :meth:`restore`), or ``None``.
    """

    def __init__(self, name: str, embedder: nn.Module, *, interpolation: str = "bilinear", sr: nn.Module | None = None,
                 **kw) -> None:
        super().__init__(**kw)
        self.name, self.embedder, self.interpolation, self.sr = name, embedder, interpolation, sr

    def embed_queries(self, images, source: QuerySource = QuerySource()):
        source.check(images)
        return self._features(self.embedder, images, use=source.use, rate=source.downsample_rate,
                              interpolation=self.interpolation)

    def embed_gallery(self, images):
        return self._features(self.embedder, images, use="hr", interpolation=self.interpolation)

    def distance(self, q, g) -> np.ndarray:
        return cosine_distance(q, g)

    def feature_arrays(self, q, g):
        """The features as they are (L2-normalised by the test already), cosine distance without renormalising."""
        return _float_rows(q), _float_rows(g), {"distance": "cosine", "normalize": False}


def _float_rows(x: Any) -> np.ndarray:
    """A (N, D) float32 CPU tensor as a numpy array (the same bits)."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
