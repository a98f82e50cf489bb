"""The explorer (notebook 13), the resolution sweep (notebook 14), ``python -m lib.rank`` and terminal progress —
driven from Python on short real runs (``trained_profile``)."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from lib.utils.progress import ENV, ProgressTail, epoch_line, format_seconds, report
from lib.explorer import Explorer, ExplorerData
from lib.inference import by_label, load_run, output_runs
from lib.metrics import evaluate_ranking, rank_query


def _png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# ------------------------------------------------------------------------------------------------ ranking of one query
def test_rank_query_agrees_with_evaluate_ranking():
    rng = np.random.default_rng(0)
    d = rng.random((5, 12)).astype(np.float32)
    qp, qc = np.array([0, 1, 2, 3, 9]), np.array([0, 0, 1, 1, 0])
    gp, gc = rng.integers(0, 4, 12), rng.integers(0, 2, 12)
    full = evaluate_ranking(d, qp, gp, qc, gc, max_rank=12)
    per = [rank_query(d[i], qp[i], qc[i], gp, gc) for i in range(5)]
    valid = [r for r in per if r["first_match"] is not None]
    assert full["num_valid_queries"] == len(valid)
    assert np.mean([r["ap"] for r in valid]) == pytest.approx(full["mAP"])
    assert np.mean([r["first_match"] == 1 for r in valid]) == pytest.approx(full["cmc"][0])
    r = per[0]
    assert not ((gp[r["order"]] == 0) & (gc[r["order"]] == 0)).any()  # junk (same id, same camera) removed
    assert list(np.diff(d[0][r["order"]]) >= 0) == [True] * (len(r["order"]) - 1)


# ------------------------------------------------------------------------------------------------ explorer
def test_explorer_shows_what_its_controls_select(trained_profile):
    profile, ds = trained_profile
    ex = Explorer(profile.parent, profile.name, method="pshrnet/default/pshrnet", top_k=5)
    assert ex.dataset.value == "synthetic" and ex.split.value == 0
    assert "pshrnet/default/pshrnet" in ex.method.options and "ftwa/default/ftwa" in ex.method.options
    v = ex.view
    sp = ds.split(0)
    q = sp.query[v.query_index]
    assert v.lr.shape[:2] == np.asarray(Image.open(q.path)).shape[:2]  # the stored LR query at its true size
    assert len(v.top) == 5 and all(m == (pid == q.pid) for _, pid, m, _ in v.top)
    dists = [d for *_, d in v.top]
    assert dists == sorted(dists)
    assert (v.first_match is None or v.first_match >= 1) and 0 <= v.ap <= 1
    assert "pshrnet/default/pshrnet" in v.restorations  # the output's own SR module, with its PSNR
    img, psnr = v.restorations["pshrnet/default/pshrnet"]
    assert img.shape == v.upsampled.shape and psnr is not None and psnr > 5
    for w in (ex.query_image, ex.ranking_image, ex.cmc_image):
        assert _png(w.value).size[0] > 200  # a picture is shown
    assert v.summary in ex.status.value
    # the resolution control re-makes the query from its HR original
    ex.rate.value = 8
    q8 = sp.query[ex.view.query_index]
    hr = np.asarray(Image.open(q8.hr_path))
    assert ex.view.rate == 8 and ex.view.lr.shape[:2] == (round(hr.shape[0] / 8), round(hr.shape[1] / 8))
    # hardest first: the APs of the shown order never decrease
    ex.order.value = "hardest first"
    aps = []
    for i in range(min(4, ex.query.max + 1)):
        ex.query.value = i
        aps.append(ex.view.ap)
    assert aps == sorted(aps)
    # another method: FTWA has no SR module, the view follows the control
    ex.method.value = "ftwa/default/ftwa"
    assert ex.view.label == "ftwa/default/ftwa" and "ftwa/default/ftwa" not in ex.view.restorations
    ex.top_k.value = 3
    assert len(ex.view.top) == 3
    assert ex.last_error is None and not ex.errors.outputs  # no callback above failed


def test_an_error_in_a_callback_is_shown_on_the_page(trained_profile, monkeypatch):
    profile, _ = trained_profile
    ex = Explorer(profile.parent, profile.name, method="pshrnet/default/pshrnet", top_k=5)
    shown = ex.ranking_image.value

    def broken(*args, **kwargs):
        raise RuntimeError("gallery file vanished: g_0007.png")

    monkeypatch.setattr(ex.data, "view", broken)
    ex.top_k.value = 4  # the observer runs refresh(), which raises: nothing propagates, the page says what happened
    assert isinstance(ex.last_error, RuntimeError)
    assert "RuntimeError" in ex.status.value and "gallery file vanished: g_0007.png" in ex.status.value
    (out,) = ex.errors.outputs
    assert out["name"] == "stderr" and "Traceback" in out["text"] and "g_0007.png" in out["text"]
    assert ex.ranking_image.value == shown  # the last pictures that worked stay
    monkeypatch.undo()
    ex.top_k.value = 3  # a callback that works clears the error
    assert ex.last_error is None and not ex.errors.outputs and len(ex.view.top) == 3


def test_explorer_data_ranks_like_the_runs_test(trained_profile):
    """The explorer's distances are the run's own test: their multi-shot scores equal a Matcher evaluation."""
    profile, ds = trained_profile
    data = ExplorerData(profile)
    sp = ds.split(0)
    assert ds.eval_protocol == "multi_shot"  # the explorer's full-gallery ranking is the synthetic set's protocol
    for label in ("pshrnet/default/baseline", "ftwa/default/ftwa"):
        run, _, _ = data.loaded(label, "synthetic", 0)
        d = data.distances(label, "synthetic", 0)
        assert d.shape == (len(sp.query), len(sp.gallery))
        aps = data.average_precisions(label, "synthetic", 0)
        assert np.mean(aps) == pytest.approx(run.metrics["lr"]["mAP"], abs=1e-6)  # what the run recorded
        firsts = [data.view(label, "synthetic", 0, i, top_k=1).first_match for i in range(len(sp.query))]
        assert np.mean([f == 1 for f in firsts]) == pytest.approx(run.metrics["lr"]["rank1"])


def test_explorer_errors_are_clear(tmp_path, trained_profile):
    with pytest.raises(FileNotFoundError, match="no trained run .*make demo"):
        Explorer(tmp_path, "tiny")
    profile, _ = trained_profile
    with pytest.raises(ValueError, match="profile 'cpu' has no trained run.*tiny"):
        Explorer(profile.parent, "cpu")


# ------------------------------------------------------------------------------------------------ robustness sweep
def test_a_sweep_of_a_misspelt_label_or_dataset_names_what_exists_and_writes_nothing(trained_profile, capsys):
    """``python -m lib.robustness --methods pshrnet/defualt/pshrnet`` (or ``--datasets viperr``): nothing matches, so
    it exits 1 with the labels / datasets that have runs, and an earlier ``tables/robustness.md`` is left as it was
    (before: exit 0 and the table overwritten with "No result")."""
    from lib.robustness import main as robustness, sweep

    profile, _ = trained_profile
    table = profile / "tables" / "robustness.md"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("an earlier sweep\n")
    root = ["--profile", profile.name, "--output-root", str(profile.parent), "--rates", "2"]
    assert robustness(root + ["--methods", "pshrnet/defualt/pshrnet"]) == 1
    err = capsys.readouterr().err
    assert "nothing was swept" in err and "pshrnet/defualt/pshrnet: no finished run of it" in err
    assert "labels with runs: " in err and "pshrnet/default/pshrnet" in err
    assert robustness(root + ["--datasets", "viperr"]) == 1
    assert "viperr: no finished run on this dataset in this profile (datasets with runs: synthetic)" in capsys.readouterr().err
    assert table.read_text() == "an earlier sweep\n" and not (profile / "tables" / "robustness.csv").exists()
    # one label that exists beside one that does not: swept, and the other listed with the labels that exist
    frame, skipped = sweep(profile, rates=[2], outputs=["pshrnet/default/teacher_lr", "pshrnet/defualt/pshrnet"],
                           progress=False)
    assert len(frame) == 1 and "labels with runs: " in skipped["pshrnet/defualt/pshrnet"]


def test_resolution_sweep_covers_every_rate_and_matches_the_hr_test(trained_profile, tmp_path):
    from lib.robustness import sweep, write_robustness

    profile, _ = trained_profile
    frame, skipped = sweep(profile, rates=range(1, 9), progress=False)
    assert sorted(frame.r.unique()) == list(range(1, 9))
    assert set(frame.method) == {"pshrnet/default/pshrnet", "pshrnet/default/baseline", "pshrnet/default/teacher_lr",
                                 "ftwa/default/ftwa"} and not skipped
    # r = 1 is the HR original: the teacher's HR→HR test, as its run recorded it
    e = by_label(output_runs(profile, "synthetic", 0))["pshrnet/default/teacher_lr"].entry
    hr = json.loads((e.path / "metrics.json").read_text())["metrics"]["hr"]
    t1 = frame[(frame.method == "pshrnet/default/teacher_lr") & (frame.r == 1)].iloc[0]
    assert t1.rank1 == pytest.approx(hr["rank1"]) and t1.mAP == pytest.approx(hr["mAP"], abs=1e-6)
    files = write_robustness(frame, skipped, tmp_path, "tiny", "make reproduce TABLES=robustness")
    md = (tmp_path / "tables" / "robustness.md").read_text()
    assert "| Method | r=1 | r=2* | r=3* | r=4* | r=5 | r=6 | r=7 | r=8 |" in md
    assert (tmp_path / "figures" / "robustness.png").is_file() and len(files) == 3
    cache = list((profile / "robustness" / "cache").glob("*.json"))
    assert len(cache) == 4  # one per (run, output); a rerun reads them
    again, skipped = sweep(profile, rates=[1, 8], outputs=["pshrnet/default/teacher_lr", "nope/x/y"], progress=False)
    assert len(again) == 2 and again.rank1.iloc[0] == pytest.approx(t1.rank1) and "nope/x/y" in skipped
    # a cached result is stamped with the run: another model.pt makes it stale (recomputed, not reused)
    c = next(p for p in cache if "phase1" in p.name)
    rec = json.loads(c.read_text())
    rec["results"]["1"]["rank1"] = -1.0
    c.write_text(json.dumps(rec))
    assert sweep(profile, rates=[1], outputs=["pshrnet/default/teacher_lr"], progress=False)[0].rank1.iloc[0] == -1.0
    rec["stamp"]["model"] = [0, 0]
    c.write_text(json.dumps(rec))
    assert sweep(profile, rates=[1], outputs=["pshrnet/default/teacher_lr"], progress=False)[0].rank1.iloc[0] == \
        pytest.approx(t1.rank1)


# ------------------------------------------------------------------------------------------------ python -m lib.rank
def test_rank_cli_writes_the_top_k_and_a_picture(trained_profile, tmp_path, capsys):
    from lib.rank import main

    profile, ds = trained_profile
    sp = ds.split(0)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for g in sp.gallery[:7]:
        (gallery / g.hr_path.name).write_bytes(g.hr_path.read_bytes())
    run = profile / "runs" / "pshrnet" / "synthetic" / "variants" / "default" / "split0"
    out = tmp_path / "res" / "ranked.png"
    assert main(["--run", str(run), "--query", str(sp.query[0].path), "--gallery", str(gallery), "--top", "5",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [float(r["distance"]) for r in rows] == sorted(float(r["distance"]) for r in rows)
    assert _png(out.read_bytes()).size[0] > 300
    # the CLI's distances are the run's: the same ranking as its Matcher on the same files
    stage = load_run(run / "phase2")
    from lib.rank import as_images, image_files

    files = image_files(gallery, "--gallery")
    d = stage.matcher("pshrnet").distances(as_images([sp.query[0].path]), as_images(files))[0]
    assert [r["gallery"] for r in rows] == [str(files[i]) for i in np.argsort(d, kind="stable")[:5]]
    # a folder of queries: CSV only
    qdir = tmp_path / "queries"
    qdir.mkdir()
    for q in sp.query[:2]:
        (qdir / q.path.name).write_bytes(q.path.read_bytes())
    assert main(["--run", str(run / "phase2"), "--query", str(qdir), "--gallery", str(gallery), "--top", "2",
                 "--out", str(tmp_path / "many.csv")]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "many.csv")))) == 4 and not (tmp_path / "many.png").exists()


def test_rank_cli_errors_name_the_problem(trained_profile, tmp_path, capsys):
    from lib.rank import main

    profile, ds = trained_profile
    q = str(ds.split(0).query[0].path)
    empty = tmp_path / "empty"
    empty.mkdir()
    run = str(profile / "runs" / "pshrnet" / "synthetic" / "variants" / "default" / "split0")
    assert main(["--run", run, "--query", q, "--gallery", str(empty)]) == 2
    assert "--gallery" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    assert main(["--run", run, "--query", q, "--gallery", str(bad)]) == 2
    assert "broken.png" in capsys.readouterr().err
    unfinished = tmp_path / "phase2-000000000000"
    (unfinished / "checkpoints").mkdir(parents=True)
    (unfinished / "checkpoints" / "last.pt").write_bytes(b"")
    gal = str(ds.split(0).gallery[0].hr_path.parent)
    assert main(["--run", str(unfinished), "--query", q, "--gallery", gal]) == 2
    err = capsys.readouterr().err
    assert "not a finished run" in err and "resume" in err
    # a split folder of the Solo SR variant ranks with Solo SR, not with the teacher it depends on
    from lib.rank import resolve_run

    stage, output = resolve_run(profile / "runs" / "pshrnet" / "synthetic" / "variants" / "solo_sr" / "split0")
    assert stage.name == "solo_sr" and output == "solo_sr"


# ------------------------------------------------------------------------------------------------ terminal progress
def test_progress_lines_reach_the_terminal_through_the_tail(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("WORKBOOK_QUIET", raising=False)
    report("nobody listens")  # no file: a no-op
    out = io.StringIO()
    with ProgressTail(tmp_path / "p.log", "02_phase1", interval=0.05, stream=out) as tail:
        assert os.environ[ENV] == str(tmp_path / "p.log")
        report(epoch_line("pshrnet/phase1 viper split 0 [default]", 3, 30, 1.2345, 12.0, 11.0))
    assert ENV not in os.environ
    assert out.getvalue() == "[02_phase1] pshrnet/phase1 viper split 0 [default] epoch 3/30 loss 1.234 12.0s/epoch ETA 4m57s\n"
    assert tail.lines == [out.getvalue()[len("[02_phase1] "):-1]]
    assert format_seconds(3700) == "1h01m" and format_seconds(59) == "59s"
    monkeypatch.setenv("CI", "true")
    quiet = io.StringIO()
    with ProgressTail(tmp_path / "q.log", "x", interval=0.05, stream=quiet):
        report("line")
    assert quiet.getvalue() == "" and (tmp_path / "q.log").read_text() == "line\n"  # quiet, but still logged


def test_bars_follow_ci_workbook_quiet_and_tqdm_disable(monkeypatch, capsys):
    from tqdm.auto import tqdm

    from lib.utils.progress import bars_off

    for var in ("CI", "WORKBOOK_QUIET", "TQDM_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    assert bars_off(True) is False and bars_off(False) is True
    for var, value in (("CI", "true"), ("WORKBOOK_QUIET", "1"), ("TQDM_DISABLE", "1")):
        monkeypatch.setenv(var, value)
        assert bars_off(True) is True, var
        list(tqdm(range(3), desc="should-not-show", disable=bars_off(True)))
        monkeypatch.setenv(var, "0")
        assert bars_off(True) is False, var
    assert "should-not-show" not in capsys.readouterr().err


@pytest.mark.slow
def test_a_training_run_reports_each_epoch(tiny, tmp_path, monkeypatch):
    from lib.methods import METHODS, load_config, run_variant

    _, ds = tiny
    log = tmp_path / "progress.log"
    monkeypatch.setenv(ENV, str(log))
    cfg = load_config("configs/ftwa/tiny.yaml", {"train.epochs": 2, "runtime.max_steps_per_epoch": 1})
    run_variant(METHODS.get("ftwa"), cfg, ds=ds, split=0, root=tmp_path / "runs", progress=False)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("ftwa/train synthetic split 0 [default]: training train-")
    assert [ln.split(" epoch ")[1].split()[0] for ln in lines if " epoch " in ln] == ["1/2", "2/2"]
    assert "ETA" in lines[1] and lines[-1].startswith("ftwa/train synthetic split 0 [default]: done in")
    run_variant(METHODS.get("ftwa"), cfg, ds=ds, split=0, root=tmp_path / "runs", progress=False)
    assert "reusing the finished run" in log.read_text().splitlines()[-2]


def test_notebook_defaults_match_the_library():
    from lib.robustness import DEFAULT_OUTPUTS, DEFAULT_RATES
    from lib.workbook import notebook_parameters

    p14 = notebook_parameters("notebooks/14_resolution_robustness.ipynb")
    assert p14["METHODS"] == list(DEFAULT_OUTPUTS) and p14["QUERY_RATES"] == list(DEFAULT_RATES)
    p13 = notebook_parameters("notebooks/13_explorer.ipynb")
    assert p13["QUERY_RATE"] == 0 and p13["ORDER"] in ("as listed", "hardest first")


def test_tails_closed_out_of_order_leave_the_environment_as_before(tmp_path, monkeypatch):
    """Two reproductions in two threads of one process (tests/test_workbook.py) open tails that may close in any
    order: the variable names the newest open one, and is gone once both are closed."""
    monkeypatch.delenv(ENV, raising=False)
    a = ProgressTail(tmp_path / "a.log", "a", interval=0.05, stream=io.StringIO())
    b = ProgressTail(tmp_path / "b.log", "b", interval=0.05, stream=io.StringIO())
    a.__enter__()
    b.__enter__()
    try:
        assert os.environ[ENV] == str(tmp_path / "b.log")
    finally:
        a.__exit__(None, None, None)
    try:
        assert os.environ[ENV] == str(tmp_path / "b.log")
    finally:
        b.__exit__(None, None, None)
    assert ENV not in os.environ
    monkeypatch.setenv(ENV, "outer.log")
    with ProgressTail(tmp_path / "c.log", "c", interval=0.05, stream=io.StringIO()):
        assert os.environ[ENV] == str(tmp_path / "c.log")
    assert os.environ[ENV] == "outer.log"
