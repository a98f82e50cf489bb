"""Tables III–VI on the experiment core: Solo SR and restoration quality, SR modules under a common base, pooling and
heads (HR re-ID), options that leave existing identities alone, gradient clipping."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from lib.core.tracking import ConfigReader, unwrap
from lib.engine import OptimConfig, Trainer, resolve_precision
from lib.methods import load_config
from lib.methods.pshrnet import PSHRNetConfig
from lib.models import build_sr
from lib.results import load_table_spec
from lib.results.tables import build_table
from lib.workflow import run_table

FAST = {"phase1.epochs": 1, "phase2.epochs": 1, "solo_sr.epochs": 1, "runtime.max_steps_per_epoch": 2,
        "test.num_repeats": 1}


def _params(root: Path, profile: str, **extra) -> dict:
    mlr = root / "outputs" / profile / "mlr"
    mlr.parent.mkdir(parents=True, exist_ok=True)
    if not mlr.exists():
        os.symlink(root / "out" / "mlr", mlr)
    return {"PROFILE": profile, "OUTPUT_ROOT": str(root / "outputs"), "DATASETS": ["synthetic"],
            "CONFIG": "configs/pshrnet/tiny.yaml", "SEED": 0, "SPLITS": [0], "OVERRIDES": FAST, **extra}


def test_neutral_options_stay_out_of_identities_until_set():
    cfg = PSHRNetConfig()
    r = ConfigReader(cfg, hidden=("test", "runtime"))
    unwrap(r.phase2)
    build_sr(r.sr)
    assert "grad_clip" not in json.dumps(r.reads) and "sr.init" not in r.reads  # the runs made before them stay valid
    cfg2 = load_config("configs/pshrnet/paper.yaml", {"phase2.grad_clip": 0.4, "sr.init": "identity"})
    r2 = ConfigReader(cfg2, hidden=("test", "runtime"))
    unwrap(r2.phase2)
    build_sr(r2.sr)
    assert r2.reads["phase2"]["grad_clip"] == 0.4 and r2.reads["sr.init"] == "identity"
    with pytest.raises(ValueError, match="grad_clip"):
        OptimConfig(grad_clip=-1.0)
    # per-module weight decay (Adam's coupled L2 would zero G's weights): neutral when empty, per group when set
    assert "module_weight_decay" not in json.dumps(r.reads)
    from lib.engine.optim import module_param_groups

    groups = module_param_groups({"student": nn.Linear(2, 2), "sr": nn.Linear(2, 2)},
                                 OptimConfig(weight_decay=5e-4, module_weight_decay={"sr": 0.0}))
    assert [(g["name"], g["weight_decay"]) for g in groups] == [("student", 5e-4), ("sr", 0.0)]
    with pytest.raises(ValueError, match="module_weight_decay: \\['gan'\\] are not trained"):
        module_param_groups({"sr": nn.Linear(2, 2)}, OptimConfig(module_weight_decay={"gan": 0.0}))
    with pytest.raises(ValueError, match="init"):
        load_config("configs/pshrnet/tiny.yaml", {"sr.init": "zeros"})


def test_gradient_clipping_bounds_every_step(tmp_path):
    class Step:
        def __init__(self, m):
            self.m = m

        def __call__(self, batch):
            loss = (self.m(batch["x"]) * 1e4).pow(2).mean()  # huge gradients
            return loss, {"l": loss.detach()}, batch["x"].shape[0]

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"x": torch.full((4,), float(i + 1))}

    class Sampler:
        batch_size = 4

        def __iter__(self):
            return iter(range(8))

        def __len__(self):
            return 8

    def train(clip: float) -> float:
        torch.manual_seed(0)
        m = nn.Linear(4, 2)
        before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
        optim = OptimConfig(optimizer="sgd", epochs=1, lr=1.0, momentum=0.0, weight_decay=0.0, grad_clip=clip)
        Trainer(trainable={"m": m}, step_fn=Step(m), dataset=Data(), sampler=Sampler(), optim=optim,
                precision=resolve_precision(torch.device("cpu"), "fp32", False), run_dir=tmp_path / f"c{clip}", run_config={},
                progress=False, max_steps_per_epoch=1, max_loss=1e30).fit()
        return float((torch.cat([p.detach().flatten() for p in m.parameters()]) - before).norm())

    assert train(0.01) == pytest.approx(0.01, rel=1e-4)  # one SGD step at lr 1 moves exactly the clipped norm
    assert train(0.0) > 1.0


@pytest.mark.slow
def test_table3_solo_sr_bicubic_and_restoration_numbers(tiny):
    root, _ = tiny
    params = _params(root, "t3")
    exp, spec, rows = run_table(params, "table3", progress=False)
    runs = exp.runs
    bic = runs[("bicubic", "synthetic", 0)]["solo_sr"]
    solo = runs[("solo_sr", "synthetic", 0)]["solo_sr"]
    assert bic.history == [] and not (bic.run_dir / "history.json").exists()  # nothing to learn: evaluated only
    assert "solo_sr" not in bic.identity["config"]  # ... so Solo SR's training recipe is not part of the bicubic row
    assert len(solo.history) == 1 and "loss_sr" in solo.history[0]
    # Solo SR shares phase 1 with the students; its Rank-1 is the teacher's on its restorations
    assert solo.identity["deps"] == {"phase1": runs[("sr_id", "synthetic", 0)]["phase1"].key}
    for (v, _, _), r in runs.items():
        stage = "solo_sr" if v in ("bicubic", "solo_sr") else "phase2"
        m = r[stage].metrics["lr"]
        assert {"rank1", "psnr", "ssim", "psnr_r2", "ssim_r4"} <= set(m) and 10 < m["psnr"] < 80 and 0 < m["ssim"] <= 1
    rec = json.loads((root / "outputs" / "t3" / "results" / "pshrnet" / "synthetic" / "solo_sr.json").read_text())
    agg = rec["outputs"]["solo_sr"]["aggregate"]
    assert agg["psnr"]["mean"] == pytest.approx(solo.metrics["lr"]["psnr"])
    long, md = build_table(spec, root / "outputs" / "t3", "t3", rows)
    psnr = long[(long.source == "reproduced") & (long.metric == "psnr") & (long.row == "Solo SR")].value.item()
    assert psnr == pytest.approx(agg["psnr"]["mean"])  # dB, not ×100
    solo_r1 = long[(long.source == "reproduced") & (long.metric == "rank1") & (long.row == "Solo SR")]
    assert solo_r1.delta.isna().all()  # the paper's printed 0.04 is not a target (no_delta)
    assert "PSNR (dB)" in md and "Y channel of YCbCr" in md and "teacher" in md

    from lib.results.restoration_report import restoration_report
    from lib.workflow import output_dir

    fake = type("R", (), {"experiment": exp, "rows": rows, "out": output_dir(params)})()
    q = restoration_report(params, fake, num_examples=1)
    assert set(q.per_rate.r) >= {2, 3, 4, "all"} and set(q.solo_vs_bicubic.r) >= {2, 3, 4}
    names = {p.name for p in q.files}
    assert {"fig5.png", "fig5_synthetic.png", "table3_per_rate.md", "table3_quality_vs_rate.png"} <= names
    assert len(q.fig5.axes) == 3 * 6  # r = 2, 3, 4 × (LR, 4 rows, HR)


@pytest.mark.slow
def test_table4_keeps_the_profiles_backbone_and_states_the_papers(tiny):
    root, _ = tiny
    params = _params(root, "t4", VARIANTS=["t4_bicubic", "t4_srcnn"])
    exp, spec, rows = run_table(params, "table4", progress=False)
    for v in ("t4_bicubic", "t4_srcnn"):
        cfg = exp.configs[v]
        assert (cfg.model.head, cfg.model.backbone, cfg.phase2.losses["ps"]) == ("bnneck", "mobilenet_v2", 0.0)
        diffs = exp.summaries[(v, "synthetic")]["differences"]
        assert any(d.startswith("model.backbone mobilenet_v2 (paper resnet50)") for d in diffs)
        assert not any(d.startswith(("model.head", "sr.name", "phase2.losses")) for d in diffs)
    r = exp.runs
    assert r[("t4_bicubic", "synthetic", 0)]["phase1"].key == r[("t4_srcnn", "synthetic", 0)]["phase1"].key
    assert r[("t4_srcnn", "synthetic", 0)]["phase2"].modules["sr"].__class__.__name__ == "SRCNN"
    _, md = build_table(spec, root / "outputs" / "t4", "t4", rows)
    assert "SRCNN + BNNeck" in md and "Bicubic + BNNeck" in md


@pytest.mark.slow
def test_tables5_and_6_test_hr_queries_and_share_the_default_teacher(tiny):
    root, _ = tiny
    params = _params(root, "t56", VARIANTS=["pool_max", "default"])
    exp5, spec5, rows5 = run_table(params, "table5", progress=False)
    assert exp5.configs["pool_max"].model.pooling == "max"
    exp6, _, _ = run_table({**params, "VARIANTS": ["classifier", "default"]}, "table6", progress=False)
    assert exp6.runs[("default", "synthetic", 0)]["phase1"].run_dir == exp5.runs[("default", "synthetic", 0)]["phase1"].run_dir
    head = exp6.runs[("classifier", "synthetic", 0)]["phase1"].modules["model"]
    assert type(head).__name__ == "ResNet50ReID" and head.neck == "none"  # MobileNetV2's own pooled classifier
    for exp, v in ((exp5, "pool_max"), (exp6, "classifier")):
        assert "rank1" in exp.summaries[(v, "synthetic")]["outputs"]["teacher_hr"]["aggregate"]
    _, md = build_table(spec5, root / "outputs" / "t56", "t56", rows5)
    assert "HR query" in md.replace("HR queries", "HR query") and "AMP" in md
    assert load_table_spec("table5").hr_queries and not load_table_spec("table3").hr_queries
