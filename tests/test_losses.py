"""Tests of lib.losses: hand-checked values, subsets, reductions, detachment, fp32 under bf16."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lib.losses import (
    DEFAULT_PS_COMPONENTS,
    CrossEntropyLabelSmooth,
    IDLoss,
    LossConfig,
    PseudoSiameseLoss,
    SRLoss,
    TotalLoss,
    TripletLoss,
    batch_hard_triplet_loss,
    cross_entropy_label_smooth,
    pairwise_euclidean,
)
from lib.models import ReIDOutput


def _out(seq, feat, logits) -> ReIDOutput:
    return ReIDOutput(seq=list(seq), feat=feat, logits=logits)


# --------------------------------------------------------------------------- CE with label smoothing
def test_ce_label_smooth_two_classes_by_hand():
    # p = softmax([0, ln 3]) = [1/4, 3/4]; target 1, eps 0.1, M 2: q = [0.05, 0.95] (Eq. (9)).
    logits = torch.tensor([[0.0, math.log(3.0)]])
    target = torch.tensor([1])
    expected = -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    assert cross_entropy_label_smooth(logits, target, 0.1).item() == pytest.approx(expected, abs=1e-6)
    assert CrossEntropyLabelSmooth(0.1)(logits, target).item() == pytest.approx(0.3426127, abs=1e-6)


def test_ce_label_smooth_eps0_is_cross_entropy_and_reductions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=g)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    assert torch.allclose(cross_entropy_label_smooth(logits, target, 0.0), F.cross_entropy(logits, target))
    per = cross_entropy_label_smooth(logits, target, 0.1, reduction="none")
    assert per.shape == (6,)
    assert torch.allclose(cross_entropy_label_smooth(logits, target, 0.1, reduction="sum"), per.sum())
    assert torch.allclose(cross_entropy_label_smooth(logits, target, 0.1), per.mean())
    # Same as torch's own label smoothing.
    assert torch.allclose(
        cross_entropy_label_smooth(logits, target, 0.1), F.cross_entropy(logits, target, label_smoothing=0.1)
    )
    with pytest.raises(ValueError):
        cross_entropy_label_smooth(logits, target, 1.0)


# --------------------------------------------------------------------------- triplet
X1D = torch.tensor([[0.0], [2.0], [3.0], [6.0]])
Y1D = torch.tensor([0, 0, 1, 1])
# By hand (m = 0.1): anchor 0: [0.1 + 2 - 3]+ = 0;  anchor 1 (2): [0.1 + 2 - 1]+ = 1.1;
# anchor 2 (3): [0.1 + 3 - 1]+ = 2.1;  anchor 3 (6): [0.1 + 3 - 4]+ = 0.


def test_triplet_1d_by_hand():
    per = batch_hard_triplet_loss(X1D, Y1D, margin=0.1, reduction="none")
    assert torch.allclose(per, torch.tensor([0.0, 1.1, 2.1, 0.0]), atol=1e-5)
    assert batch_hard_triplet_loss(X1D, Y1D, margin=0.1).item() == pytest.approx(0.8, abs=1e-5)
    assert batch_hard_triplet_loss(X1D, Y1D, margin=0.1, reduction="sum").item() == pytest.approx(3.2, abs=1e-5)
    # Authors' margin 0.3: 1.3 + 2.3 over 4 anchors.
    assert TripletLoss(margin=0.3)(X1D, Y1D).item() == pytest.approx(0.9, abs=1e-5)


def test_triplet_pairwise_distance_and_normalize():
    d = pairwise_euclidean(X1D)
    assert torch.allclose(d, (X1D - X1D.t()).abs(), atol=1e-4)
    x = torch.tensor([[3.0, 0.0], [0.0, 5.0], [2.0, 0.0], [0.0, 0.5]])
    y = torch.tensor([0, 0, 1, 1])
    # Normalised: a0 = (1,0): pos (0,1) at sqrt2, neg (1,0) at 0 -> 0.1 + sqrt2; all anchors alike.
    expected = 0.1 + math.sqrt(2.0)
    assert batch_hard_triplet_loss(x, y, 0.1, normalize=True).item() == pytest.approx(expected, abs=1e-4)


def test_triplet_singleton_identity_skip_and_self():
    x = torch.cat([X1D, torch.tensor([[10.0]])])
    y = torch.cat([Y1D, torch.tensor([2])])  # identity 2 has a single sample: no positive
    per = batch_hard_triplet_loss(x, y, 0.1, reduction="none")
    assert per[4].item() == 0.0
    # 'skip': the lone anchor is left out of the mean (4 valid anchors).
    assert batch_hard_triplet_loss(x, y, 0.1).item() == pytest.approx(3.2 / 4, abs=1e-5)
    # 'self' (torchreid): the anchor is its own positive, [0.1 + 0 - 4]+ = 0, mean over 5 anchors.
    assert batch_hard_triplet_loss(x, y, 0.1, no_positive="self").item() == pytest.approx(3.2 / 5, abs=1e-5)


def test_triplet_degenerate_batches_give_zero_with_finite_grad():
    x = torch.randn(3, 4, requires_grad=True)
    for y in (torch.tensor([0, 1, 2]), torch.tensor([5, 5, 5])):  # no positives / no negatives
        loss = batch_hard_triplet_loss(x, y, 0.1)
        assert loss.item() == 0.0
        (g,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(g).all() and (g == 0).all()


def test_triplet_gradient_is_finite_with_duplicates():
    x = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [2.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    batch_hard_triplet_loss(x, y, 0.1).backward()
    assert torch.isfinite(x.grad).all()


# --------------------------------------------------------------------------- L_ID
def _toy_output(b=8, classes=4, seed=0, dtype=torch.float32, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    dims = (12, 6, 12, 6)
    seq = [torch.randn(b, d, generator=g) for d in dims]
    seq.append(torch.cat(seq, 1))
    feat = torch.randn(b, 5, generator=g)
    logits = torch.randn(b, classes, generator=g)
    tensors = [t.to(dtype).requires_grad_(requires_grad) for t in seq + [feat, logits]]
    return _out(tensors[:5], tensors[5], tensors[6])


TARGETS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_id_loss_matches_eq10_and_reductions():
    out = _toy_output()
    ce = cross_entropy_label_smooth(out.logits, TARGETS, 0.1)
    tris = [batch_hard_triplet_loss(s, TARGETS, 0.1) for s in out.seq]
    total, parts = IDLoss()(out, TARGETS)  # paper: 1.15 CE + 0.2 * sum_t triplet(Seq_t)
    assert total.item() == pytest.approx(1.15 * ce.item() + 0.2 * sum(t.item() for t in tris), rel=1e-6)
    assert set(parts) == {"ce", "tri_seq1", "tri_seq2", "tri_seq3", "tri_seq4", "tri_seq5", "bh", "id"}
    assert parts["bh"].item() == pytest.approx(sum(t.item() for t in tris), rel=1e-6)
    mean_total, mean_parts = IDLoss(triplet_reduction="mean")(out, TARGETS)  # authors' code
    assert mean_parts["bh"].item() == pytest.approx(sum(t.item() for t in tris) / 5, rel=1e-6)
    assert mean_total.item() == pytest.approx(1.15 * ce.item() + 0.2 * mean_parts["bh"].item(), rel=1e-6)
    # Subset of sequences.
    _, sub = IDLoss(triplet_on=("seq5",))(out, TARGETS)
    assert set(k for k in sub if k.startswith("tri_")) == {"tri_seq5"}
    assert sub["bh"].item() == pytest.approx(tris[4].item(), rel=1e-6)


def test_id_loss_all_for_single_embedding_baselines_and_bad_names():
    out = _toy_output()
    base = _out([out.seq[0]], out.feat, out.logits)
    _, parts = IDLoss(triplet_on="all")(base, TARGETS)
    assert [k for k in parts if k.startswith("tri_")] == ["tri_seq1"]
    with pytest.raises(KeyError, match="seq2"):
        IDLoss()(base, TARGETS)  # default needs Seq1..Seq5
    with pytest.raises(ValueError, match="seq9"):
        IDLoss(triplet_on=("seq9",))


# --------------------------------------------------------------------------- L_SR
def test_sr_loss_by_hand():
    a = torch.zeros(1, 3, 2, 2)
    b = torch.full((1, 3, 2, 2), 0.5)
    b[0, 0, 0, 0] = 2.5
    assert SRLoss()(a, b).item() == pytest.approx((11 * 0.5 + 2.5) / 12)
    assert SRLoss("sum")(a, b).item() == pytest.approx(11 * 0.5 + 2.5)
    with pytest.raises(ValueError):
        SRLoss()(a, b[:, :, :1])


# --------------------------------------------------------------------------- L_PS
def test_ps_loss_subset_values_and_validation():
    t, s = _toy_output(seed=1), _toy_output(seed=2)
    loss, parts = PseudoSiameseLoss(("seq1", "logits"))(t, s)
    expected = (s.seq[0] - t.seq[0]).abs().mean() + (s.logits - t.logits).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"ps_seq1", "ps_logits"}
    # Components outside C do not matter.
    s2 = _out([s.seq[0], s.seq[1] + 100, *s.seq[2:]], s.feat, s.logits)
    assert PseudoSiameseLoss(("seq1", "logits"))(t, s2)[0].item() == pytest.approx(loss.item())
    assert PseudoSiameseLoss().components == DEFAULT_PS_COMPONENTS == ("seq1", "seq4", "seq5", "logits")
    with pytest.raises(ValueError, match=r"'feat'.*seq1.*logits"):
        PseudoSiameseLoss(("seq1", "feat"))
    with pytest.raises(ValueError, match="empty"):
        PseudoSiameseLoss(())


def test_ps_loss_teacher_gets_no_gradient():
    torch.manual_seed(0)
    teacher = torch.nn.Linear(4, 3)
    student = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)

    def as_out(y):
        return _out([y, y * 2, y, y, y], y, y)

    loss, _ = PseudoSiameseLoss()(as_out(teacher(x)), as_out(student(x)))
    loss.backward()
    assert teacher.weight.grad is None and teacher.bias.grad is None
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- L_TOTAL
def test_total_loss_eq12_parts_and_phase1():
    s, t = _toy_output(seed=3), _toy_output(seed=4)
    restored, hr = torch.rand(8, 3, 4, 2), torch.rand(8, 3, 4, 2)
    crit = TotalLoss()
    assert crit.config == LossConfig()
    total, parts = crit(s, TARGETS, restored=restored, hr=hr, teacher_out=t)
    id_total, _ = IDLoss()(s, TARGETS)
    sr = (restored - hr).abs().mean()
    ps, _ = PseudoSiameseLoss()(t, s)
    expected = id_total.item() + 0.5 * sr.item() + 0.5 * ps.item()
    assert total.dtype == torch.float32
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert all(isinstance(v, float) for v in parts.values())
    assert parts["total"] == pytest.approx(expected, rel=1e-6)
    assert {"ce", "bh", "id", "sr", "ps", "ps_seq1", "ps_seq4", "ps_seq5", "ps_logits", "total"} <= set(parts)
    # Phase 1: L_ID only.
    total1, parts1 = crit(s, TARGETS)
    assert total1.item() == pytest.approx(id_total.item(), rel=1e-6)
    assert "sr" not in parts1 and "ps" not in parts1
    with pytest.raises(ValueError, match="both"):
        crit(s, TARGETS, restored=restored)


def test_loss_config_from_dict_and_to_dict():
    cfg = LossConfig.from_dict({"margin": 0.3, "triplet_reduction": "mean", "ps_components": ["logits", "seq5"]})
    assert cfg.margin == 0.3 and cfg.ps_components == ("seq5", "logits")
    assert LossConfig.from_dict(cfg.to_dict()) == cfg
    assert LossConfig().lambda_ce == 1.15 and LossConfig().lambda_bh == 0.2
    assert (LossConfig().lambda_sr, LossConfig().lambda_ps, LossConfig().margin) == (0.5, 0.5, 0.1)
    with pytest.raises(ValueError, match="lambda_xx"):
        LossConfig.from_dict({"lambda_xx": 1.0})
    with pytest.raises(ValueError, match="seq7"):
        LossConfig(ps_components=("seq7",))


# --------------------------------------------------------------------------- numerics
def test_bf16_inputs_give_fp32_losses_close_to_fp32():
    s32, t32 = _toy_output(seed=5), _toy_output(seed=6)
    s16 = _out([x.bfloat16() for x in s32.seq], s32.feat.bfloat16(), s32.logits.bfloat16())
    t16 = _out([x.bfloat16() for x in t32.seq], t32.feat.bfloat16(), t32.logits.bfloat16())
    r32, r16 = torch.rand(8, 3, 4, 2), None
    r16 = r32.bfloat16()
    hr = torch.rand(8, 3, 4, 2)
    crit = TotalLoss()
    total32, p32 = crit(s32, TARGETS, restored=r32, hr=hr, teacher_out=t32)
    total16, p16 = crit(s16, TARGETS, restored=r16, hr=hr.bfloat16(), teacher_out=t16)
    assert total16.dtype == torch.float32
    assert total16.item() == pytest.approx(total32.item(), rel=2e-2)
    for k in p32:
        assert p16[k] == pytest.approx(p32[k], rel=3e-2, abs=3e-3), k
    # Computing from the bf16 values in fp32 is what the loss does (no bf16 arithmetic).
    s16f = _out([x.float() for x in s16.seq], s16.feat.float(), s16.logits.float())
    t16f = _out([x.float() for x in t16.seq], t16.feat.float(), t16.logits.float())
    total16f, _ = crit(s16f, TARGETS, restored=r16.float(), hr=hr.bfloat16().float(), teacher_out=t16f)
    assert total16.item() == pytest.approx(total16f.item(), rel=1e-6)


def test_losses_under_autocast_backward():
    lin = torch.nn.Linear(6, 4)
    x = torch.randn(8, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(x)
        assert y.dtype == torch.bfloat16
        out = _out([y] * 5, y, y)
        total, _ = IDLoss()(out, TARGETS)
    assert total.dtype == torch.float32
    total.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
