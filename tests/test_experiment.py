"""The experiment core: identities from what a stage reads, shared stages, variants, tables, DDP, typed params."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lib.core.tracking import ConfigReader, LateConfigRead, unwrap
from lib.engine import NonFiniteLossError, OptimConfig, Trainer, resolve_precision
from lib.engine.distributed import ShardedBatchSampler
from lib.losses import LOSS_TERMS, LossComposer
from lib.methods import METHODS, differences, load_config, run_variant
from lib.methods.pshrnet.losses import PSHRNetLossConfig, PSHRNetLossInputs
from lib.models import ReIDOutput
from lib.results import load_table_spec, table_names
from lib.workflow import run_table, validate_params

REPO = Path(__file__).resolve().parents[1]
FAST = {"phase1.epochs": 1, "phase2.epochs": 1, "baseline.epochs": 1, "runtime.max_steps_per_epoch": 2,
        "test.num_repeats": 1}


def _cfg(**over):
    return load_config("configs/pshrnet/tiny.yaml", {**FAST, **over})


@pytest.mark.slow
def test_identity_is_what_a_stage_reads(tiny, tmp_path):
    _, ds = tiny
    m = METHODS.get("pshrnet")
    _, a = run_variant(m, _cfg(), ds=ds, split=0, root=tmp_path, outputs=["pshrnet"], progress=False)
    # a phase-2-only change (and a new loss hyper-parameter only L_PS reads) leaves the teacher's identity alone
    _, b = run_variant(m, _cfg(**{"phase2.lr": 0.001, "loss.ps_components": ["seq5"]}), ds=ds, split=0, root=tmp_path,
                       outputs=["pshrnet"], progress=False)
    assert a["phase1"].key == b["phase1"].key and a["phase1"].run_dir == b["phase1"].run_dir
    assert a["phase2"].key != b["phase2"].key
    reads = a["phase1"].identity["config"]
    assert "loss.ps_components" not in reads and "sr.depth" not in reads and "data.rates" not in reads
    assert "loss.ps_components" in a["phase2"].identity["config"] and "model.backbone" in reads
    # a setting both read changes both
    _, c = run_variant(m, _cfg(**{"data.pad": 4}), ds=ds, split=0, root=tmp_path, outputs=["pshrnet"], progress=False)
    assert c["phase1"].key != a["phase1"].key and c["phase2"].key != a["phase2"].key
    # phase 2 names its teacher: the dependency is part of its identity
    assert a["phase2"].identity["deps"] == {"phase1": a["phase1"].key}


@pytest.mark.slow
def test_evaluation_change_reevaluates_without_retraining(tiny, tmp_path):
    _, ds = tiny
    m = METHODS.get("pshrnet")
    _, a = run_variant(m, _cfg(), ds=ds, split=0, root=tmp_path, outputs=["teacher_lr"], progress=False)
    model = a["phase1"].run_dir / "model.pt"
    stamp = model.stat().st_mtime_ns
    _, b = run_variant(m, _cfg(**{"test.flip": False, "test.feature": "feat"}), ds=ds, split=0, root=tmp_path,
                       outputs=["teacher_lr"], progress=False)
    assert b["phase1"].run_dir == a["phase1"].run_dir and model.stat().st_mtime_ns == stamp
    rec = json.loads((b["phase1"].run_dir / "metrics.json").read_text())
    assert rec["eval"] == {"flip": False, "num_repeats": 1, "feature": "feat"}
    assert b["phase1"].history == []  # reused, not retrained


def test_late_config_read_is_refused():
    cfg = _cfg()
    r = ConfigReader(cfg, hidden=("runtime",))
    assert r.data.height == 64 and r.data.size == (64, 32)  # properties read through the reader
    assert set(r.reads) == {"data.height", "data.width"}
    unwrap(r.phase1)
    r.freeze()
    assert r.phase1.lr == cfg.phase1.lr  # inside a section read whole: allowed
    with pytest.raises(LateConfigRead, match="model.backbone"):
        r.model.backbone
    with pytest.raises(AttributeError, match="not part of a stage's identity"):
        r.runtime


@pytest.mark.slow
def test_table7_variants_share_one_teacher(tiny):
    root, _ = tiny
    params = {"PROFILE": "t7", "OUTPUT_ROOT": str(root / "outputs"), "DATASETS": ["synthetic"],
              "CONFIG": "configs/pshrnet/tiny.yaml", "SEED": 0, "SPLITS": [0], "OVERRIDES": FAST}
    mlr = root / "outputs" / "t7" / "mlr"
    mlr.parent.mkdir(parents=True, exist_ok=True)
    if not mlr.exists():
        os.symlink(root / "out" / "mlr", mlr)
    exp, spec, rows = run_table(params, "table7", progress=False)
    teachers = {runs["phase1"].run_dir for runs in exp.runs.values()}
    students = {runs["phase2"].run_dir for runs in exp.runs.values()}
    assert len(exp.runs) == 3 and len(teachers) == 1 and len(students) == 3
    stages = root / "outputs" / "t7" / "runs" / "pshrnet" / "synthetic" / "stages" / "split0"
    assert len(list(stages.glob("phase1-*"))) == 1
    link = stages.parents[1] / "variants" / "seq5_lc" / "split0" / "phase1"
    assert link.is_symlink() and link.resolve() == next(iter(teachers)).resolve()
    # Table II's full method is Table VII's chosen row: the same identity, the same folder
    exp2, _, _ = run_table({**params, "VARIANTS": ["sr_id_ps"]}, "table2", progress=False)
    assert exp2.runs[("sr_id_ps", "synthetic", 0)]["phase2"].run_dir in students
    summary = json.loads((root / "outputs" / "t7" / "results" / "pshrnet" / "synthetic" / "seq5_lc.json").read_text())
    assert summary["overrides"] == {"loss.ps_components": ["seq5", "logits"]} and "pshrnet" in summary["outputs"]


def test_variant_differences_are_against_the_rows_own_paper_setting():
    m = METHODS.get("pshrnet")
    ov = {"phase2.losses.sr": 0.0, "phase2.losses.ps": 0.0}
    diffs = differences(m, load_config("configs/pshrnet/cpu.yaml", ov), load_config(m.paper_config, ov))
    assert not any(d.startswith("phase2.losses") for d in diffs)  # the paper's ID row has no L_SR/L_PS either
    assert any(d.startswith("model.backbone mobilenet_v2") for d in diffs)
    assert not any(d.startswith(("runtime", "baseline")) for d in diffs)
    assert differences(m, load_config(m.paper_config), load_config(m.paper_config)) == []


def test_table_specs_load_and_variants_are_consistent():
    seen: dict[str, dict] = {}
    for name in table_names():
        spec = load_table_spec(name)
        for v, ov in spec.variants.items():
            assert seen.setdefault(v, ov) == ov, f"variant {v} means two things"
    t7 = load_table_spec("table7")
    variants, rows = t7.select("all")
    assert len(variants) == 63 and len(rows) == 63  # every non-empty subset of {Seq1..Seq5, lc}
    assert len({tuple(ov["loss.ps_components"]) for ov in variants.values()}) == 63
    with pytest.raises(ValueError, match="known: seq5_lc"):
        t7.select(["nope"])


def test_wrong_types_and_unknown_names_are_clear(tmp_path):
    with pytest.raises(TypeError, match="SEED must be int, found str 'abc'"):
        validate_params({"SEED": "abc"})
    with pytest.raises(ValueError, match="seed must be int"):
        load_config("configs/pshrnet/tiny.yaml", {"seed": "abc"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_base_: {REPO}/configs/pshrnet/tiny.yaml\nphase2: {{lr: fast}}\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*phase2.lr must be float, found str 'fast'"):
        load_config(bad)
    (tmp_path / "base.yaml").write_text(f"_base_: {REPO}/configs/pshrnet/tiny.yaml\nphase1: {{epochs: many}}\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\nseed: 1\n")
    with pytest.raises(ValueError, match=r"child.yaml: phase1.epochs must be int.*the value comes from .*base.yaml"):
        load_config(tmp_path / "child.yaml")
    with pytest.raises(ValueError, match=r"tiny.yaml.*sr: unknown SR module 'srgan'; registered: .*vdsr_ca"):
        _cfg(**{"sr.name": "srgan"})  # checked when the configuration loads, not when phase 2 is built
    with pytest.raises(KeyError, match="unknown loss term 'l2'; registered: ce, ps, raft, sr, swa_cls, swa_tri, triplet"):
        LossComposer({"l2": 1.0}, PSHRNetLossConfig())
    from lib.models import build_backbone

    with pytest.raises(KeyError, match="unknown backbone 'vgg'; registered: .*mobilenet_v2"):
        build_backbone("vgg")


def test_loss_terms_compose_and_are_removable():
    torch.manual_seed(0)
    y = torch.tensor([0, 0, 1, 1])
    out = ReIDOutput(seq=[torch.randn(4, 8) for _ in range(5)], feat=torch.randn(4, 8), logits=torch.randn(4, 3))
    full, parts = LossComposer({"ce": 1.15, "triplet": 0.2}, PSHRNetLossConfig())(PSHRNetLossInputs(out, y))
    ce_only, p2 = LossComposer({"ce": 1.15, "triplet": 0.0}, PSHRNetLossConfig())(PSHRNetLossInputs(out, y))
    assert "bh" in parts and "bh" not in p2 and torch.isclose(full, 1.15 * parts["ce"] + 0.2 * parts["bh"])
    assert torch.isclose(ce_only, 1.15 * parts["ce"])
    assert all(not t.requires_grad for t in parts.values())  # detached tensors: no host sync in the step
    with pytest.raises(ValueError, match="needs restored, hr"):
        LossComposer({"sr": 1.0}, PSHRNetLossConfig())(PSHRNetLossInputs(out, y))
    assert LOSS_TERMS.names() == ["ce", "ps", "raft", "sr", "swa_cls", "swa_tri", "triplet"]


def test_batched_finite_check_names_the_window(tmp_path):
    prec = resolve_precision(torch.device("cpu"), "fp32", False)
    w = torch.nn.Parameter(torch.ones(1))
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        loss = (w * batch["x"]).sum() * (float("nan") if calls["n"] == 3 else 1.0)
        return loss, {"x": loss.detach()}, batch["x"].shape[0]

    class DS(torch.utils.data.Dataset):
        pids = [i // 2 for i in range(40)]

        def __len__(self):
            return 40

        def __getitem__(self, i):
            return {"x": torch.ones(1)}

    from lib.data import RandomIdentitySampler

    trainer = Trainer(trainable={"m": torch.nn.ParameterList([w])}, step_fn=step, dataset=DS(),
                      sampler=RandomIdentitySampler(DS.pids, 2, 2), optim=OptimConfig(epochs=1, lr=0.1), precision=prec,
                      run_dir=tmp_path, run_config={}, sync_every=4, progress=False)
    with pytest.raises(NonFiniteLossError, match=r"steps 1–4 \(checked every 4\): term\(s\) x"):
        trainer.fit()


def test_sharded_sampler_deals_whole_batches():
    from lib.data import RandomIdentitySampler

    s = RandomIdentitySampler([i // 4 for i in range(64)], 2, 4, seed=3)
    shards = [list(ShardedBatchSampler(s, 8, r, 3)) for r in range(3)]
    assert len({len(b) for b in shards}) == 1 and all(len(x) == 8 for b in shards for x in b)
    flat = [i for b in shards for x in b for i in x]
    assert len(flat) == len(set(flat))  # no batch twice
    whole = list(s)
    assert shards[1][0] == whole[8:16]  # rank 1 takes the second batch


def _free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_gloo(tiny, tmp_path):
    """torchrun with 2 CPU processes (gloo) trains phase 1 on the tiny data; rank 0 writes the run."""
    root, _ = tiny
    (tmp_path / "ddp").mkdir()
    os.symlink(root / "out" / "mlr", tmp_path / "ddp" / "mlr")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "lib.train", "--config", "configs/pshrnet/tiny.yaml", "--dataset", "synthetic", "--profile", "ddp",
           "--output-root", str(tmp_path), "--outputs", "teacher_lr", "--no-progress",
           "--set", "phase1.epochs=2", "data.num_identities=2", "data.num_instances=2", "test.num_repeats=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    runs = list((tmp_path / "ddp" / "runs" / "pshrnet" / "synthetic" / "stages" / "split0").glob("phase1-*"))
    assert len(runs) == 1 and (runs[0] / "model.pt").is_file()
    hist = json.loads((runs[0] / "history.json").read_text())
    assert len(hist) == 2 and all(h["samples"] == 2 * 4 * h["steps"] for h in hist)  # 2 ranks × P×K=4 per step
    assert "teacher_lr: Rank-1" in r.stdout
