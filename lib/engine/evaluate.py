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

__all__ = ["evaluate_split", "embed_images", "score_distances", "RANKS"]

RANKS = (1, 5, 10, 20)


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

    Returns:
        ``rank1``, ``rank5``, ``rank10``, ``rank20`` (those the gallery size allows), ``mAP``, ``mINP``
        (fractions), ``cmc`` (list),
        ``num_query``, ``num_gallery``, ``protocol``.
    """
    kw = dict(size=size, precision=precision, batch_size=batch_size, flip=flip, interpolation=resize_interpolation,
              progress=progress)
    qf, q_pids, q_cams = embed_images(embedder, split.query, use=query_use, **kw)
    gf, g_pids, g_cams = embed_images(embedder, split.gallery, use=gallery_use, **kw)
    return score_distances(cosine_distance(qf, gf), q_pids, g_pids, q_cams, g_cams, protocol=protocol,
                           num_repeats=num_repeats, seed=seed)


def embed_images(module: nn.Module, images, *, size: tuple[int, int], precision: Precision, use: str = "stored",
                 rate: int | None = None, interpolation: str = "bilinear", batch_size: int = 64, flip: bool = True,
                 normalize: bool = True, progress: bool = False) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(features, pids, camids)`` of test images: each image as stored or its HR original (``use``), optionally
    down-sampled by ``rate`` first, resized to ``size`` with ``interpolation``, through ``module`` (flip-summed,
    L2-normalised unless ``normalize`` is off) — the one way every test (and :mod:`lib.inference`) embeds images."""
    ds = ImageDataset(images, size, use=use, resize_interpolation=interpolation, downsample_rate=rate)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    return extract_features(module, loader, device=precision.device, flip=flip, normalize=normalize,
                            amp_dtype=precision.dtype, progress=progress)


def score_distances(dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray,
                    *, protocol: str, num_repeats: int = 10, seed: int = 0) -> dict[str, Any]:
    """Score a (query × gallery) distance matrix with the dataset's protocol (what :func:`evaluate_split` returns);
    methods with their own distance (FTWA's weighted distance) use it directly."""
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
    return out
