"""The VDSR-CA signal diagnostic (issue #20 §3) on a G small enough to compute its gains by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lib.models.sr.diagnostics import compare_inits, signal_report
from lib.models.sr.vdsr import VDSR
from lib.models.sr.vdsr_ca import VDSRCA


def _delta_g(depth: int, a: list[float], gate_bias: float) -> VDSRCA:
    """A one-channel VDSR-CA whose 3×3 convs multiply by a[i] (centre tap only: exact at the borders too) and whose
    attention gates are the constant sigmoid(gate_bias) (W_D, W_U zero)."""
    g = VDSRCA(depth=depth, width=1, reduction=1, in_channels=1)
    convs = [g.head[0], *[blk[0] for blk in g.body], g.tail]
    with torch.no_grad():
        for conv, ai in zip(convs, a):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = ai
        for blk in g.body:
            ca = blk[1]
            ca.down.weight.zero_(), ca.down.bias.zero_(), ca.up.weight.zero_(), ca.up.bias.fill_(gate_bias)
    return g


def test_gains_of_a_hand_built_g():
    a = [2.0, 3.0, 0.5, 0.25]  # head, two body blocks, tail
    g = _delta_g(4, a, gate_bias=0.0)  # gates at sigmoid(0) = 1/2
    x = torch.full((2, 1, 12, 6), 0.8)  # positive: every ReLU passes
    rep = signal_report(g, x)
    assert rep["block_gains"] == pytest.approx([3.0 * 0.5, 0.5 * 0.5])
    assert rep["body_gain"] == pytest.approx(1.5 * 0.25)
    # residual = tail(body(head(x))) = 0.25 · (0.25 · (1.5 · (2 · 0.8))) → ratio to x
    assert rep["residual_ratio"] == pytest.approx(0.25 * 0.25 * 1.5 * 2.0)
    # the gradient reaching the head scales with the gates downstream: open them (s → 1) and it grows by 2 · 2
    open_gates = signal_report(_delta_g(4, a, gate_bias=30.0), x)
    assert open_gates["head_grad_norm"] / rep["head_grad_norm"] == pytest.approx(4.0, rel=1e-5)


def test_half_open_gates_shrink_the_body_geometrically():
    """Depth d with unit convs: each gate halves the signal, so the body passes 0.5^(d-2)."""
    for depth in (3, 6, 10):
        rep = signal_report(_delta_g(depth, [1.0] * depth, gate_bias=0.0), torch.full((1, 1, 11, 11), 1.0))
        assert rep["body_gain"] == pytest.approx(0.5 ** (depth - 2))
        assert rep["residual_ratio"] == pytest.approx(0.5 ** (depth - 2))


def test_the_target_loss_gradient_matches_autograd_by_hand():
    g = _delta_g(3, [1.0, 1.0, 1.0], gate_bias=0.0)
    x = torch.full((1, 1, 11, 11), 1.0)
    target = torch.zeros_like(x)
    # y = x + ½·(head conv of x) = 1.5 everywhere, L = L_SR = mean|y − 0| (Eq. (5)): ∂L/∂y = 1/N, so ∂L/∂w_tap =
    # mean(½ · x shifted by the tap), x shifted = 1 inside and 0 in the zero padding: 121/121 pixels for the centre
    # tap, 110 for an edge tap, 100 for a corner tap of the 11 × 11 image
    taps = [121] + [110] * 4 + [100] * 4
    want = math.sqrt(sum((0.5 * n / 121) ** 2 for n in taps))
    assert signal_report(g, x, target)["head_grad_norm"] == pytest.approx(want, rel=1e-5)


def test_signal_report_leaves_g_as_it_was():
    g = VDSRCA(depth=5, width=8)
    g.train()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    signal_report(g, torch.randn(2, 3, 16, 8))
    assert g.training and all(p.grad is None for p in g.parameters())
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    with pytest.raises(TypeError, match="VDSR"):
        signal_report(torch.nn.Identity(), torch.randn(1, 3, 8, 8))


def test_authors_init_redraws_the_attention_convs_and_identity_opens_the_gates():
    torch.manual_seed(0)
    frame, summary = compare_inits(lambda i: VDSRCA(depth=20, width=64, init=i), torch.randn(2, 3, 32, 16))
    s = summary.set_index("init")
    assert set(frame["init"]) == {"he", "authors", "identity"} and len(frame) == 3 * 18
    assert s.loc["identity", "residual_ratio"] == 0.0  # tail zero: G is its input
    assert s.loc["identity", "body_gain"] > 100 * s.loc["he", "body_gain"]  # open gates pass the signal
    assert s.loc["identity", "head_grad_norm"] == 0.0  # nothing flows back through a zero tail ...
    assert s.loc["identity", "tail_grad_norm"] > 100 * s.loc["he", "tail_grad_norm"]  # ... but its first update is big
    from lib.results.sr_signal_report import conclusion

    text = conclusion(summary)
    assert f"{s.loc['he', 'body_gain']:.2g}" in text and "paper's initialisation" in text
    authors = VDSRCA(depth=4, width=64, init="authors")
    ca = authors.body[0][1]
    assert ca.down.weight.std().item() == pytest.approx(math.sqrt(2 / 16), rel=0.2)  # n = 1·1·16 (64 // 4)
    assert VDSR(depth=4, init="authors").tail.weight.std().item() == pytest.approx(math.sqrt(2 / 27), rel=0.3)
