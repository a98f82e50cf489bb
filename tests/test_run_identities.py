"""Run identities are pinned (issue #23, constraint): a change that would make users retrain their finished runs
shows here. The keys are those of every stage of the tiny profile, both methods, on the embedded synthetic set at
fp32 (the resolved precision is part of an identity; fp32 makes the pin the same on every machine).

If this test fails, the change alters run identities: every user's finished runs of the affected stages would train
again. Do that only when an issue asks for it, say so in the change, and update the keys here."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.core.runs import RunResult, build_stage, identity_key
from lib.methods import METHODS, load_config
from lib.models.weights import pretrained_weights_skipped

#: identity_key of each stage (``tiny`` fixture data, ``configs/<method>/tiny.yaml``, ``runtime.precision: fp32``);
#: the same at 32aba6f (before the tensor data path) as after it.
PINNED = {
    "pshrnet/phase1": "b21b08894a28",
    "pshrnet/phase2": "5eab223d4bf4",
    "pshrnet/baseline": "75f072498d14",
    "pshrnet/solo_sr": "2f3c897ee3bf",
    "ftwa/train": "9943124cc04a",
}


def _keys(ds, overrides: dict) -> dict[str, str]:
    out = {}
    for method, path in (("pshrnet", "configs/pshrnet/tiny.yaml"), ("ftwa", "configs/ftwa/tiny.yaml")):
        m, cfg, built = METHODS.get(method), load_config(path, {"runtime.precision": "fp32"} | overrides), {}

        def build(s: str) -> RunResult:
            if s not in built:
                st = m.stages[s]
                deps = {d: build(d) for d in st.deps}
                with pretrained_weights_skipped():
                    plan, ident = build_stage(st, method=method, cfg=cfg, ds=ds, split=0, deps=deps, progress=False)
                built[s] = RunResult(s, plan.modules, {}, [], Path(s), ident, identity_key(ident))
            return built[s]

        out |= {f"{method}/{s}": build(s).key for s in m.stages}
    return out


@pytest.mark.parametrize("overrides", [{}, {"data.pipeline": "pil", "runtime.image_cache": True,
                                            "runtime.compile": False, "runtime.cudnn_benchmark": False}])
def test_the_tiny_profiles_run_identities_are_pinned(tiny, overrides):
    """Execution settings and options at their defaults leave every identity as it was."""
    _, ds = tiny
    assert _keys(ds, overrides) == PINNED


def test_a_setting_that_changes_the_computation_changes_the_identity(tiny):
    _, ds = tiny
    keys = _keys(ds, {"data.pipeline": "tensor"})
    assert all(keys[k] != PINNED[k] for k in PINNED)  # every stage reads its data through the pipeline
