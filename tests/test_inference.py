"""Trained runs outside the tables: load_run rebuilds a run from its folder; a Matcher reproduces its test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lib.inference import QuerySource, RunLoadError, by_label, find_runs, load_run, output_runs
from lib.methods.ftwa.matching import MATCHES


def _by_label(profile):
    return {k: (r.entry, r.output) for k, r in by_label(output_runs(profile, "synthetic", 0)).items()}


def test_output_runs_lists_each_lr_output_of_the_finished_runs(trained_profile):
    profile, _ = trained_profile
    labels = set(_by_label(profile))
    assert {"pshrnet/default/pshrnet", "pshrnet/default/teacher_lr", "pshrnet/default/baseline",
            "pshrnet/solo_sr/solo_sr", "ftwa/default/ftwa"} <= labels
    assert not any(label.endswith("teacher_hr") for label in labels)  # HR queries are not the cross-resolution test
    assert all(e.finished for e in find_runs(profile))


@pytest.mark.parametrize("label", ["pshrnet/default/pshrnet", "pshrnet/default/teacher_lr", "pshrnet/default/baseline",
                                   "pshrnet/solo_sr/solo_sr", "pshrnet/teacher_init/pshrnet", "ftwa/default/ftwa"])
def test_a_loaded_run_reproduces_its_recorded_test(trained_profile, label):
    profile, ds = trained_profile
    entry, output = _by_label(profile)[label]
    run = load_run(entry.path)
    m = run.matcher(output)
    r = m.evaluate(ds.split(0), protocol=ds.eval_protocol, num_repeats=run.cfg.test.num_repeats, seed=run.cfg.seed)
    rec = run.metrics["lr"]
    assert r["rank1"] == pytest.approx(rec["rank1"]) and r["mAP"] == pytest.approx(rec["mAP"], abs=1e-6)
    assert r["cmc"] == pytest.approx(rec["cmc"], abs=1e-6)
    if run.method.name == "ftwa":  # every matching, not only the chosen one
        for match in MATCHES:
            m.match = match
            r = m.evaluate(ds.split(0), protocol=ds.eval_protocol, num_repeats=10, seed=run.cfg.seed)
            assert r["rank1"] == pytest.approx(rec[f"match_{match}_rank1"]), match
    restored = m.restore(ds.split(0).query[:2])
    if output in ("pshrnet", "solo_sr"):
        assert restored.shape == (2, *run.cfg.data.size, 3) and restored.dtype == np.uint8
    else:
        assert restored is None


def test_output_runs_keeps_every_dataset_and_split(tmp_path):
    """Labels repeat across datasets and splits: each (dataset, split, label) is its own entry."""
    for ds in ("viper", "caviar"):
        for k in (0, 1):
            stage = tmp_path / "runs" / "pshrnet" / ds / "stages" / f"split{k}" / "phase1-0123"
            stage.mkdir(parents=True)
            (stage / "model.pt").write_bytes(b"")
            (stage / "metrics.json").write_text("{}")
            link = tmp_path / "runs" / "pshrnet" / ds / "variants" / "default" / f"split{k}" / "phase1"
            link.parent.mkdir(parents=True)
            link.symlink_to(stage)
    runs = output_runs(tmp_path)
    assert [(r.dataset, r.split, r.label) for r in runs] == [
        (d, k, "pshrnet/default/teacher_lr") for d in ("caviar", "viper") for k in (0, 1)]
    assert len(output_runs(tmp_path, "viper")) == 2 and len(output_runs(tmp_path, "viper", 1)) == 1
    with pytest.raises(ValueError, match="several datasets"):
        by_label(runs)
    from lib.explorer import ExplorerData

    data = ExplorerData(tmp_path)
    assert data.datasets() == ["caviar", "viper"] and data.splits("viper") == [0, 1]


def test_query_sources_remake_queries_from_their_hr_originals(trained_profile):
    profile, ds = trained_profile
    entry, output = _by_label(profile)["pshrnet/default/pshrnet"]
    m = load_run(entry.path).matcher(output)
    q = ds.split(0).query[:3]
    stored, r1, r8 = (m.embed_queries(q, QuerySource(r)) for r in (None, 1, 8))
    assert stored.shape == r1.shape == r8.shape
    assert not np.allclose(r1.numpy(), r8.numpy())  # r = 8 (never trained on) is another input
    same = m.embed_queries(q, QuerySource(q[0].r))  # the stored query is its HR original down-sampled by its r
    assert np.allclose(same[0].numpy(), stored[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="int ≥ 1"):
        QuerySource(0)


def test_load_run_errors_name_the_folder_and_what_to_do(trained_profile, tmp_path):
    profile, _ = trained_profile
    with pytest.raises(RunLoadError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    killed = tmp_path / "phase2-0123456789ab"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(RunLoadError, match="model.pt and metrics.json missing.*resume"):
        load_run(killed)
    entry, _ = _by_label(profile)["ftwa/default/ftwa"]
    bad = tmp_path / "train-bad"
    bad.mkdir()
    (bad / "model.pt").write_bytes((entry.path / "model.pt").read_bytes())
    rec = json.loads((entry.path / "metrics.json").read_text())
    rec["run"]["method"] = "nope"
    (bad / "metrics.json").write_text(json.dumps(rec))
    with pytest.raises(RunLoadError, match="method 'nope' is not registered"):
        load_run(bad)
    with pytest.raises(RunLoadError, match="not produced by stage"):
        load_run(entry.path).matcher("pshrnet")
