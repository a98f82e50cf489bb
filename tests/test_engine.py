"""Training engine: schedule, non-finite loss, resume (with a real kill), run reuse, frozen teacher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from lib.data import MLRConfig, MLRDataset, build_mlr
from lib.data.synthetic import SyntheticConfig, generate_synthetic
from lib.engine import NonFiniteLossError, OptimConfig, Trainer, lr_factor, resolve_precision
from lib.engine.trainer import make_optimizer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_mlr(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    csv = generate_synthetic(root / "data", SyntheticConfig(num_identities=12, num_cameras=3, images_per_camera=2,
                                                            height=64, width=32, seed=0), progress=False)
    return build_mlr(csv, root / "mlr", MLRConfig("synthetic", seed=0), progress=False)


def test_lr_schedule_warmup_and_steps():
    cfg = OptimConfig(epochs=70, lr=8.5e-3, step_size=30, gamma=0.1, warmup_epochs=5, warmup_lr=3e-4)
    assert lr_factor(0, cfg) * 8.5e-3 == pytest.approx(3e-4)
    assert lr_factor(5, cfg) == 1.0 and lr_factor(29, cfg) == 1.0
    assert lr_factor(30, cfg) == pytest.approx(0.1) and lr_factor(69, cfg) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="OptimConfig.epochs"):
        OptimConfig(epochs=0)


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))


class _ToyData(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i)]), "pid": i % 4}


def _toy_trainer(tmp_path, step_fn, model, **kw):
    from lib.data import RandomIdentitySampler

    data = _ToyData()
    return Trainer(
        step_fn=step_fn, trainable={"m": model}, param_groups=[{"name": "reid", "params": list(model.parameters()), "lr": 0.1}],
        dataset=data, sampler=RandomIdentitySampler([i % 4 for i in range(8)], 2, 2), optim=OptimConfig(epochs=3, lr=0.1, step_size=1),
        precision=resolve_precision(torch.device("cpu"), "fp32"), run_dir=tmp_path, run_config={"toy": 1}, progress=False, **kw,
    )


def test_non_finite_loss_names_epoch_step_and_term(tmp_path):
    model = _Toy()
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        bad = calls["n"] == 4  # epoch 2 (2 steps an epoch), step 2
        sr = torch.tensor(float("nan")) if bad else torch.tensor(0.5)
        loss = model.w.sum() * (sr if bad else 1.0)
        return loss, {"ce": 1.0, "sr": float(sr), "total": float(loss.detach())}, 4

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2: sr=nan, total=nan"):
        _toy_trainer(tmp_path, step, model).fit()
    assert (tmp_path / "checkpoints" / "last.pt").is_file()  # epoch 1 was saved


def test_resume_refuses_a_different_run(tmp_path):
    model = _Toy()
    step = lambda b: (model.w.sum() * b["x"].mean(), {"total": 0.0}, 4)  # noqa: E731
    hist = _toy_trainer(tmp_path, step, model).fit()
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert [h["lr_reid"] for h in hist] == pytest.approx([0.1, 0.01, 0.001])
    t = _toy_trainer(tmp_path, step, _Toy())
    t.run_config["toy"] = 2
    with pytest.raises(RuntimeError, match="different configuration"):
        t.fit()
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr_reid") and len(rows) == 4


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from lib.data import MLRDataset
    from lib.engine import OptimConfig
    from lib.pshrnet import PSHRNetConfig, train_phase1, train_phase2
    ds = MLRDataset.load(sys.argv[1])
    out = sys.argv[2]
    cfg = PSHRNetConfig(backbone="mobilenet_v2", height=64, width=32, num_identities=3, num_instances=2,
                        sr_depth=4, sr_width=8, precision="fp32", num_repeats=2, eval_batch_size=32,
                        phase1=OptimConfig(epochs=1, lr=0.01, step_size=5),
                        phase2=OptimConfig(epochs=4, lr=0.01, lr_sr=0.001, step_size=2))
    r1 = train_phase1(ds, 0, cfg, out + "/p1", progress=False)
    r2 = train_phase2(ds, 0, cfg, out + "/p2", r1.modules["model"], progress=False)
    print("METRICS " + json.dumps(r2.metrics))
    """
)


def _run(manifest: Path, out: Path) -> dict:
    p = subprocess.run([sys.executable, "-c", _SCRIPT, str(manifest), str(out)], cwd=REPO, capture_output=True, text=True,
                       timeout=600, env=os.environ | {"TQDM_DISABLE": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.split("METRICS ", 1)[1])


def test_kill_and_resume_matches_uninterrupted(tiny_mlr, tmp_path):
    """A phase-2 run SIGKILLed after its first checkpoint, then restarted, ends exactly like a clean run."""
    clean = _run(tiny_mlr, tmp_path / "clean")

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(tiny_mlr), str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | {"TQDM_DISABLE": "1"})
    ckpt = out / "p2" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = json.loads((out / "p2" / "history.json").read_text())
    assert 1 <= len(done) < 4 and not (out / "p2" / "metrics.json").exists()

    resumed = _run(tiny_mlr, out)
    assert resumed == clean
    a = torch.load(tmp_path / "clean" / "p2" / "model.pt", weights_only=False)
    b = torch.load(out / "p2" / "model.pt", weights_only=False)
    for part in ("student", "sr"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after resume"
    hist = json.loads((out / "p2" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]


def test_finished_run_is_reused_and_teacher_stays_frozen(tiny_mlr, tmp_path):
    from lib.pshrnet import PSHRNetConfig, train_phase1, train_phase2

    ds = MLRDataset.load(tiny_mlr)
    cfg = PSHRNetConfig(backbone="mobilenet_v2", height=64, width=32, num_identities=3, num_instances=2, sr_depth=4,
                        sr_width=8, precision="fp32", num_repeats=2, phase1=OptimConfig(epochs=1, lr=0.01),
                        phase2=OptimConfig(epochs=1, lr=0.01, lr_sr=0.001))
    r1 = train_phase1(ds, 0, cfg, tmp_path / "p1", progress=False)
    assert set(r1.metrics) == {"hr", "lr"} and 0 <= r1.metrics["hr"]["rank1"] <= 1
    before = {k: v.clone() for k, v in r1.modules["model"].state_dict().items()}
    r2 = train_phase2(ds, 0, cfg, tmp_path / "p2", r1.modules["model"], progress=False)
    after = r1.modules["model"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "phase 2 changed the teacher"
    m = json.loads((tmp_path / "p2" / "metrics.json").read_text())
    assert m["run"]["phase"] == "phase2" and m["run"]["manifest_sha256"] == ds.fingerprint
    assert m["data"]["file_list_sha256"] == ds.manifest["source"]["file_list_sha256"]
    assert {"loss_sr", "loss_ps", "loss_id"} <= set(m["final_losses"])
    mtime = (tmp_path / "p1" / "metrics.json").stat().st_mtime_ns
    again = train_phase1(ds, 0, cfg, tmp_path / "p1", progress=False)
    assert (tmp_path / "p1" / "metrics.json").stat().st_mtime_ns == mtime and again.metrics == r1.metrics
    assert r2.metrics["lr"]["protocol"] == "multi_shot"

    # evaluation settings are not training settings: the finished model is re-evaluated, not retrained
    hist_mtime = (tmp_path / "p1" / "history.json").stat().st_mtime_ns
    again = train_phase1(ds, 0, cfg.replace(num_repeats=3, flip_test=False), tmp_path / "p1", progress=False)
    m1 = json.loads((tmp_path / "p1" / "metrics.json").read_text())
    assert m1["eval"] == {"flip_test": False, "num_repeats": 3, "test_feature": "concat"} and m1["epochs"] == 1
    assert (tmp_path / "p1" / "history.json").stat().st_mtime_ns == hist_mtime

    # phase 2 leaves the caller's teacher trainable; a student copied from it trains
    teacher = again.modules["model"]
    assert all(p.requires_grad for p in teacher.parameters())
    r3 = train_phase2(ds, 0, cfg.replace(student_init="teacher"), tmp_path / "p2b", teacher, progress=False)
    st = r3.modules["student"].state_dict()
    assert any(not torch.equal(st[k], teacher.state_dict()[k]) for k in st if st[k].is_floating_point())
