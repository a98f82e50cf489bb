"""Why VDSR-CA's G stays at its input: how much signal each gated block passes, and how much gradient gets back.

VDSR (Kim et al., CVPR 2016) is ``x + tail(body(head(x)))``; VDSR-CA (PS-HRNet Sec. III-B, Eqs. (2)-(4)) puts an
RCAN channel attention after the conv of each of its ``depth - 2`` body blocks. Each attention multiplies its input
by sigmoid gates; at PyTorch's default initialisation they sit near 0.5, so the body's signal — and the gradient
that comes back to the first convolution — shrinks geometrically with depth. If the residual is negligible beside
the input, G's output is its interpolated input, and L_SR (PS-HRNet Eq. (5)) has almost nothing to train.

:func:`signal_report` measures it on a batch, :func:`compare_inits` for several initialisations (``he``: ours and
the paper's; ``authors``: the release's normal(0, √(2/n)) on every conv, the attention's 1×1 ones included;
``identity``: tail zero, gates open). Definitions (RMS over the batch, all channels and pixels):

* block gain ``g_i = RMS(out_i) / RMS(in_i)`` of body block i (conv → CA → ReLU);
* body gain ``Π g_i = RMS(body output) / RMS(head output)``;
* residual ratio ``RMS(residual(x)) / RMS(x)``: how far G's output is from its input (0: G is the identity);
* head and tail gradients (G's first and last convolutions): ``‖∂L/∂W_head‖`` and ``‖∂L/∂W_tail‖`` for
  ``L = L_SR(G(x), target)`` (PS-HRNet Eq. (5), the mean L1 of :func:`lib.losses.sr_loss`), or, without a target,
  for a fixed random projection of G's output (the backward signal alone). The head's
  is what reaches the first convolution through every gate; the tail's is the size of G's first update where the
  head's is zero by construction (``identity``: the tail starts at zero, so nothing flows back through it until
  its first update).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from ...losses.sr_loss import sr_loss
from .vdsr import INITS, VDSR

__all__ = ["signal_report", "compare_inits", "SUMMARY"]

#: The per-G numbers of :func:`compare_inits`'s summary.
SUMMARY = ("body_gain", "residual_ratio", "head_grad_norm", "tail_grad_norm")


def _rms(t: torch.Tensor) -> float:
    return float(t.detach().float().pow(2).mean().sqrt())


def signal_report(sr: VDSR, x: torch.Tensor, target: torch.Tensor | None = None, *, seed: int = 0) -> dict:
    """Block gains, body gain, residual ratio and the gradient norms at G's first and last convolutions, of ``sr``
    on the batch ``x`` (see the module docstring). ``sr`` is left as it was (mode and gradients); nothing is trained.

    Returns:
        ``{"block_gains": [g_1 …], "body_gain": Π g_i, "residual_ratio", "head_grad_norm", "tail_grad_norm"}``.
    """
    if not isinstance(sr, VDSR):
        raise TypeError(f"signal_report: expected a VDSR / VDSR-CA module, found {type(sr).__name__}")
    gains: list[float] = []
    hooks = [blk.register_forward_hook(lambda m, inp, out: gains.append(_rms(out) / max(_rms(inp[0]), 1e-30)))
             for blk in sr.body]
    was_training = sr.training
    grads = [p.grad for p in sr.parameters()]
    sr.eval()
    try:
        for p in sr.parameters():
            p.grad = None
        head = sr.head(x)
        res = sr.tail(sr.body(head))
        y = x + res
        if target is not None:
            loss = sr_loss(y, target)  # L_SR, PS-HRNet Eq. (5)
        else:
            v = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype).to(y.device)
            loss = (y * v).mean()
        g_head, g_tail = torch.autograd.grad(loss, [sr.head[0].weight, sr.tail.weight])
    finally:
        for h in hooks:
            h.remove()
        for p, gr in zip(sr.parameters(), grads):
            p.grad = gr
        sr.train(was_training)
    body = 1.0
    for gi in gains:
        body *= gi
    return {"block_gains": gains, "body_gain": body, "residual_ratio": _rms(res) / max(_rms(x), 1e-30),
            "head_grad_norm": float(g_head.norm()), "tail_grad_norm": float(g_tail.norm())}


def compare_inits(make: Callable[[str], VDSR], x: torch.Tensor, target: torch.Tensor | None = None,
                  inits: Sequence[str] = INITS, seed: int = 0):
    """:func:`signal_report` for a fresh G of each initialisation: ``make(init) -> G`` (e.g. ``lambda i:
    build_sr(replace(cfg.sr, init=i))``), each built after ``torch.manual_seed(seed)`` so they differ by their
    initialisation only (the caller's random state is kept). Returns a long DataFrame ``init, block, gain`` (block 1..depth-2) and a per-init summary
    ``init, body_gain, residual_ratio, head_grad_norm, tail_grad_norm``."""
    import pandas as pd

    rows, summary = [], []
    for init in inits:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            g = make(init).to(x.device)
        rep = signal_report(g, x, target, seed=seed)
        rows += [{"init": init, "block": i + 1, "gain": g} for i, g in enumerate(rep["block_gains"])]
        summary.append({"init": init, **{k: rep[k] for k in SUMMARY}})
    return pd.DataFrame(rows), pd.DataFrame(summary)

