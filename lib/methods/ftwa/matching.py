"""How FTWA compares an LR query with an HR gallery image: the "weighted distance metric" (FTWA Sec. 1, 2.3).

The paper says SWA makes the network "capable of merging HR and LR features with a weighted distance metric" and
that it "can better combine the HR and LR information of each image input (no matter HR or LR)", but gives no
formula. Every image has a feature in each resolution space, with a quality weight (FTWA Eq. (4)):

* an LR query: ``v_LR`` (LR stream) and ``v'_HR`` = GAP(T(F_LR)) (its HR-space feature), weights ``w_LR``, ``w'_HR``;
* an HR gallery image: ``v_HR`` (HR stream) and ``v'_LR`` (its down-sampled versions through the LR stream, one per
  training rate r, averaged), weights ``w_HR``, ``w'_LR``.

Matchings (``test.match``; all are computed and recorded as ``match_<name>_rank1`` …, the chosen one is the result):

* ``swa`` (default — our reading, the test-time mirror of FTWA Eq. (7)): the cosine distances in the HR space
  ``d_HR = d(v'_HR, v_HR)`` and in the LR space ``d_LR = d(v_LR, v'_LR)``, weighted by the products of the two
  images' weights: ``(w'_HR·w_HR·d_HR + w_LR·w'_LR·d_LR) / (w'_HR·w_HR + w_LR·w'_LR)``; with a weight floor
  (``test.weight_floor``, default 0) the normalised weight p of d_HR becomes ``floor + (1 − 2·floor)·p`` as
  ``loss.weight_floor`` does in training, so neither space is dropped entirely;
* ``mean``: ``(d_HR + d_LR) / 2`` (the same without weights);
* ``hr``: ``d_HR`` only (T brings the query to the gallery's space);
* ``lr``: ``d_LR`` only (the gallery is brought down to the query's);
* ``direct``: ``d(v_LR, v_HR)`` (no T, no down-sampling: a single network's test).

As arrays (``python -m lib.features export``, :meth:`FTWAMatcher.feature_arrays`) a query is one row
``[v_LR | v'_HR | log w_LR | log w'_HR]`` and a gallery image ``[v_HR | v'_LR | log w_HR | log w'_LR]`` (2C + 2
columns), compared by the registered distance ``ftwa`` (:data:`lib.metrics.DISTANCES`) with the parameters ``match``
and ``weight_floor``.

Features are flip-summed and L2-normalised as in :func:`lib.metrics.extract_features`; weights are kept as
logarithms (a quality evaluator can saturate so far that the weight itself underflows to 0, and ``swa`` then needs
``a / (a + b)`` in log space), averaged over the flips and, for a gallery image's ``w'_LR``, over the rates
(geometric means). The embedder returns them in float32 whatever the autocast dtype (bf16 would round a log-weight
near −300 by 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ...engine.evaluate import embed_images, score_distances
from ...inference.matcher import Matcher, QuerySource
from ...losses.swa import floored
from ...metrics import DISTANCES, cosine_distance

__all__ = ["MATCHES", "StreamEmbedder", "FTWAMatcher", "match_frame", "query_features", "gallery_features", "match_distance",
           "evaluate_ftwa", "pack_features", "packed_distance"]

MATCHES = ("swa", "mean", "hr", "lr", "direct")


class StreamEmbedder(nn.Module):
    """``x -> [v, v_T, log w, log w_T]`` of one stream as one tensor (what :func:`extract_features` expects).

    ``stream='lr'``: ``v = v_LR``, ``v_T = v'_HR`` (through T), ``w = W_LR(v_LR)``, ``w_T = W_HR(v'_HR)``;
    ``stream='hr'``: ``v = v_HR``, ``w = W_HR(v_HR)``; ``stream='lr_plain'``: the LR stream without T (a gallery
    image's down-sampled versions need only ``v'_LR`` and ``w'_LR``) — in both, ``v_T`` and ``w_T`` repeat ``v`` and
    ``w``. Weights travel as logarithms (finite where a weight underflows), the whole output in float32."""

    def __init__(self, model: nn.Module, stream: str) -> None:
        super().__init__()
        if stream not in ("hr", "lr", "lr_plain"):
            raise ValueError(f"stream: expected 'hr', 'lr' or 'lr_plain', found {stream!r}")
        self.model, self.stream = model, stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.stream == "lr":
            f = m.lr_stream(x)
            v, v_t = m.pool(f), m.pool(m.transform(f))
            lw, lw_t = m.log_weight("lr", v), m.log_weight("hr", v_t)
        else:
            res = "hr" if self.stream == "hr" else "lr"
            v = v_t = m.pool(m.hr_stream(x) if res == "hr" else m.lr_stream(x))
            lw = lw_t = m.log_weight(res, v)
        return torch.cat([v.float(), v_t.float(), lw.float()[:, None], lw_t.float()[:, None]], dim=1)


def _features(model: nn.Module, images, stream: str, *, size, use: str, precision, batch_size: int, flip: bool,
              rate: int | None = None, pipeline: str = "pil") -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    out, pids, cams = embed_images(StreamEmbedder(model, stream), images, size=size, precision=precision, use=use,
                                   rate=rate, batch_size=batch_size, flip=flip, normalize=False, pipeline=pipeline)
    c = (out.shape[1] - 2) // 2
    n = 2.0 if flip else 1.0
    feats = {"v": F.normalize(out[:, :c], dim=1), "v_t": F.normalize(out[:, c:2 * c], dim=1),
             "lw": out[:, 2 * c] / n, "lw_t": out[:, 2 * c + 1] / n}
    return feats, pids, cams


def query_features(model, images, *, use: str = "stored", rate: int | None = None,
                   **kw) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """LR queries (as stored; ``use='hr'`` with ``rate``: re-made from the HR original): ``{'lr', 'hr_p'}``
    vectors and ``{'lw_lr', 'lw_hr_p'}`` log-weights, pids, camids."""
    f, pids, cams = _features(model, images, "lr", use=use, rate=rate, **kw)
    return {"lr": f["v"], "hr_p": f["v_t"], "lw_lr": f["lw"], "lw_hr_p": f["lw_t"]}, pids, cams


def gallery_features(model, images, rates: Sequence[int], **kw) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """HR gallery images: ``{'hr', 'lr_p'}`` (``lr_p``: the mean over ``rates`` of the down-sampled versions' LR-stream
    vectors, renormalised) and ``{'lw_hr', 'lw_lr_p'}`` log-weights (``lw_lr_p``: the mean over ``rates``);
    pids, camids."""
    f, pids, cams = _features(model, images, "hr", use="hr", **kw)
    low = [_features(model, images, "lr_plain", use="hr", rate=int(r), **kw)[0] for r in rates]
    lr_p = F.normalize(torch.stack([x["v"] for x in low]).mean(0), dim=1)
    lw_lr_p = torch.stack([x["lw"] for x in low]).mean(0)
    return {"hr": f["v"], "lr_p": lr_p, "lw_hr": f["lw"], "lw_lr_p": lw_lr_p}, pids, cams


def match_distance(q: dict[str, torch.Tensor], g: dict[str, torch.Tensor], match: str,
                   weight_floor: float = 0.0) -> np.ndarray:
    """The (query × gallery) distance of ``match`` (see the module docstring); ``weight_floor`` applies to ``swa``."""
    if match not in MATCHES:
        raise ValueError(f"match: expected one of {MATCHES}, found {match!r}")
    if not 0.0 <= weight_floor < 0.5:
        raise ValueError(f"weight_floor: expected a number in [0, 0.5), found {weight_floor!r}")
    if match == "direct":
        return cosine_distance(q["lr"], g["hr"])
    d_hr = cosine_distance(q["hr_p"], g["hr"]) if match != "lr" else None
    d_lr = cosine_distance(q["lr"], g["lr_p"]) if match != "hr" else None
    if match == "hr":
        return d_hr
    if match == "lr":
        return d_lr
    if match == "mean":
        return (d_hr + d_lr) / 2
    la = q["lw_hr_p"].double().numpy()[:, None] + g["lw_hr"].double().numpy()[None, :]  # log(w'_HR·w_HR)
    lb = q["lw_lr"].double().numpy()[:, None] + g["lw_lr_p"].double().numpy()[None, :]  # log(w_LR·w'_LR)
    pa = 1.0 / (1.0 + np.exp(np.clip(lb - la, -80, 80)))  # a / (a + b), in log space
    pa = floored(pa, weight_floor)
    return (pa * d_hr + (1.0 - pa) * d_lr).astype(np.float32)


#: The row layout of :func:`pack_features`: (vector, vector, log-weight, log-weight) of a query / a gallery image.
PACKED = {"query": ("lr", "hr_p", "lw_lr", "lw_hr_p"), "gallery": ("hr", "lr_p", "lw_hr", "lw_lr_p")}


def pack_features(f: dict[str, torch.Tensor], side: str) -> np.ndarray:
    """Query (``side='query'``) or gallery features as one float32 (N, 2C + 2) array (see the module docstring)."""
    a, b, la, lb = (f[k] for k in PACKED[side])
    return torch.cat([a, b, la[:, None], lb[:, None]], dim=1).to(torch.float32).numpy()


def _unpack(x: Any, side: str) -> dict[str, torch.Tensor]:
    t = torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or t.shape[1] < 4 or t.shape[1] % 2:
        raise ValueError(f"ftwa distance: expected {side} rows of 2C + 2 columns [vector | vector | log-weight | "
                         f"log-weight], found shape {tuple(t.shape)}")
    c = (t.shape[1] - 2) // 2
    parts = (t[:, :c], t[:, c:2 * c], t[:, 2 * c], t[:, 2 * c + 1])
    return {k: p.contiguous() for k, p in zip(PACKED[side], parts)}


@DISTANCES.register("ftwa")
def packed_distance(qf: Any, gf: Any, *, match: str, weight_floor: float = 0.0) -> np.ndarray:
    """:func:`match_distance` of :func:`pack_features`' arrays (the same numbers as on the dicts)."""
    return match_distance(_unpack(qf, "query"), _unpack(gf, "gallery"), match, float(weight_floor))


def evaluate_ftwa(model: nn.Module, split: Any, *, size, protocol: str, precision, rates: Sequence[int], match: str,
                  batch_size: int = 64, flip: bool = True, num_repeats: int = 10, seed: int = 0,
                  weight_floor: float = 0.0, pipeline: str = "pil") -> dict[str, Any]:
    """LR query vs HR gallery of ``split`` with every matching: the chosen ``match``'s metrics (as
    :func:`~lib.engine.evaluate.score_distances`) plus ``match`` and ``match_<m>_{rank1,rank5,mAP}`` for every m;
    images made by ``pipeline`` (:mod:`lib.data.tensor_pipeline`)."""
    kw = dict(size=size, precision=precision, batch_size=batch_size, flip=flip, pipeline=pipeline)
    q, q_pids, q_cams = query_features(model, split.query, **kw)
    g, g_pids, g_cams = gallery_features(model, split.gallery, rates, **kw)
    results = {m: score_distances(match_distance(q, g, m, weight_floor), q_pids, g_pids, q_cams, g_cams, protocol=protocol,
                                  num_repeats=num_repeats, seed=seed) for m in MATCHES}
    out = dict(results[match]) | {"match": match}
    for m, r in results.items():
        out |= {f"match_{m}_{k}": r[k] for k in ("rank1", "rank5", "mAP") if k in r}
    return out


class FTWAMatcher(Matcher):
    """FTWA's test as a :class:`lib.inference.Matcher`: queries through the LR stream (and T), the gallery through
    the HR stream and, down-sampled at the training ``rates``, the LR stream; distance: ``match``."""

    def __init__(self, model: nn.Module, *, rates: Sequence[int], match: str, name: str = "ftwa",
                 weight_floor: float = 0.0, **kw) -> None:
        super().__init__(**kw)
        if match not in MATCHES:
            raise ValueError(f"match: expected one of {MATCHES}, found {match!r}")
        self.model, self.rates, self.match, self.name = model, tuple(int(r) for r in rates), match, name
        self.weight_floor = float(weight_floor)

    def _kw(self) -> dict:
        return dict(size=self.size, precision=self.precision, batch_size=self.batch_size, flip=self.flip,
                    pipeline=self.pipeline)

    def embed_queries(self, images, source: QuerySource = QuerySource()):
        source.check(images)
        return query_features(self.model, images, use=source.use, rate=source.downsample_rate, **self._kw())[0]

    def embed_gallery(self, images):
        return gallery_features(self.model, images, self.rates, **self._kw())[0]

    def distance(self, q, g) -> np.ndarray:
        return match_distance(q, g, self.match, self.weight_floor)

    def feature_arrays(self, q, g):
        """Packed rows (the module docstring) and the ``ftwa`` distance with this matcher's matching."""
        return (pack_features(q, "query"), pack_features(g, "gallery"),
                {"distance": "ftwa", "match": self.match, "weight_floor": self.weight_floor})


def match_frame(summaries: dict, output: str = "ftwa"):
    """Rank-1 (%, mean ± std over splits) of every matching, one row per (dataset, variant) of FTWA summaries
    (``Experiment.summaries``); the chosen matching is marked with ``*``."""
    import pandas as pd

    from ...metrics import format_mean_std

    rows = []
    for (variant, ds), rec in summaries.items():
        agg = rec["outputs"].get(output, {}).get("aggregate", {})
        chosen = rec["outputs"].get(output, {}).get("per_split", [{}])[0].get("match")
        row = {"dataset": ds, "variant": variant}
        for m in MATCHES:
            if f"match_{m}_rank1" in agg:
                row[m + ("*" if m == chosen else "")] = format_mean_std(agg[f"match_{m}_rank1"])
        rows.append(row)
    return pd.DataFrame(rows)
