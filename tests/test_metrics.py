"""Tests of the evaluation engine ``lib.metrics``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lib.metrics import (
    aggregate_splits,
    cosine_distance,
    euclidean_distance,
    evaluate_ranking,
    evaluate_single_shot,
    extract_features,
    format_mean_std,
    sample_single_shot_gallery,
)
from lib.metrics import features as features_mod


# --------------------------------------------------------------------------- independent reference
def reference_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Plain per-query loop: drop junk, stable argsort, walk the ranked list."""
    distmat = np.asarray(distmat, dtype=np.float64)
    cmc_hits = np.zeros(max_rank)
    aps, inps = [], []
    skipped = 0
    for i in range(distmat.shape[0]):
        keep = [j for j in range(distmat.shape[1]) if not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])]
        keep = np.array(keep, dtype=np.int64)
        order = keep[np.argsort(distmat[i, keep], kind="stable")]
        is_match = [g_pids[j] == q_pids[i] for j in order]
        if not any(is_match):
            skipped += 1
            continue
        found, precisions, last_rank, first_rank = 0, [], None, None
        for rank, hit in enumerate(is_match, start=1):
            if hit:
                found += 1
                precisions.append(found / rank)
                last_rank = rank
                if first_rank is None:
                    first_rank = rank
        for k in range(max_rank):
            if first_rank <= k + 1:
                cmc_hits[k] += 1
        aps.append(sum(precisions) / len(precisions))
        inps.append(found / last_rank)
    n = len(aps)
    return {"cmc": cmc_hits / n, "mAP": float(np.mean(aps)), "mINP": float(np.mean(inps)),
            "num_valid_queries": n, "num_skipped_queries": skipped}


def assert_same(res, ref):
    np.testing.assert_allclose(res["cmc"], ref["cmc"], rtol=0, atol=1e-9)
    assert res["mAP"] == pytest.approx(ref["mAP"], abs=1e-9)
    assert res["mINP"] == pytest.approx(ref["mINP"], abs=1e-9)
    assert res["num_valid_queries"] == ref["num_valid_queries"]
    assert res["num_skipped_queries"] == ref["num_skipped_queries"]


# --------------------------------------------------------------------------- hand-computed case
# Gallery:     g0      g1      g2      g3      g4      g5
#   pid         1       2       1       3       1       2
#   cam         1       1       0       1       1       1
HAND_G_PIDS = np.array([1, 2, 1, 3, 1, 2])
HAND_G_CAMS = np.array([1, 1, 0, 1, 1, 1])
HAND_Q_PIDS = np.array([1, 2, 3])
HAND_Q_CAMS = np.array([0, 0, 1])
HAND_DIST = np.array(
    [
        # q0 (pid 1, cam 0): g2 is junk (pid 1, cam 0) although it is the closest item.
        # Junk-removed order: g1(.1, pid 2) g5(.2, pid 2) g3(.3, pid 3) g0(.5, ✓) g4(.9, ✓)
        # -> match ranks 4, 5: AP = (1/4 + 2/5) / 2 = 0.325, INP = 2/5 = 0.4, first = 4.
        [0.5, 0.1, 0.05, 0.3, 0.9, 0.2],
        # q1 (pid 2, cam 0): no junk. Order: g4(.1) g0(.2) g5(.3, ✓) g1(.4, ✓) g2(.6) g3(.8)
        # -> match ranks 3, 4: AP = (1/3 + 2/4) / 2 = 5/12, INP = 2/4 = 0.5, first = 3.
        [0.2, 0.4, 0.6, 0.8, 0.1, 0.3],
        # q2 (pid 3, cam 1): its only gallery image g3 is junk (pid 3, cam 1) -> skipped.
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
)


def test_hand_computed_case():
    res = evaluate_ranking(HAND_DIST, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS, max_rank=6)
    # first-match ranks 4 and 3 over 2 valid queries
    np.testing.assert_allclose(res["cmc"], [0.0, 0.0, 0.5, 1.0, 1.0, 1.0], atol=1e-12)
    assert res["cmc"].dtype == np.float64 and res["cmc"].shape == (6,)
    assert res["mAP"] == pytest.approx((0.325 + 5 / 12) / 2, abs=1e-12)  # 89/240
    assert res["mINP"] == pytest.approx((0.4 + 0.5) / 2, abs=1e-12)
    assert res["num_valid_queries"] == 2
    assert res["num_skipped_queries"] == 1


def test_query_identity_absent_from_gallery_is_skipped():
    dist = np.vstack([HAND_DIST, np.zeros((1, 6))])
    q_pids, q_cams = np.append(HAND_Q_PIDS, 99), np.append(HAND_Q_CAMS, 0)
    res = evaluate_ranking(dist, q_pids, HAND_G_PIDS, q_cams, HAND_G_CAMS, max_rank=6)
    assert res["num_valid_queries"] == 2 and res["num_skipped_queries"] == 2
    assert res["mAP"] == pytest.approx(89 / 240, abs=1e-12)


def test_junk_neither_matches_nor_occupies_rank():
    # Removing the junk column g2 changes nothing for q0 (and nothing for q1, which had no junk).
    keep = [0, 1, 3, 4, 5]
    full = evaluate_ranking(HAND_DIST[:2], HAND_Q_PIDS[:2], HAND_G_PIDS, HAND_Q_CAMS[:2], HAND_G_CAMS, max_rank=5)
    cut = evaluate_ranking(HAND_DIST[:2, keep], HAND_Q_PIDS[:2], HAND_G_PIDS[keep], HAND_Q_CAMS[:2],
                           HAND_G_CAMS[keep], max_rank=5)
    assert_same(full, cut)
    # q0 alone: if the junk occupied a rank, the first match would be at rank 5, not 4.
    q0 = evaluate_ranking(HAND_DIST[:1], HAND_Q_PIDS[:1], HAND_G_PIDS, HAND_Q_CAMS[:1], HAND_G_CAMS, max_rank=5)
    np.testing.assert_array_equal(q0["cmc"], [0, 0, 0, 1, 1])


def test_ties_broken_by_gallery_index():
    q_pids, q_cams = np.array([7]), np.array([0])
    dist = np.array([[1.0, 1.0, 2.0]])
    # match (pid 7, other camera) after a tied non-match -> rank 2
    r = evaluate_ranking(dist, q_pids, np.array([3, 7, 4]), q_cams, np.array([1, 1, 1]), max_rank=3)
    np.testing.assert_array_equal(r["cmc"], [0, 1, 1])
    assert r["mAP"] == 0.5 and r["mINP"] == 0.5
    # same distances, match first by index -> rank 1
    r = evaluate_ranking(dist, q_pids, np.array([7, 3, 4]), q_cams, np.array([1, 1, 1]), max_rank=3)
    np.testing.assert_array_equal(r["cmc"], [1, 1, 1])
    assert r["mAP"] == 1.0 and r["mINP"] == 1.0
    # tie between junk and a match: junk is removed, the match is rank 1 either way
    r = evaluate_ranking(dist, q_pids, np.array([7, 7, 4]), q_cams, np.array([0, 1, 1]), max_rank=3)
    np.testing.assert_array_equal(r["cmc"], [1, 1, 1])


@pytest.mark.parametrize(
    "nq, ng, n_ids, n_cams, integer, chunk",
    [
        (5, 7, 3, 2, True, None),
        (40, 120, 10, 3, True, 7),
        (40, 120, 10, 3, False, 13),
        (64, 300, 30, 4, True, None),
        (33, 250, 6, 2, True, 1),
        (50, 400, 60, 6, False, None),
    ],
)
def test_matches_reference_on_random_inputs(nq, ng, n_ids, n_cams, integer, chunk):
    rng = np.random.default_rng(nq * 1000 + ng)
    q_pids, g_pids = rng.integers(0, n_ids, nq), rng.integers(0, n_ids, ng)
    q_cams, g_cams = rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng)
    if integer:  # few distinct values -> many ties, some at a huge distance too (+inf itself is an error)
        dist = rng.integers(0, 4, (nq, ng)).astype(np.float64)
        dist[rng.random((nq, ng)) < 0.05] = 1e300
    else:
        dist = rng.random((nq, ng)).astype(np.float32)
    ref = reference_ranking(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    assert ref["num_valid_queries"] > 0
    res = evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10, chunk_size=chunk)
    assert_same(res, ref)
    # torch inputs give the same answer
    res_t = evaluate_ranking(torch.from_numpy(dist), torch.from_numpy(q_pids), torch.from_numpy(g_pids),
                             torch.from_numpy(q_cams), torch.from_numpy(g_cams), max_rank=10)
    assert_same(res_t, ref)


def test_max_rank_beyond_gallery_saturates():
    r = evaluate_ranking(HAND_DIST, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS, max_rank=20)
    assert r["cmc"].shape == (20,)
    assert np.all(r["cmc"][3:] == 1.0)


def test_validation_errors():
    d = HAND_DIST
    with pytest.raises(ValueError, match=r"q_pids.*\(3,\).*\(2,\)"):
        evaluate_ranking(d, HAND_Q_PIDS[:2], HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS)
    with pytest.raises(ValueError, match=r"g_camids.*\(6,\).*\(5,\)"):
        evaluate_ranking(d, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS[:5])
    with pytest.raises(ValueError, match=r"distmat.*2-D.*\(18,\)"):
        evaluate_ranking(d.ravel(), HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS)
    with pytest.raises(ValueError, match="no query has a valid match"):
        evaluate_ranking(d[2:], HAND_Q_PIDS[2:], HAND_G_PIDS, HAND_Q_CAMS[2:], HAND_G_CAMS)
    bad = d.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(bad, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS)
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_ranking(d, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS, max_rank=0)


# --------------------------------------------------------------------------- single shot
def _random_problem(seed, nq=30, n_ids=20, per_id=4, n_cams=2):
    rng = np.random.default_rng(seed)
    g_pids = np.repeat(np.arange(n_ids), per_id)
    g_cams = np.ones_like(g_pids)  # gallery camera 1, queries camera 0: every query stays valid
    q_pids = rng.integers(0, n_ids, nq)
    q_cams = np.zeros(nq, dtype=np.int64)
    dist = rng.random((nq, g_pids.shape[0]))
    return dist, q_pids, g_pids, q_cams, g_cams


def test_sample_single_shot_gallery_one_per_id():
    g_pids = np.array([5, 5, 2, 9, 2, 2, 9])
    idx = sample_single_shot_gallery(g_pids, np.random.default_rng(0))
    assert sorted(g_pids[idx].tolist()) == [2, 5, 9]
    assert np.all(np.diff(idx) > 0)


def test_single_shot_on_single_shot_gallery_equals_ranking():
    dist, q_pids, g_pids, q_cams, g_cams = _random_problem(1, per_id=1)
    ss = evaluate_single_shot(dist, q_pids, g_pids, q_cams, g_cams, num_repeats=4, seed=3, max_rank=5)
    full = evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams, max_rank=5)
    np.testing.assert_allclose(ss["cmc"], full["cmc"], atol=1e-12)
    np.testing.assert_array_equal(ss["cmc_std"], np.zeros(5))
    assert ss["mAP"] == pytest.approx(full["mAP"], abs=1e-12) and ss["mAP_std"] == 0
    assert ss["mINP"] == pytest.approx(full["mINP"], abs=1e-12)
    assert ss["num_repeats"] == 4 and ss["num_valid_queries"] == full["num_valid_queries"]


def test_single_shot_seeded_and_reproducible():
    dist, q_pids, g_pids, q_cams, g_cams = _random_problem(2, per_id=4)
    a = evaluate_single_shot(dist, q_pids, g_pids, q_cams, g_cams, num_repeats=5, seed=0)
    b = evaluate_single_shot(dist, q_pids, g_pids, q_cams, g_cams, num_repeats=5, seed=0)
    c = evaluate_single_shot(dist, q_pids, g_pids, q_cams, g_cams, num_repeats=5, seed=1)
    np.testing.assert_array_equal(a["cmc"], b["cmc"])
    assert a["mAP"] == b["mAP"]
    assert a["mAP"] != c["mAP"]
    assert np.any(a["cmc_std"] > 0)
    # single-shot: every valid query has exactly one match, so AP = 1 / rank = INP
    assert a["mAP"] == pytest.approx(a["mINP"], abs=1e-12)


# --------------------------------------------------------------------------- aggregation
def test_aggregate_splits_mean_std():
    cmc_a = np.array([0.4, 0.6, 0.7, 0.8])
    cmc_b = np.array([0.6, 0.8, 0.9, 1.0])
    agg = aggregate_splits([{"cmc": cmc_a, "mAP": 0.3, "mINP": 0.1}, {"cmc": cmc_b, "mAP": 0.5, "mINP": 0.2}],
                           ranks=(1, 4))
    assert agg["num_splits"] == 2
    assert agg["rank1"]["mean"] == pytest.approx(0.5) and agg["rank1"]["std"] == pytest.approx(0.1)
    assert agg["rank4"]["values"] == [0.8, 1.0]
    assert agg["mAP"]["mean"] == pytest.approx(0.4) and agg["mAP"]["std"] == pytest.approx(0.1)
    assert agg["mINP"]["mean"] == pytest.approx(0.15)
    sample = aggregate_splits([{"cmc": cmc_a, "mAP": 0.3}, {"cmc": cmc_b, "mAP": 0.5}], ranks=(1,), ddof=1)
    assert sample["mAP"]["std"] == pytest.approx(np.sqrt(0.02)) and "mINP" not in sample
    with pytest.raises(ValueError, match="rank 5"):
        aggregate_splits([{"cmc": cmc_a, "mAP": 0.3}], ranks=(5,))
    with pytest.raises(ValueError, match="empty"):
        aggregate_splits([])


def test_format_mean_std():
    assert format_mean_std({"mean": 0.4873, "std": 0.0121}) == "48.7 ± 1.2"
    assert format_mean_std({"mean": 0.4873, "std": 0.0121}, percent=False, digits=3) == "0.487 ± 0.012"


# --------------------------------------------------------------------------- features
class TinyNet(nn.Module):
    """Linear layer on flattened pixels; records the mode it was called in."""

    def __init__(self, in_dim: int, out_dim: int = 5):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.drop = nn.Dropout(0.5)
        self.seen_training: list[bool] = []

    def forward(self, x):
        self.seen_training.append(self.training)
        return self.drop(self.fc(x.flatten(1)))


def _loader(imgs, pids, cams, bs=3):
    out = []
    for s in range(0, imgs.shape[0], bs):
        out.append({"img": imgs[s : s + bs], "pid": torch.tensor(pids[s : s + bs]), "camid": list(cams[s : s + bs])})
    return out


def test_extract_features_flip_norm_and_mode_restore():
    torch.manual_seed(0)
    imgs = torch.randn(7, 3, 4, 6)
    pids, cams = list(range(10, 17)), [0, 1, 0, 1, 0, 1, 0]
    net = TinyNet(3 * 4 * 6)
    net.train()
    net.drop.eval()  # a submodule's own mode must be restored too
    feats, p, c = extract_features(net, _loader(imgs, pids, cams), progress=False)
    assert net.training and not net.drop.training and net.fc.training
    assert net.seen_training and not any(net.seen_training)
    with torch.no_grad():
        f = net.fc(imgs.flatten(1)) + net.fc(torch.flip(imgs, dims=[3]).flatten(1))
    expected = f / f.norm(dim=1, keepdim=True)
    assert feats.dtype == torch.float32 and feats.shape == (7, 5) and feats.device.type == "cpu"
    assert not feats.is_inference()  # usable with autograd / in-place ops afterwards
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(7), rtol=1e-5, atol=1e-6)
    assert p.dtype == np.int64 and c.dtype == np.int64
    np.testing.assert_array_equal(p, pids)
    np.testing.assert_array_equal(c, cams)

    raw, _, _ = extract_features(net, _loader(imgs, pids, cams), flip=False, normalize=False, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(raw, net.fc(imgs.flatten(1)))


def test_extract_features_bf16_autocast_and_errors():
    torch.manual_seed(1)
    imgs = torch.randn(4, 3, 2, 2)
    net = TinyNet(12)
    feats, _, _ = extract_features(net, _loader(imgs, [0, 1, 2, 3], [0] * 4), amp_dtype=torch.bfloat16,
                                   progress=False)
    assert feats.dtype == torch.float32
    ref, _, _ = extract_features(net, _loader(imgs, [0, 1, 2, 3], [0] * 4), progress=False)
    torch.testing.assert_close(feats, ref, rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="no batch"):
        extract_features(net, [], progress=False)
    with pytest.raises(ValueError, match="camid"):
        extract_features(net, [{"img": imgs, "pid": [0, 1, 2, 3]}], progress=False)
    assert net.training  # restored after the exception too


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distances_vs_brute_force(monkeypatch, dtype):
    monkeypatch.setattr(features_mod, "_CHUNK_BYTES", 4 * 50 * 3)  # 3 query rows per chunk
    rng = np.random.default_rng(5)
    qf, gf = rng.normal(size=(11, 8)).astype(dtype), rng.normal(size=(50, 8)).astype(dtype)
    qn, gn = qf / np.linalg.norm(qf, axis=1, keepdims=True), gf / np.linalg.norm(gf, axis=1, keepdims=True)
    cos = cosine_distance(qn, torch.from_numpy(gn))
    brute_cos = np.array([[1 - float(np.dot(q, g)) for g in gn] for q in qn])
    assert cos.dtype == np.float32 and cos.shape == (11, 50)
    np.testing.assert_allclose(cos, brute_cos, atol=1e-5)
    euc = euclidean_distance(torch.from_numpy(qf), gf)
    brute_euc = np.array([[float(np.sum((q.astype(np.float64) - g) ** 2)) for g in gf] for q in qf])
    assert euc.dtype == np.float32 and np.all(euc >= 0)
    np.testing.assert_allclose(euc, brute_euc, rtol=1e-4, atol=1e-4)
    assert euclidean_distance(qf[:1], qf[:1])[0, 0] == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match=r"gf.*dimension 8.*\(50, 7\)"):
        cosine_distance(qf, gf[:, :7])
