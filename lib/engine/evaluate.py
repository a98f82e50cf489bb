"""Evaluate a feature extractor on one split: query (LR) vs gallery (HR), the dataset's protocol."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from ..data.datasets import ImageDataset
from ..data.mlr_dataset import Split
from ..metrics import cosine_distance, evaluate_ranking, evaluate_single_shot, extract_features
from .precision import Precision

__all__ = ["evaluate_split", "embed_images", "score_distances", "split_per_query", "RANKS", "PER_QUERY"]

RANKS = (1, 5, 10, 20)
#: The key of :func:`score_distances`'s per-query records: per valid query (in query order) its ``index`` in the
#: split's query list, ``pid``, ``rank1`` (1/0; single-shot: the fraction of gallery draws with a Rank-1 hit) and
#: ``ap`` — what the intervals of :mod:`lib.metrics.intervals` resample.
PER_QUERY = "per_query"


def evaluate_split(
    embedder: nn.Module,
    split: Split,
    *,
    size: tuple[int, int],
    protocol: str,
    precision: Precision,
    query_use: str = "stored",
    gallery_use: str = "hr",
    batch_size: int = 64,
    flip: bool = True,
    num_repeats: int = 10,
    seed: int = 0,
    resize_interpolation: str = "bilinear",
    progress: bool = False,
    pipeline: str = "pil",
) -> dict[str, Any]:
    """Rank the gallery for every query with cosine distance and score it.

    Args:
        embedder: ``images -> (B, D)`` features (e.g. :class:`lib.models.ReIDEmbedder`).
        split: query / gallery images.
        size: network input (height, width).
        protocol: ``'single_shot'`` (gallery redrawn ``num_repeats`` times with one image per identity)
            or ``'multi_shot'`` (junk removal, mAP/mINP).
        query_use: ``'stored'`` = the LR query images (cross-resolution test) or ``'hr'`` (phase-1
            HR-only test). gallery_use: ``'hr'``.
        flip: add the horizontally flipped image's feature (authors' code), then L2-normalise.
        resize_interpolation: how images are brought to ``size`` (``'bilinear'``, authors' code; the
            bicubic baseline uses ``'bicubic'``).
        pipeline: ``'pil'`` or ``'tensor'``: where the images are resized (:func:`embed_images`).

    Returns:
        ``rank1``, ``rank5``, ``rank10``, ``rank20`` (those the gallery size allows), ``mAP``, ``mINP``
        (fractions), ``cmc`` (list),
        ``num_query``, ``num_gallery``, ``protocol``.
    """
    kw = dict(size=size, precision=precision, batch_size=batch_size, flip=flip, interpolation=resize_interpolation,
              progress=progress, pipeline=pipeline)
    qf, q_pids, q_cams = embed_images(embedder, split.query, use=query_use, **kw)
    gf, g_pids, g_cams = embed_images(embedder, split.gallery, use=gallery_use, **kw)
    return score_distances(cosine_distance(qf, gf), q_pids, g_pids, q_cams, g_cams, protocol=protocol,
                           num_repeats=num_repeats, seed=seed)


def embed_images(module: nn.Module, images, *, size: tuple[int, int], precision: Precision, use: str = "stored",
                 rate: int | None = None, interpolation: str = "bilinear", batch_size: int = 64, flip: bool = True,
                 normalize: bool = True, progress: bool = False, pipeline: str = "pil") -> tuple[Any, np.ndarray, np.ndarray]:
    """``(features, pids, camids)`` of test images: each image as stored or its HR original (``use``), optionally
    down-sampled by ``rate`` first, resized to ``size`` with ``interpolation``, through ``module`` (flip-summed,
    L2-normalised unless ``normalize`` is off) — the one way every test (and :mod:`lib.inference`) embeds images.

    ``pipeline='tensor'``: the images are read as uint8 (from the decoded-image cache when it is active) and
    down-sampled / resized in batches on the model's device (:mod:`lib.data.tensor_pipeline`), not in this process."""
    ds = ImageDataset(images, size, use=use, resize_interpolation=interpolation, downsample_rate=rate, pipeline=pipeline)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=ds.collate_fn)
    if pipeline != "pil":
        loader = _Rendered(loader, ds, precision.device)
    return extract_features(module, loader, device=precision.device, flip=flip, normalize=normalize,
                            amp_dtype=precision.dtype, progress=progress)


class _Rendered:
    """A loader whose batches a dataset of the tensor path finishes on ``device`` (:meth:`ImageDataset.render`)."""

    def __init__(self, loader, ds, device) -> None:
        self.loader, self.ds, self.device = loader, ds, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return (self.ds.render(b, self.device) for b in self.loader)


def score_distances(dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray,
                    *, protocol: str, num_repeats: int = 10, seed: int = 0) -> dict[str, Any]:
    """Score a (query × gallery) distance matrix with the dataset's protocol (what :func:`evaluate_split` returns);
    methods with their own distance (FTWA's weighted distance) use it directly. The result holds the per-query
    records under :data:`PER_QUERY`; :func:`split_per_query` takes them out (a run writes them to ``per_query.json``)."""
    max_rank = min(max(RANKS), len(np.unique(g_pids)) if protocol == "single_shot" else len(g_pids))
    if protocol == "single_shot":
        r = evaluate_single_shot(dist, q_pids, g_pids, q_cams, g_cams, num_repeats=num_repeats, seed=seed, max_rank=max_rank)
    elif protocol == "multi_shot":
        r = evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
    else:
        raise ValueError(f"protocol must be 'single_shot' or 'multi_shot', got {protocol!r}")
    cmc = np.asarray(r["cmc"], dtype=float)
    out = {f"rank{k}": float(cmc[k - 1]) for k in RANKS if k <= len(cmc)}  # a gallery of 12 ids has no Rank-20
    out.update({"mAP": float(r["mAP"]), "mINP": float(r["mINP"]), "cmc": cmc.tolist(), "num_query": len(q_pids),
                "num_gallery": len(g_pids), "protocol": protocol})
    idx = np.asarray(r["query_index"], dtype=np.int64)
    hit = r["query_rank1"] if protocol == "single_shot" else (np.asarray(r["first_rank"]) == 1).astype(float)
    ap = r["query_ap"] if protocol == "single_shot" else r["ap"]
    out[PER_QUERY] = {"index": idx.tolist(), "pid": np.asarray(q_pids)[idx].astype(np.int64).tolist(),
                      "rank1": np.round(np.asarray(hit, dtype=float), 6).tolist(),
                      "ap": np.round(np.asarray(ap, dtype=float), 6).tolist()}
    return out


def split_per_query(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, per_query)``: a stage's evaluation (output → metrics) without the per-query records
    :func:`score_distances` adds, and those records by output (what a run keeps in ``per_query.json``)."""
    clean, per = {}, {}
    for k, v in metrics.items():
        if isinstance(v, dict) and PER_QUERY in v:
            per[k] = v[PER_QUERY]
            v = {x: y for x, y in v.items() if x != PER_QUERY}
        clean[k] = v
    return clean, per
