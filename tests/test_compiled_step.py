"""Issue #22 §2: a compiled training step computes what the eager one does (same loss on a fixed batch, same loss
after an optimiser step), the frozen teacher compiled too; skipped with a reason where torch.compile cannot run."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from lib.engine import OptimConfig, Trainer
from lib.engine.precision import resolve_precision
from lib.engine.runtime import RuntimeConfig


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


def _losses(compile, tmp_path) -> list[float]:
    torch.manual_seed(0)
    student, teacher = _Net(), _Net().eval()
    batch = {"img": torch.randn(6, 3, 16, 8), "label": torch.arange(6) % 5}

    def make_step(m):
        def step(b):
            with torch.no_grad():
                t = m["teacher"](b["img"])
            s = m["student"](b["img"])
            loss = nn.functional.cross_entropy(s, b["label"]) + (s - t).pow(2).mean()
            return loss, {"total": loss.detach()}, 6
        return step

    tr = Trainer(trainable={"student": student}, frozen={"teacher": teacher}, make_step=make_step, dataset=None,
                 sampler=None, optim=OptimConfig(epochs=1, lr=0.05), precision=resolve_precision(torch.device("cpu"),
                                                                                                 "fp32"),
                 run_dir=tmp_path, run_config={}, progress=False, compile=compile)
    out = []
    for _ in range(2):
        loss, _, _ = tr.step_fn(batch)
        tr.optimizer.zero_grad()
        loss.backward()
        tr.optimizer.step()
        out.append(float(loss.detach()))
    return out


@pytest.mark.slow
def test_compiled_step_gives_the_eager_loss(tmp_path):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile's CPU backend (inductor) needs a C compiler; none is installed")
    eager = _losses(False, tmp_path)
    try:
        compiled = _losses(True, tmp_path)
    except Exception as e:  # a backend that cannot build here is a missing backend, not a wrong result
        pytest.skip(f"torch.compile could not compile on this machine: {type(e).__name__}: {str(e)[:200]}")
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)
    assert eager[1] < eager[0]  # the step trains: the second loss reflects the first update in both


def test_compile_and_cudnn_settings_are_checked():
    assert RuntimeConfig(compile="reduce-overhead").compile == "reduce-overhead"
    with pytest.raises(ValueError, match="compile: expected one of .*'reduce-overhead'.*found 'fast'"):
        RuntimeConfig(compile="fast")
    with pytest.raises(ValueError, match="cudnn_benchmark: expected auto, true or false, found 'yes'"):
        RuntimeConfig(cudnn_benchmark="yes")
