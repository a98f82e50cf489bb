"""Run folders shared by processes and at paper scale (issue #21 §2–§3): one process trains a run while others wait
and reuse it; a killed holder leaves no lock behind and its run resumes to the same numbers; a finished run keeps
``model.pt`` and drops its resume checkpoint; reuse reads no pretrained weights; DataLoader workers come from the
CPUs the process may use."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lib.methods import METHODS, load_config, run_variant

REPO = Path(__file__).resolve().parents[1]
TEACHER = ["-m", "lib.train", "--config", "configs/pshrnet/tiny.yaml", "--dataset", "synthetic", "--profile", "p",
           "--outputs", "teacher_lr", "--no-progress", "--set", "phase1.epochs=4", "test.num_repeats=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}


def _profile(tiny, out: Path) -> Path:
    """An output root whose profile ``p`` sees the tiny fixture's MLR build."""
    root, _ = tiny
    (out / "p").mkdir(parents=True)
    os.symlink(root / "out" / "mlr", out / "p" / "mlr")
    return out


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _stage_dirs(out: Path) -> list[Path]:
    return sorted((out / "p" / "runs" / "pshrnet" / "synthetic" / "stages" / "split0").glob("phase1-*"))


def _start(out: Path, progress: Path, *sets: str) -> subprocess.Popen:
    """``python -m lib.train`` of the teacher; its progress lines (reused / training / waiting) go to ``progress``."""
    return subprocess.Popen([sys.executable, *TEACHER, *sets, "--output-root", str(out)], cwd=REPO,
                            env=ENV | {"WORKBOOK_PROGRESS_FILE": str(progress)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_processes_on_one_run_train_it_once(tiny, tmp_path):
    """Two reproductions started together on one output folder: one trains, the other waits and reuses."""
    out = _profile(tiny, tmp_path / "o")
    first = _start(out, tmp_path / "progress0.txt")
    deadline = time.time() + 300  # the first holds the run's lock: paused there, the second must find it held
    while not any((r / ".run.lock").exists() for r in _stage_dirs(out)) and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        second = _start(out, tmp_path / "progress1.txt")
        while "another process holds" not in _read(tmp_path / "progress1.txt") and second.poll() is None \
                and time.time() < deadline:
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGCONT)
    jobs = [first, second]
    outs = [j.communicate(timeout=600)[0] for j in jobs]
    assert all(j.returncode == 0 for j in jobs), "\n=====\n".join(o[-3000:] for o in outs)
    logs = [(tmp_path / f"progress{i}.txt").read_text() + outs[i] for i in range(2)]
    (run,) = _stage_dirs(out)
    assert len(json.loads((run / "history.json").read_text())) == 4  # four epochs, trained once
    trained = [log for log in logs if f"training {run.name}" in log]
    waited = [log for log in logs if "another process holds" in log and f"reusing the finished run {run.name}" in log]
    assert len(trained) == 1 and len(waited) == 1, logs
    rank1 = [line.split("Rank-1")[-1] for log in logs for line in log.splitlines() if "teacher_lr: Rank-1" in line]
    assert len(rank1) == 2 and rank1[0] == rank1[1]


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_no_lock_and_the_rerun_resumes_to_the_same_metrics(tiny, tmp_path):
    ref_out = _profile(tiny, tmp_path / "ref")
    ref = subprocess.run([sys.executable, *TEACHER, "--output-root", str(ref_out)], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    out = _profile(tiny, tmp_path / "o")
    job = _start(out, tmp_path / "killed.txt", "runtime.keep_checkpoint=true")
    deadline = time.time() + 300
    while job.poll() is None and time.time() < deadline:
        runs = _stage_dirs(out)
        if runs and (runs[0] / "history.json").is_file() and json.loads((runs[0] / "history.json").read_text()):
            break
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)  # mid-run: at least one epoch checkpointed, not finished
    job.wait(timeout=60)
    (run,) = _stage_dirs(out)
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "metrics.json").exists()
    t0 = time.time()
    rerun = _start(out, tmp_path / "rerun.txt")
    text = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, text
    text += (tmp_path / "rerun.txt").read_text()
    assert "another process holds" not in text and "resumed from" in text
    assert time.time() - t0 < 300
    done = json.loads((run / "metrics.json").read_text())["metrics"]
    (ref_run,) = _stage_dirs(ref_out)
    assert run.name == ref_run.name  # the same identity
    assert done == json.loads((ref_run / "metrics.json").read_text())["metrics"]  # bit-identical resume
    assert not (run / "checkpoints").exists()  # the rerun kept the default: the resume state is gone


def test_a_finished_run_keeps_model_pt_and_drops_its_resume_checkpoint(trained_profile):
    profile, _ = trained_profile
    runs = profile / "runs"
    teacher = (runs / "pshrnet" / "synthetic" / "variants" / "default" / "split0" / "phase1").resolve()
    assert (teacher / "model.pt").is_file() and not (teacher / "checkpoints" / "last.pt").exists()
    # the fixture's FTWA run set runtime.keep_checkpoint: its resume state stays
    ftwa = (runs / "ftwa" / "synthetic" / "variants" / "default" / "split0" / "train").resolve()
    assert (ftwa / "checkpoints" / "last.pt").is_file() and (ftwa / "model.pt").is_file()


@pytest.mark.slow
def test_checkpoint_every_writes_every_nth_epoch_and_the_last(tiny, tmp_path, monkeypatch):
    from lib.engine.trainer import Trainer

    saved: list[int] = []
    real = Trainer._save
    monkeypatch.setattr(Trainer, "_save", lambda self, epoch: (saved.append(epoch), real(self, epoch)))
    _, ds = tiny
    cfg = load_config("configs/pshrnet/tiny.yaml", {"phase1.epochs": 5, "runtime.max_steps_per_epoch": 1,
                                                    "runtime.checkpoint_every": 2, "test.num_repeats": 1})
    run_variant(METHODS.get("pshrnet"), cfg, ds=ds, split=0, root=tmp_path, outputs=["teacher_lr"], progress=False)
    assert saved == [1, 3, 4]  # after epochs 2 and 4, and the last (5)
    with pytest.raises(ValueError, match="checkpoint_every"):
        load_config("configs/pshrnet/tiny.yaml", {"runtime.checkpoint_every": 0})


@pytest.mark.slow
def test_reusing_a_finished_run_reads_no_pretrained_weights(tiny, tmp_path):
    """A run trained from a local weights file is reused, and loads, after the file is gone (tables rebuild
    offline); before, reuse built the backbone with its weights first."""
    from lib.inference import load_run
    from lib.models.backbones import build_backbone

    _, ds = tiny
    backbone, _ = build_backbone("mobilenet_v2", weights="none")
    weights = tmp_path / "mobilenet_v2.pth"
    torch.save(backbone.weights_target().state_dict(), weights)
    cfg = load_config("configs/pshrnet/tiny.yaml", {"phase1.epochs": 1, "runtime.max_steps_per_epoch": 1,
                                                    "test.num_repeats": 1, "model.weights": f"file:{weights}"})
    m = METHODS.get("pshrnet")
    _, first = run_variant(m, cfg, ds=ds, split=0, root=tmp_path / "runs", outputs=["teacher_lr"], progress=False)
    weights.unlink()
    stamp = (first["phase1"].run_dir / "model.pt").stat().st_mtime_ns
    _, again = run_variant(m, cfg, ds=ds, split=0, root=tmp_path / "runs", outputs=["teacher_lr"], progress=False)
    assert again["phase1"].run_dir == first["phase1"].run_dir
    assert (first["phase1"].run_dir / "model.pt").stat().st_mtime_ns == stamp  # reused, not retrained
    assert load_run(first["phase1"].run_dir).identity == first["phase1"].identity
    with pytest.raises(FileNotFoundError, match="mobilenet_v2.pth"):  # a run that must train still needs the file
        run_variant(m, load_config("configs/pshrnet/tiny.yaml", {"phase1.epochs": 2, "model.weights": f"file:{weights}"}),
                    ds=ds, split=0, root=tmp_path / "runs", outputs=["teacher_lr"], progress=False)


def test_workers_come_from_the_cpus_this_process_may_use(monkeypatch):
    from lib.engine.trainer import default_num_workers, usable_cpus

    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert usable_cpus() == 4 and default_num_workers(torch.device("cuda")) == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert usable_cpus() == 2 and default_num_workers(torch.device("cuda")) == 1
    assert default_num_workers(torch.device("cpu")) == 0


def test_weights_per_backbone_go_to_the_rows_of_that_backbone_only(tmp_path):
    """Issue #21 §3: one file per backbone for a whole reproduction (``WEIGHTS``), instead of an ``OVERRIDES``
    ``model.weights`` that also reached the ResNet-50 rows of Tables IV / VI."""
    from lib.workbook import notebook_parameters
    from lib.workflow import experiment_config, load_weights_file

    weights = {"resnet50": "file:/w/resnet50.pth", "hrnet_w32": "file:/w/hrnetv2_w32.pth"}
    params = {"CONFIG": "configs/pshrnet/tiny.yaml", "WEIGHTS": weights}
    assert experiment_config(params).model.weights == "none"  # mobilenet_v2: no file given, the profile's own
    assert experiment_config(params, {"model.backbone": "resnet50"}).model.weights == "file:/w/resnet50.pth"
    assert experiment_config(params, {"model.backbone": "hrnet_w32"}).model.weights == "file:/w/hrnetv2_w32.pth"
    mine = {"model.backbone": "resnet50", "model.weights": "none"}  # a row naming its own weights keeps them
    assert experiment_config(params, mine).model.weights == "none"
    ftwa = {"CONFIG": "configs/ftwa/tiny.yaml", "WEIGHTS": weights}  # the other method, through its weights_keys
    assert experiment_config(ftwa, {"model.backbone": "resnet50"}).model.weights == "file:/w/resnet50.pth"
    with pytest.raises(ValueError, match=r"WEIGHTS: 'resnet_50' is not a backbone name; known: .*resnet50"):
        experiment_config({**params, "WEIGHTS": {"resnet_50": "file:/w/r.pth"}})
    with pytest.raises(ValueError, match=r"WEIGHTS: resnet50: weights: unknown source '/w/r.pth'"):
        experiment_config({**params, "WEIGHTS": {"resnet50": "/w/r.pth"}})
    # the file form (make reproduce WEIGHTS=…): relative paths are the file's folder's
    f = tmp_path / "weights.yaml"
    f.write_text("resnet50: file:r50.pth\nhrnet_w32: file:/abs/h.pth\n")
    assert load_weights_file(f) == {"resnet50": f"file:{tmp_path / 'r50.pth'}", "hrnet_w32": "file:/abs/h.pth"}
    f.write_text("- resnet50\n")
    with pytest.raises(ValueError, match=f"{f}: expected a mapping"):
        load_weights_file(f)
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        load_weights_file(tmp_path / "absent.yaml")
    # every notebook that trains (it declares OVERRIDES) takes WEIGHTS, so `make reproduce WEIGHTS=…` reaches it
    for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        declared = notebook_parameters(nb)
        assert ("OVERRIDES" in declared) == ("WEIGHTS" in declared), nb.name


@pytest.mark.slow
def test_an_experiment_frees_each_runs_modules_and_reads_them_back_on_demand(tiny, tmp_path):
    from lib.core.runs import LazyModules
    from lib.engine.checkpoint import load_checkpoint
    from lib.workflow import run_experiment

    root, _ = tiny
    (tmp_path / "p").mkdir()
    os.symlink(root / "out" / "mlr", tmp_path / "p" / "mlr")
    params = {"PROFILE": "p", "OUTPUT_ROOT": str(tmp_path), "DATASETS": ["synthetic"], "SPLITS": [0],
              "CONFIG": "configs/pshrnet/tiny.yaml",
              "OVERRIDES": {"phase1.epochs": 1, "runtime.max_steps_per_epoch": 1, "test.num_repeats": 1}}
    exp = run_experiment(params, {"default": {}}, {"default": ["teacher_lr"]}, progress=False)
    run = exp.runs[("default", "synthetic", 0)]["phase1"]
    assert isinstance(run.modules, LazyModules) and not run.modules.loaded  # nothing held after the run
    model = run.modules["model"]
    saved = load_checkpoint(run.run_dir / "model.pt")["model"]
    assert run.modules.loaded and all(torch.equal(v.float(), saved[k].float()) for k, v in model.state_dict().items())


def test_a_finished_run_in_a_folder_that_cannot_be_locked_is_still_read(tmp_path, monkeypatch):
    """A read-only copy of someone's finished runs: no lock file can be made, nothing will be written."""
    import filelock

    from lib.core.runs import run_lock

    def refuse(self, *a, **k):
        raise PermissionError(13, "Read-only file system")
    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    done = tmp_path / "done"
    done.mkdir()
    (done / "model.pt").write_bytes(b"")
    (done / "metrics.json").write_text("{}")
    with run_lock(done, "w"):
        pass
    with pytest.raises(OSError, match=r"cannot lock the run folder .*todo.* it must be writable to train"):
        with run_lock(tmp_path / "todo", "w"):
            pass
