"""Run folders and checkpoints from someone else never run code here (issue #19 §1).

A ``model.pt`` or ``checkpoints/last.pt`` whose pickle calls ``os.system`` is put into a copy of a finished profile;
every path that reads one (``lib.rank``, :func:`lib.inference.load_run`, the explorer, ``lib.robustness``, run reuse
and resume through ``python -m lib.train``) must refuse it, name the file, and leave no marker behind. Checkpoints of
runs made before the change (numpy RNG state as an ``ndarray``, numpy numbers) still load and resume.
"""

from __future__ import annotations

import io
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.engine.checkpoint import UnsafeCheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from lib.inference import RunLoadError, load_run

FTWA_ARGS = ["--config", "configs/ftwa/tiny.yaml", "--dataset", "synthetic", "--profile", "tiny", "--no-progress",
             "--set", "runtime.max_steps_per_epoch=2", "train.epochs=1"]  # the trained_profile fixture's FTWA run


class _Payload:
    """What an attacker puts into a pickle: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _poison(path: Path, marker: Path) -> None:
    """Keep the checkpoint's real content (every key a loader looks for) and add the payload."""
    state = load_checkpoint(path)
    state["payload"] = _Payload(marker)
    torch.save(state, path)


@pytest.fixture
def copied(trained_profile, tmp_path):
    """``(profile, marker)``: a private copy of the trained profile (links kept), and the marker path."""
    profile, _ = trained_profile
    root = tmp_path / "copy"
    shutil.copytree(profile.parent.parent, root, symlinks=True)
    return root / "outputs" / "tiny", tmp_path / "MARKER"


def _stage(profile: Path, method: str, variant: str, stage: str) -> Path:
    return (profile / "runs" / method / "synthetic" / "variants" / variant / "split0" / stage).resolve()


def test_the_payload_really_runs_under_the_unsafe_loader(tmp_path):
    """The test's own premise: the crafted file does execute its command when read the old way."""
    marker = tmp_path / "MARKER"
    torch.save({"x": _Payload(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["torch", "plain_pickle"])
def test_load_checkpoint_refuses_a_crafted_pickle_and_names_it(tmp_path, fmt):
    import pickle

    marker, path = tmp_path / "MARKER", tmp_path / "last.pt"
    if fmt == "torch":
        torch.save({"epoch": 1, "x": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"epoch": 1, "x": _Payload(marker)}))
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "not loaded" in str(e.value)
    if fmt == "torch":
        assert "posix.system" in str(e.value)  # what was refused
    assert not marker.exists()


def test_a_truncated_checkpoint_is_not_called_unsafe(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"w": torch.ones(3)})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(RuntimeError, match="cannot be read") as e:
        load_checkpoint(path)
    assert not isinstance(e.value, UnsafeCheckpointError) and str(path) in str(e.value)


@pytest.mark.parametrize("poisoned", ["phase2", "phase1"])  # the stage itself, or the teacher it loads with it
def test_load_run_refuses_a_poisoned_model(copied, poisoned):
    profile, marker = copied
    _poison(_stage(profile, "pshrnet", "default", poisoned) / "model.pt", marker)
    with pytest.raises(RunLoadError) as e:
        load_run(_stage(profile, "pshrnet", "default", "phase2"))
    assert str(_stage(profile, "pshrnet", "default", poisoned) / "model.pt") in str(e.value)
    assert "refused" in str(e.value) and not marker.exists()


def test_rank_cli_refuses_a_poisoned_run(copied, trained_profile, tmp_path, capsys):
    from lib.rank import main

    profile, marker = copied
    _, ds = trained_profile
    _poison(_stage(profile, "ftwa", "default", "train") / "model.pt", marker)
    sp = ds.split(0)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for g in sp.gallery[:3]:
        (gallery / g.hr_path.name).write_bytes(g.hr_path.read_bytes())
    code = main(["--run", str(profile / "runs" / "ftwa" / "synthetic" / "variants" / "default" / "split0"),
                 "--query", str(sp.query[0].path), "--gallery", str(gallery), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "model.pt" in err and "refused" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "r.csv").exists()


def test_explorer_refuses_a_poisoned_run(copied):
    from lib.explorer import ExplorerData

    profile, marker = copied
    _poison(_stage(profile, "ftwa", "default", "train") / "model.pt", marker)
    data = ExplorerData(profile)
    with pytest.raises(RunLoadError, match="refused"):
        data.loaded("ftwa/default/ftwa", "synthetic", 0)
    assert not marker.exists()


def test_robustness_sweep_skips_a_poisoned_run_and_says_why(copied):
    from lib.robustness import sweep

    profile, marker = copied
    model = _stage(profile, "ftwa", "default", "train") / "model.pt"
    _poison(model, marker)
    frame, skipped = sweep(profile, outputs=["ftwa/default/ftwa"], rates=[2], progress=False)
    assert frame.empty and any(str(model) in why and "refused" in why for why in skipped.values()), skipped
    assert not marker.exists()


def _train(profile: Path, capsys) -> tuple[int | None, str]:
    from lib.train import main

    try:
        code = main([*FTWA_ARGS, "--output-root", str(profile.parent)])
    except UnsafeCheckpointError as e:  # a traceback is acceptable for a tampered file; the message must name it
        return None, str(e)
    return code, capsys.readouterr().err


def test_train_reuse_and_resume_refuse_poisoned_checkpoints(copied, capsys):
    profile, marker = copied
    stage = _stage(profile, "ftwa", "default", "train")
    # reuse: the finished run's model.pt
    _poison(stage / "model.pt", marker)
    code, err = _train(profile, capsys)
    assert code != 0 and str(stage / "model.pt") in err and "refused" in err
    # resume: a killed run (no model.pt / metrics.json) with a poisoned checkpoints/last.pt
    (stage / "model.pt").unlink()
    (stage / "metrics.json").unlink()
    _poison(stage / "checkpoints" / "last.pt", marker)
    code, err = _train(profile, capsys)
    assert code != 0 and str(stage / "checkpoints" / "last.pt") in err and "refused" in err
    assert not marker.exists()


# ------------------------------------------------------------------------------- what the workbook writes
def test_every_file_the_workbook_writes_loads_with_the_plain_safe_loader(trained_profile):
    """New checkpoints hold tensors and plain containers only: no allow-list needed (not even the legacy one)."""
    profile, _ = trained_profile
    files = sorted(profile.rglob("*.pt"))
    assert any(f.name == "last.pt" for f in files) and any(f.name == "model.pt" for f in files)
    for f in files:
        torch.load(f, map_location="cpu", weights_only=True)


def test_a_checkpoint_written_before_the_change_still_loads_and_resumes_the_rngs(tmp_path):
    """The old form: numpy's RNG state as an ndarray, numpy numbers in the history (what ``rng_state`` wrote)."""
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    old = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    path = tmp_path / "last.pt"
    torch.save({"epoch": 3, "rng": old, "history": [{"loss": np.float64(0.5), "steps": np.int64(2)}]}, path)
    expected = (np.random.rand(4), random.random(), torch.rand(2))
    np.random.seed(0)
    random.seed(0)
    st = load_checkpoint(path)
    set_rng_state(st["rng"])
    assert np.array_equal(np.random.rand(4), expected[0]) and random.random() == expected[1]
    assert torch.equal(torch.rand(2), expected[2])
    assert float(st["history"][0]["loss"]) == 0.5


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    np.random.seed(11)
    np.random.rand(5)
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    expected = np.random.rand(6)
    np.random.seed(0)
    st = torch.load(io.BytesIO((tmp_path / "c.pt").read_bytes()), weights_only=True)  # no allow-list at all
    set_rng_state(st["rng"])
    assert np.array_equal(np.random.rand(6), expected)


def test_a_checkpoint_written_with_numpy_1_still_loads(tmp_path):
    """numpy < 2 pickles its arrays as ``numpy.core.multiarray._reconstruct``: the same function, allowed by name."""
    import zipfile

    buf = io.BytesIO()
    torch.save({"rng": {"numpy": np.random.get_state()}, "history": [np.float64(0.25)]}, buf)
    path = tmp_path / "last.pt"
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info.filename, data)
    st = load_checkpoint(path)
    assert st["rng"]["numpy"][1].dtype == np.uint32 and float(st["history"][0]) == 0.25
