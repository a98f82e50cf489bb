"""G's restoration logged after every epoch (issue #20 §1): a run's history shows whether G left its input."""

from __future__ import annotations

import csv

import pytest

from lib.methods import METHODS, load_config, run_variant

SHORT = {"runtime.max_steps_per_epoch": 2, "phase1.epochs": 1, "phase2.epochs": 2}


def _history(run) -> list[dict]:
    with open(run.run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_phase2_history_logs_g_against_its_input_every_epoch(tiny, tmp_path):
    _, ds = tiny
    cfg = load_config("configs/pshrnet/tiny.yaml", SHORT)
    _, runs = run_variant(METHODS.get("pshrnet"), cfg, ds=ds, split=0, root=tmp_path / "runs", progress=False,
                          outputs=["pshrnet"])
    rows = _history(runs["phase2"])
    assert len(rows) == 2
    for r in rows:
        assert 5 < float(r["g_psnr"]) < 60 and 0 < float(r["g_ssim"]) <= 1
    assert rows[0]["input_psnr"] == rows[1]["input_psnr"]  # the input does not change while G trains
    assert "g_psnr" not in _history(runs["phase1"])[0]  # no G in phase 1
    # the monitor only observes: switching it off neither changes the run's identity nor what it trained
    off = load_config("configs/pshrnet/tiny.yaml", SHORT | {"runtime.monitor_images": 0})
    _, again = run_variant(METHODS.get("pshrnet"), off, ds=ds, split=0, root=tmp_path / "runs2", progress=False,
                           outputs=["pshrnet"])
    assert again["phase2"].run_dir.name == runs["phase2"].run_dir.name
    assert again["phase2"].metrics["lr"]["rank1"] == runs["phase2"].metrics["lr"]["rank1"]
    assert "g_psnr" not in _history(again["phase2"])[0]


def test_monitor_images_must_not_be_negative():
    with pytest.raises(ValueError, match="monitor_images"):
        load_config("configs/pshrnet/tiny.yaml", {"runtime.monitor_images": -1})
