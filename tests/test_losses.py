"""Tests of lib.losses and PS-HRNet's loss terms (lib.methods.pshrnet.losses): hand-checked values, subsets,
reductions, detachment, fp32 under bf16, and the terms composed by name with per-stage weights (L_ID, PS-HRNet
Eq. (10); L_TOTAL, PS-HRNet Eq. (12))."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lib.core import ConfigError, UnknownNameError, from_dict, to_dict
from lib.losses import (
    DEFAULT_PS_COMPONENTS,
    LOSS_TERMS,
    SEQ_NAMES,
    CrossEntropyLabelSmooth,
    LossComposer,
    PseudoSiameseLoss,
    SRLoss,
    TripletLoss,
    batch_hard_triplet_loss,
    check_terms,
    cross_entropy_label_smooth,
    pairwise_euclidean,
)
from lib.methods.pshrnet.losses import PSHRNetLossConfig, PSHRNetLossInputs
from lib.models import ReIDOutput

#: The paper's stage weights: phase 1 / the baseline L_ID (PS-HRNet Eq. (10)), phase 2 L_TOTAL (PS-HRNet Eq. (12)).
ID_WEIGHTS = {"ce": 1.15, "triplet": 0.2}
PAPER_WEIGHTS = {**ID_WEIGHTS, "sr": 0.5, "ps": 0.5}
#: The paper's loss settings: m = 0.1, ε = 0.1, triplet summed over Seq1..Seq5, C = {Seq1, Seq4, Seq5, ℓ_c}.
CFG = PSHRNetLossConfig()


def _floats(parts: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: v.item() for k, v in parts.items()}


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


def _eq10(out, targets, on=SEQ_NAMES, reduction="sum", margin=0.1, eps=0.1):
    """PS-HRNet Eq. (10) from the building blocks: ``(L_ID, L_CE, L_BH)`` with λ_CE = 1.15, λ_BH = 0.2 and L_BH the
    batch-hard triplet losses (PS-HRNet Eq. (7)) of the sequences ``on``, summed (paper) or averaged (authors' code)."""
    ce = cross_entropy_label_smooth(out.logits, targets, eps).item()
    tris = [batch_hard_triplet_loss(out.seq[int(n[3:]) - 1], targets, margin).item() for n in on]
    bh = sum(tris) if reduction == "sum" else sum(tris) / len(tris)
    return 1.15 * ce + 0.2 * bh, ce, bh


def test_id_loss_is_the_ce_and_triplet_terms_composed_as_eq10_and_reductions():
    out = _toy_output()
    expected, ce, bh = _eq10(out, TARGETS)
    # paper: 1.15 CE + 0.2 * sum_t triplet(Seq_t)
    total, parts = LossComposer(ID_WEIGHTS, CFG)(PSHRNetLossInputs(out, TARGETS))
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert set(parts) == {"ce", "tri_seq1", "tri_seq2", "tri_seq3", "tri_seq4", "tri_seq5", "bh", "total"}
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-6) and parts["bh"].item() == pytest.approx(bh, rel=1e-6)
    for i, s in enumerate(out.seq):
        tri = batch_hard_triplet_loss(s, TARGETS, 0.1).item()
        assert parts[f"tri_seq{i + 1}"].item() == pytest.approx(tri, rel=1e-6)
    # authors' code: the branch triplet losses averaged
    mean_crit = LossComposer(ID_WEIGHTS, PSHRNetLossConfig(triplet_reduction="mean"))
    mean_total, mean_parts = mean_crit(PSHRNetLossInputs(out, TARGETS))
    expected_mean, _, bh_mean = _eq10(out, TARGETS, reduction="mean")
    assert mean_parts["bh"].item() == pytest.approx(bh_mean, rel=1e-6) and bh_mean == pytest.approx(bh / 5)
    assert mean_total.item() == pytest.approx(expected_mean, rel=1e-6)
    # a subset of the sequences
    _, sub = LossComposer(ID_WEIGHTS, PSHRNetLossConfig(triplet_on=("seq5",)))(PSHRNetLossInputs(out, TARGETS))
    assert set(k for k in sub if k.startswith("tri_")) == {"tri_seq5"}
    assert sub["bh"].item() == pytest.approx(_eq10(out, TARGETS, on=("seq5",))[2], rel=1e-6)


def test_id_loss_all_for_single_embedding_baselines_and_bad_names():
    out = _toy_output()
    base = _out([out.seq[0]], out.feat, out.logits)
    total, parts = LossComposer(ID_WEIGHTS, PSHRNetLossConfig(triplet_on="all"))(PSHRNetLossInputs(base, TARGETS))
    assert [k for k in parts if k.startswith("tri_")] == ["tri_seq1"]
    assert total.item() == pytest.approx(_eq10(base, TARGETS, on=("seq1",))[0], rel=1e-6)
    with pytest.raises(KeyError, match="seq2"):
        LossComposer(ID_WEIGHTS, CFG)(PSHRNetLossInputs(base, TARGETS))  # default needs Seq1..Seq5
    with pytest.raises(ValueError, match="seq9"):
        PSHRNetLossConfig(triplet_on=("seq9",))


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
    s, t = _toy_output(seed=3, requires_grad=True), _toy_output(seed=4)
    restored, hr = torch.rand(8, 3, 4, 2), torch.rand(8, 3, 4, 2)
    crit = LossComposer(PAPER_WEIGHTS, CFG)
    assert set(crit.terms) == {"ce", "triplet", "sr", "ps"} and crit.weights == PAPER_WEIGHTS
    total, parts = crit(PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr, teacher_out=t))
    id_total, ce, bh = _eq10(s, TARGETS)
    sr = (restored - hr).abs().mean()
    ps, _ = PseudoSiameseLoss()(t, s)
    expected = id_total + 0.5 * sr.item() + 0.5 * ps.item()  # L_ID + λ_SR L_SR + λ_PS L_PS
    assert total.dtype == torch.float32 and total.requires_grad
    assert total.item() == pytest.approx(expected, rel=1e-6)
    # parts: detached float32 tensors (no host synchronisation per step)
    assert all(torch.is_tensor(v) and not v.requires_grad and v.dtype == torch.float32 for v in parts.values())
    assert parts["total"].item() == pytest.approx(expected, rel=1e-6)
    assert set(parts) == {"ce", "tri_seq1", "tri_seq2", "tri_seq3", "tri_seq4", "tri_seq5", "bh", "sr", "ps", "ps_seq1",
                          "ps_seq4", "ps_seq5", "ps_logits", "total"}
    floats = _floats(parts)
    assert floats["ce"] == pytest.approx(ce, rel=1e-6) and floats["bh"] == pytest.approx(bh, rel=1e-6)
    assert floats["sr"] == pytest.approx(sr.item()) and floats["ps"] == pytest.approx(ps.item())
    # Phase 1: L_ID only (the terms a stage names; no SR or teacher inputs needed).
    total1, parts1 = LossComposer(ID_WEIGHTS, CFG)(PSHRNetLossInputs(s, TARGETS))
    assert total1.item() == pytest.approx(id_total, rel=1e-6)
    assert "sr" not in parts1 and "ps" not in parts1
    # a term whose inputs the stage does not provide is an error naming them
    with pytest.raises(ValueError, match="loss term 'sr' needs hr"):
        crit(PSHRNetLossInputs(s, TARGETS, restored=restored))
    with pytest.raises(ValueError, match="loss term 'ps' needs teacher_out"):
        crit(PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr))


def test_weights_select_terms_by_name():
    s, t = _toy_output(seed=3), _toy_output(seed=4)
    restored, hr = torch.rand(8, 3, 4, 2), torch.rand(8, 3, 4, 2)
    x = PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr, teacher_out=t)
    full, parts = LossComposer(PAPER_WEIGHTS, CFG)(x)
    # weight 0 removes a term (Table II: ID, SR+ID); it is not even built
    no_ps = LossComposer({**PAPER_WEIGHTS, "ps": 0.0}, CFG)
    assert set(no_ps.terms) == {"ce", "triplet", "sr"} and "ps=" not in repr(no_ps)
    total, p = no_ps(PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr))  # no teacher needed
    assert "ps" not in p and total.item() == pytest.approx(full.item() - 0.5 * parts["ps"].item(), rel=1e-6)
    total, p = LossComposer({**PAPER_WEIGHTS, "sr": 0.0, "ps": 0.0}, CFG)(PSHRNetLossInputs(s, TARGETS))
    assert set(p) == {"ce", "tri_seq1", "tri_seq2", "tri_seq3", "tri_seq4", "tri_seq5", "bh", "total"}
    # other weights scale their term
    total, _ = LossComposer({**PAPER_WEIGHTS, "ps": 2.0}, CFG)(x)
    assert total.item() == pytest.approx(full.item() + 1.5 * parts["ps"].item(), rel=1e-6)
    assert LOSS_TERMS.names() == ["ce", "ps", "raft", "sr", "swa_cls", "swa_tri", "triplet"]
    with pytest.raises(UnknownNameError, match=r"unknown loss term 'focal'; registered: ce, ps, raft, sr, swa_cls, swa_tri, triplet"):
        LossComposer({"ce": 1.0, "focal": 1.0}, CFG)
    with pytest.raises(ValueError, match="every weight is 0"):
        LossComposer({"ce": 0.0, "triplet": 0}, CFG)
    # a method's configuration names only its own terms: the error names the term, the allowed ones and the equation
    check_terms(ID_WEIGHTS, ("ce", "triplet", "sr", "ps"), "PS-HRNet", "Eq. (12)")
    with pytest.raises(ValueError, match=r"'raft' is not one of PS-HRNet's terms \('ce', 'triplet'\) "
                                         r"\(PS-HRNet Eq. \(12\)\)"):
        check_terms({"ce": 1.0, "raft": 0.1}, ("ce", "triplet"), "PS-HRNet", "Eq. (12)")


def test_loss_terms_use_their_config():
    s, t = _toy_output(seed=3), _toy_output(seed=4)
    cfg = PSHRNetLossConfig(margin=0.3, label_smooth=0.0, triplet_on=("seq5",), triplet_reduction="mean",
                     ps_components=("logits",), sr_reduction="sum")
    restored, hr = torch.rand(8, 3, 4, 2), torch.rand(8, 3, 4, 2)
    _, parts = LossComposer({"ce": 1.0, "triplet": 1.0, "sr": 1.0, "ps": 1.0}, cfg)(
        PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr, teacher_out=t))
    assert parts["ce"].item() == pytest.approx(F.cross_entropy(s.logits, TARGETS).item(), rel=1e-6)
    assert [k for k in parts if k.startswith("tri_")] == ["tri_seq5"]
    assert parts["bh"].item() == pytest.approx(batch_hard_triplet_loss(s.seq[4], TARGETS, 0.3).item(), rel=1e-6)
    assert parts["sr"].item() == pytest.approx((restored - hr).abs().sum().item(), rel=1e-5)
    assert {k for k in parts if k.startswith("ps_")} == {"ps_logits"}
    # 'all': every entry of the output's seq (single-embedding baselines)
    base = _out([s.seq[0]], s.feat, s.logits)
    _, parts = LossComposer(ID_WEIGHTS, PSHRNetLossConfig(triplet_on=("all",)))(PSHRNetLossInputs(base, TARGETS))
    assert [k for k in parts if k.startswith("tri_")] == ["tri_seq1"]
    with pytest.raises(KeyError, match="seq2"):
        LossComposer(ID_WEIGHTS, CFG)(PSHRNetLossInputs(base, TARGETS))  # default needs Seq1..Seq5


def test_hr_mask_restricts_sr_and_ps_to_samples_with_an_hr_original():
    s, t = _toy_output(seed=3), _toy_output(seed=4)
    restored, hr = torch.rand(8, 3, 4, 2), torch.rand(8, 3, 4, 2)
    mask = torch.tensor([True, False, True, True, False, True, True, True])
    sub_t = _out([x[mask] for x in t.seq], t.feat[mask], t.logits[mask])
    crit = LossComposer(PAPER_WEIGHTS, CFG)
    _, parts = crit(PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr[mask], teacher_out=sub_t, hr_mask=mask))
    sub_s = _out([x[mask] for x in s.seq], s.feat[mask], s.logits[mask])
    assert parts["sr"].item() == pytest.approx((restored[mask] - hr[mask]).abs().mean().item(), rel=1e-6)
    assert parts["ps"].item() == pytest.approx(PseudoSiameseLoss()(sub_t, sub_s)[0].item(), rel=1e-6)
    id_total, ce, _ = _eq10(s, TARGETS)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-6)  # every sample
    # a batch without any HR original: the identity terms only
    none = torch.zeros(8, dtype=torch.bool)
    total, parts = crit(PSHRNetLossInputs(s, TARGETS, restored=restored, hr=hr[none], teacher_out=None, hr_mask=none))
    assert "sr" not in parts and "ps" not in parts
    assert total.item() == pytest.approx(id_total, rel=1e-6)


def test_loss_config_from_dict_and_to_dict():
    cfg = from_dict(PSHRNetLossConfig,
                    {"margin": 0.3, "triplet_reduction": "mean", "ps_components": ["logits", "seq5"]})
    assert cfg.margin == 0.3 and cfg.ps_components == ("seq5", "logits")
    assert from_dict(PSHRNetLossConfig, to_dict(cfg)) == cfg
    assert CFG.margin == 0.1 and CFG.label_smooth == 0.1
    assert CFG.ps_components == DEFAULT_PS_COMPONENTS and CFG.triplet_on == tuple(f"seq{i}" for i in range(1, 6))
    # the λs are the stages' loss weights now (paper: Eq. (10) and (12))
    from lib.methods import load_config

    paper = load_config("configs/pshrnet/paper.yaml")
    assert paper.phase1.losses == ID_WEIGHTS == paper.baseline.losses and paper.phase2.losses == PAPER_WEIGHTS
    assert paper.loss == CFG
    with pytest.raises(ConfigError, match="unknown key 'lambda_xx'"):
        from_dict(PSHRNetLossConfig, {"lambda_xx": 1.0})
    with pytest.raises(ValueError, match="seq7"):
        PSHRNetLossConfig(ps_components=("seq7",))
    with pytest.raises(ValueError, match="triplet_on"):
        PSHRNetLossConfig(triplet_on=("all", "seq1"))
    with pytest.raises(ValueError, match="triplet_on"):
        PSHRNetLossConfig(triplet_on=("logits",))
    assert PSHRNetLossConfig(triplet_on="all").triplet_on == ("all",)


# --------------------------------------------------------------------------- numerics
def test_bf16_inputs_give_fp32_losses_close_to_fp32():
    s32, t32 = _toy_output(seed=5), _toy_output(seed=6)
    s16 = _out([x.bfloat16() for x in s32.seq], s32.feat.bfloat16(), s32.logits.bfloat16())
    t16 = _out([x.bfloat16() for x in t32.seq], t32.feat.bfloat16(), t32.logits.bfloat16())
    r32, r16 = torch.rand(8, 3, 4, 2), None
    r16 = r32.bfloat16()
    hr = torch.rand(8, 3, 4, 2)
    crit = LossComposer(PAPER_WEIGHTS, CFG)
    total32, p32 = crit(PSHRNetLossInputs(s32, TARGETS, restored=r32, hr=hr, teacher_out=t32))
    total16, p16 = crit(PSHRNetLossInputs(s16, TARGETS, restored=r16, hr=hr.bfloat16(), teacher_out=t16))
    assert total16.dtype == torch.float32 and all(v.dtype == torch.float32 for v in p16.values())
    assert total16.item() == pytest.approx(total32.item(), rel=2e-2)
    p32, p16 = _floats(p32), _floats(p16)
    assert set(p16) == set(p32)
    for k in p32:
        assert p16[k] == pytest.approx(p32[k], rel=3e-2, abs=3e-3), k
    # Computing from the bf16 values in fp32 is what the loss does (no bf16 arithmetic).
    s16f = _out([x.float() for x in s16.seq], s16.feat.float(), s16.logits.float())
    t16f = _out([x.float() for x in t16.seq], t16.feat.float(), t16.logits.float())
    total16f, _ = crit(PSHRNetLossInputs(s16f, TARGETS, restored=r16.float(), hr=hr.bfloat16().float(),
                                         teacher_out=t16f))
    assert total16.item() == pytest.approx(total16f.item(), rel=1e-6)


def test_losses_under_autocast_backward():
    lin = torch.nn.Linear(6, 4)
    x = torch.randn(8, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(x)
        assert y.dtype == torch.bfloat16
        out = _out([y] * 5, y, y)
        total, _ = LossComposer(ID_WEIGHTS, CFG)(PSHRNetLossInputs(out, TARGETS))
        expected = _eq10(out, TARGETS)[0]  # PS-HRNet Eq. (10) from the building blocks, under the same autocast
    assert total.dtype == torch.float32
    assert total.item() == pytest.approx(expected, rel=1e-6)
    total.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


def test_triplet_distances_stay_float32_under_bf16_autocast():
    # ReLU-like features with a large common part: |a|² + |b|² − 2a·b cancels, and a bf16 Gram matrix (what the
    # autocast would compute) is off by more than the margin; the loss must not depend on the autocast.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 512, generator=g) * 2 + 0.3 * torch.rand(12, 512, generator=g)
    labels = torch.arange(6).repeat_interleave(2)
    d32 = pairwise_euclidean(x)
    l32 = batch_hard_triplet_loss(x, labels, margin=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (x @ x.t()).dtype == torch.bfloat16  # what the autocast does to a plain matmul
        d_ac = pairwise_euclidean(x)
        l_ac = batch_hard_triplet_loss(x, labels, margin=0.1)
    assert d_ac.dtype == torch.float32
    assert torch.allclose(d_ac, d32, atol=1e-4)
    assert l_ac.item() == pytest.approx(l32.item(), abs=1e-5)
