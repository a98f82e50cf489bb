"""Training engine: schedule, non-finite loss, resume (with a real kill), run reuse / re-evaluation through the
generic run lifecycle (lib/core/runs.py), run identities, frozen teacher."""

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
from lib.methods import METHODS, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = "configs/pshrnet/tiny.yaml"
#: A few seconds per stage on 2 CPU cores: MobileNetV2 (tiny.yaml) at 64×32, a 4-layer VDSR-CA, P×K = 3×2.
SMALL = {
    "data.height": 64, "data.width": 32, "data.num_identities": 3, "data.num_instances": 2,
    "sr.depth": 4, "sr.width": 8, "runtime.device": "cpu", "runtime.precision": "fp32",
    "test.num_repeats": 2, "test.batch_size": 32,
    "phase1.epochs": 1, "phase1.lr": 0.01, "phase1.step_size": 5,
    "phase2.epochs": 1, "phase2.lr": 0.01, "phase2.module_lr": {"sr": 0.001},
}


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
    with pytest.raises(ValueError, match="epochs: expected ≥ 1, found 0"):
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
        # loss parts may be floats or (detached) tensors
        return loss, {"ce": 1.0, "sr": sr, "total": loss.detach()}, 4

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2: term\(s\) sr, total\b") as e:
        _toy_trainer(tmp_path, step, model).fit()
    assert "ce" not in str(e.value).split("term(s)")[1].split(".")[0]  # the finite term is not blamed
    assert (tmp_path / "checkpoints" / "last.pt").is_file()  # epoch 1 was saved
    assert str(tmp_path / "checkpoints" / "last.pt") in str(e.value)


def test_finite_check_every_sync_every_steps(tmp_path):
    """On a GPU the loss is brought to the host every ``sync_every`` steps only: the error names the steps checked."""
    model = _Toy()
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        ps = torch.tensor(float("inf")) if calls["n"] == 3 else torch.tensor(0.5)  # epoch 2, step 1
        return model.w.sum() * ps, {"ps": ps}, 4

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, steps 1–2 \(checked every 2\): term\(s\) ps"):
        _toy_trainer(tmp_path, step, model, sync_every=2).fit()
    assert calls["n"] == 4  # the second step of the epoch ran before the check


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


def test_one_parameter_group_per_trained_module_at_module_lr(tmp_path):
    """``optim.module_lr[name]`` or ``optim.lr`` per trained module (VDSR-CA at 8.5e-4, the re-ID net at 8.5e-3)."""
    from lib.data import RandomIdentitySampler

    a, b = _Toy(), _Toy()

    def make_step(mods):
        assert set(mods) == {"student", "sr"}
        return lambda batch: ((mods["student"].w + mods["sr"].w).sum() * batch["x"].mean(), {}, 4)

    def trainer(optim, run_dir):
        return Trainer(trainable={"student": a, "sr": b}, make_step=make_step, dataset=_ToyData(),
                       sampler=RandomIdentitySampler([i % 4 for i in range(8)], 2, 2), optim=optim,
                       precision=resolve_precision(torch.device("cpu"), "fp32"), run_dir=run_dir, run_config={},
                       progress=False)

    hist = trainer(OptimConfig(epochs=2, lr=8.5e-3, module_lr={"sr": 8.5e-4}, step_size=1), tmp_path / "a").fit()
    assert hist[0]["lr_student"] == pytest.approx(8.5e-3) and hist[0]["lr_sr"] == pytest.approx(8.5e-4)
    assert hist[1]["lr_student"] == pytest.approx(8.5e-4) and hist[1]["lr_sr"] == pytest.approx(8.5e-5)  # same schedule
    # the authors' code: VDSR-CA at the re-ID rate (sr left out of module_lr)
    hist = trainer(OptimConfig(epochs=1, lr=8.5e-3), tmp_path / "b").fit()
    assert hist[0]["lr_sr"] == hist[0]["lr_student"] == pytest.approx(8.5e-3)
    with pytest.raises(ValueError, match=r"module_lr: \['vdsr'\] are not trained by this stage; its modules: student, sr"):
        trainer(OptimConfig(module_lr={"vdsr": 1e-4}), tmp_path / "c")
    with pytest.raises(TypeError, match="exactly one of make_step and step_fn"):
        Trainer(trainable={"m": a}, dataset=_ToyData(), sampler=None, optim=OptimConfig(),
                precision=resolve_precision(torch.device("cpu"), "fp32"), run_dir=tmp_path / "d", run_config={})


# ------------------------------------------------------------------------------------------ the run lifecycle
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from lib.data import MLRDataset
    from lib.methods import METHODS, load_config, run_variant
    ds = MLRDataset.load(sys.argv[1])
    cfg = load_config(sys.argv[3], json.loads(sys.argv[4]))
    method, output, stage = sys.argv[5:8]
    metrics, runs = run_variant(METHODS.get(method), cfg, ds=ds, split=0, root=sys.argv[2], outputs=[output],
                                progress=False)
    print("METRICS " + json.dumps({"metrics": metrics, "stage": str(runs[stage].run_dir)}))
    """
)
#: method → (configuration, overrides, output, the stage killed, its trained modules)
_KILL = {
    "pshrnet": (TINY, {**SMALL, "phase2.epochs": 4, "phase2.step_size": 2}, "pshrnet", "phase2", ("student", "sr")),
    "ftwa": ("configs/ftwa/tiny.yaml", {
        "data.num_identities": 3, "data.num_instances": 2, "raft.width": 8, "swa.hidden": 8, "train.epochs": 4,
        "train.milestones": [2], "runtime.device": "cpu", "runtime.precision": "fp32", "test.num_repeats": 2,
        "test.batch_size": 32}, "ftwa", "train", ("model",)),
}


def _argv(manifest: Path, out: Path, method: str = "pshrnet") -> list[str]:
    config, ov, output, stage, _ = _KILL[method]
    return [sys.executable, "-c", _SCRIPT, str(manifest), str(out), config, json.dumps(ov), method, output, stage]


def _run(manifest: Path, out: Path, method: str = "pshrnet") -> dict:
    p = subprocess.run(_argv(manifest, out, method), cwd=REPO, capture_output=True, text=True, timeout=600,
                       env=os.environ | {"TQDM_DISABLE": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.split("METRICS ", 1)[1])


@pytest.mark.parametrize("method", ["pshrnet", "ftwa"])
@pytest.mark.slow
def test_kill_and_resume_matches_uninterrupted(tiny_mlr, tmp_path, method):
    """A run (PS-HRNet's phase 2, FTWA's one stage) SIGKILLed after its first checkpoint, then restarted, ends
    exactly like a clean run: same metrics, bit-identical weights, every epoch once in the history."""
    stage, parts = _KILL[method][3], _KILL[method][4]
    clean = _run(tiny_mlr, tmp_path / "clean", method)
    clean_dir = Path(clean["stage"])
    assert clean_dir.parent == tmp_path / "clean" / method / "synthetic" / "stages" / "split0"

    out = tmp_path / "killed"
    stages = out / method / "synthetic" / "stages" / "split0"
    proc = subprocess.Popen(_argv(tiny_mlr, out, method), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ | {"TQDM_DISABLE": "1"})
    deadline = time.time() + 300
    # history.json is written right after the epoch's checkpoint
    while not list(stages.glob(f"{stage}-*/history.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    (run,) = stages.glob(f"{stage}-*")
    assert run.name == clean_dir.name  # the folder is named by the run's identity, not by where it runs
    done = json.loads((run / "history.json").read_text())
    assert 1 <= len(done) < 4 and (run / "checkpoints" / "last.pt").is_file()
    assert not (run / "metrics.json").exists() and not (run / "model.pt").exists()

    resumed = _run(tiny_mlr, out, method)
    assert resumed["metrics"] == clean["metrics"]
    a = torch.load(clean_dir / "model.pt", weights_only=False)
    b = torch.load(run / "model.pt", weights_only=False)
    for part in parts:
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after resume"
    hist = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]


def _stage(name: str):
    return METHODS.get("pshrnet").stages[name]


def _run_stage(name, cfg, ds, root, deps=None, variant=None):
    from lib.core.runs import run_stage

    return run_stage(_stage(name), method="pshrnet", cfg=cfg, ds=ds, split=0, root=root, deps=deps, variant=variant,
                     progress=False)


@pytest.mark.slow
def test_finished_run_is_reused_and_teacher_stays_frozen(tiny_mlr, tmp_path):
    ds = MLRDataset.load(tiny_mlr)
    cfg = load_config(TINY, SMALL)
    r1 = _run_stage("phase1", cfg, ds, tmp_path)
    assert r1.run_dir.parent == tmp_path / "pshrnet" / "synthetic" / "stages" / "split0"
    assert r1.run_dir.name == f"phase1-{r1.key}" and len(r1.key) == 12
    assert set(r1.metrics) == {"hr", "lr"} and 0 <= r1.metrics["hr"]["rank1"] <= 1
    before = {k: v.clone() for k, v in r1.modules["model"].state_dict().items()}
    r2 = _run_stage("phase2", cfg, ds, tmp_path, deps={"phase1": r1})
    after = r1.modules["model"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "phase 2 changed the teacher"
    assert r2.identity["deps"] == {"phase1": r1.key}
    m = json.loads((r2.run_dir / "metrics.json").read_text())
    assert m["run"]["stage"] == "phase2" and m["run"]["manifest_sha256"] == ds.fingerprint
    assert m["data"]["file_list_sha256"] == ds.manifest["source"]["file_list_sha256"]
    assert {"loss_sr", "loss_ps", "loss_ce", "loss_bh", "loss_total"} <= set(m["final_losses"])
    assert m["threads"] == torch.get_num_threads() and "threads" not in m["run"]  # recorded, not an identity
    assert json.loads((r2.run_dir / "identity.json").read_text()) == json.loads(json.dumps(r2.identity))
    mtime = (r1.run_dir / "metrics.json").stat().st_mtime_ns
    again = _run_stage("phase1", cfg, ds, tmp_path)
    assert again.run_dir == r1.run_dir and again.history == []  # reused: nothing trained
    assert (r1.run_dir / "metrics.json").stat().st_mtime_ns == mtime and again.metrics == r1.metrics
    for k, v in again.modules["model"].state_dict().items():  # the finished model is loaded
        assert torch.equal(v, before[k]), k
    assert r2.metrics["lr"]["protocol"] == "multi_shot"

    # evaluation settings are not training settings: the finished model is re-evaluated, not retrained
    hist_mtime = (r1.run_dir / "history.json").stat().st_mtime_ns
    model_mtime = (r1.run_dir / "model.pt").stat().st_mtime_ns
    again = _run_stage("phase1", load_config(TINY, {**SMALL, "test.num_repeats": 3, "test.flip": False}), ds, tmp_path)
    assert again.run_dir == r1.run_dir and again.identity == r1.identity
    m1 = json.loads((r1.run_dir / "metrics.json").read_text())
    assert m1["eval"] == {"flip": False, "num_repeats": 3, "feature": "concat"} and m1["epochs"] == 1
    assert m1["metrics"] == json.loads(json.dumps(again.metrics))
    assert (r1.run_dir / "history.json").stat().st_mtime_ns == hist_mtime
    assert (r1.run_dir / "model.pt").stat().st_mtime_ns == model_mtime
    # the test feature too (ℓ_f alone: its own distances)
    feat = _run_stage("phase1", load_config(TINY, {**SMALL, "test.feature": "feat"}), ds, tmp_path)
    assert feat.run_dir == r1.run_dir and (r1.run_dir / "history.json").stat().st_mtime_ns == hist_mtime
    assert json.loads((r1.run_dir / "metrics.json").read_text())["eval"]["feature"] == "feat"

    # phase 2 leaves the caller's teacher trainable; a student copied from it trains
    teacher = again.modules["model"]
    assert all(p.requires_grad for p in teacher.parameters())
    r3 = _run_stage("phase2", load_config(TINY, {**SMALL, "phase2.init": "teacher"}), ds, tmp_path,
                    deps={"phase1": again})
    assert r3.run_dir != r2.run_dir and r3.identity["config"]["phase2.init"] == "teacher"
    st = r3.modules["student"].state_dict()
    assert any(not torch.equal(st[k], teacher.state_dict()[k]) for k in st if st[k].is_floating_point())


@pytest.mark.slow
def test_phase1_identity_ignores_phase2_settings(tiny_mlr, tmp_path):
    """Variants that differ in phase 2 only (Tables II and VII) share one phase-1 run (one teacher); the identity is
    what the stage read, so no hand-kept key list decides this."""
    ds = MLRDataset.load(tiny_mlr)
    a = _run_stage("phase1", load_config(TINY, SMALL), ds, tmp_path, variant="sr_id_ps")
    cfg = a.identity["config"]
    assert cfg["model.backbone"] == "mobilenet_v2" and cfg["data.height"] == 64 and cfg["phase1.losses"]["ce"] == 1.15
    assert not [k for k in cfg if k.split(".")[0] in ("phase2", "baseline", "sr", "test", "runtime")], sorted(cfg)
    assert "loss.ps_components" not in cfg  # phase 1 has no L_PS
    mtime = (a.run_dir / "metrics.json").stat().st_mtime_ns
    phase2_only = {"phase2.lr": 0.02, "phase2.losses.ps": 0.0, "phase2.init": "teacher", "loss.ps_components": ["seq5"],
                   "sr.depth": 3, "baseline.epochs": 2, "runtime.sync_every": 2}
    b = _run_stage("phase1", load_config(TINY, {**SMALL, **phase2_only}), ds, tmp_path, variant="sr_id")
    assert b.identity["config"] == cfg and b.key == a.key and b.run_dir == a.run_dir
    assert (a.run_dir / "metrics.json").stat().st_mtime_ns == mtime  # reused, not retrained
    variants = tmp_path / "pshrnet" / "synthetic" / "variants"
    for v in ("sr_id_ps", "sr_id"):
        link = variants / v / "split0" / "phase1"
        assert link.is_symlink() and link.resolve() == a.run_dir.resolve()
    # a phase-1 setting, the seed, or cutting epochs short is another run
    keys = {a.key}
    for ov in ({"phase1.lr": 0.02}, {"seed": 1}, {"runtime.max_steps_per_epoch": 1}):
        c = _run_stage("phase1", load_config(TINY, {**SMALL, **ov}), ds, tmp_path)
        assert c.key not in keys and c.run_dir.is_dir(), ov
        keys.add(c.key)


def test_persistent_workers_serve_every_epoch_with_the_same_batches(tiny_mlr, tmp_path):
    """Issue #21 §3: one DataLoader (the same worker processes) for the whole run, whose batches equal those of a
    loader started anew each epoch — the augmentation of each epoch reaches workers started before it."""
    from lib.data import PairDataset, PairedAugment, RandomIdentitySampler

    split = MLRDataset.load(tiny_mlr).split(0)

    def batches(persistent: bool) -> tuple[list[torch.Tensor], list[set[int]], int]:
        ds = PairDataset(split.train, size=(32, 16), augment=PairedAugment(pad=4), seed=3)
        sampler = RandomIdentitySampler(ds.pids, 3, 2, seed=0)
        t = Trainer(step_fn=lambda b: (None, {}, 0), trainable={"m": _Toy()}, dataset=ds, sampler=sampler,
                    optim=OptimConfig(epochs=3), precision=resolve_precision(torch.device("cpu"), "fp32"),
                    run_dir=tmp_path, run_config={}, progress=False, num_workers=2, persistent_workers=persistent)
        out, pids, loaders = [], [], set()
        torch.manual_seed(0)
        for epoch in range(3):
            loader = t._loader(epoch)
            loaders.add(id(loader))
            got = list(loader)
            out.append(torch.cat([b["lr"] for b in got] + [b["hr"] for b in got]))
            out.append(torch.rand(3))  # the global random stream (dropout) after the epoch: the same both ways
            it = loader._iterator
            pids.append({w.pid for w in it._workers} if it is not None else set())
        t._kept_loader = None
        return out, pids, len(loaders)

    anew, pids_anew, n_anew = batches(False)
    kept, pids_kept, n_kept = batches(True)
    assert n_anew == 3 and n_kept == 1
    assert pids_kept[0] == pids_kept[1] == pids_kept[2] and len(pids_kept[0]) == 2  # the same two processes
    assert not torch.equal(anew[0], anew[2])  # the epoch changes the pairs, so the comparison below can fail
    for e in range(6):
        assert torch.equal(kept[e], anew[e]), f"epoch {e // 2}: persistent workers gave other batches or draws"
