"""Hostile names and confusing errors (issue #19): a profile, variant or table name never sends a write outside
``OUTPUT_ROOT``; a user's mistake names the right file, key or override, without a traceback.

Every entry point is called in-process (``main(argv)``); the name checks come before any work, and the work itself
(building a dataset, running a notebook) is replaced by a function that fails loudly, so nothing trains here.
"""

from __future__ import annotations

import errno
import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import lib.workflow
from lib.core import ConfigError
from lib.utils import io as io_mod
from lib.utils.io import atomic_write_text
from tests.conftest import write_image

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_01 = str(REPO / "notebooks" / "01_dataset_synthesis.ipynb")


def _script(name: str):
    """``scripts/<name>.py`` as a module (its ``main(argv)`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _work_started(*args, **kwargs):
    raise AssertionError("work started (a dataset was located or a notebook run) before the name was checked")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """``(tmp_path, OUTPUT_ROOT, hostile names, snapshot())``: OUTPUT_ROOT is ``tmp_path/root/out``; ``snapshot()``
    lists every path under ``tmp_path`` outside OUTPUT_ROOT (``../x`` and the absolute name land there)."""
    out = tmp_path / "root" / "out"
    out.mkdir(parents=True)
    monkeypatch.setattr(lib.workflow, "locate_dataset", _work_started)
    monkeypatch.setattr(lib.workflow, "prepare_dataset", _work_started)
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", _work_started)
    hostile = ["..", "../x", str(tmp_path / "abs" / "x"), "", ".hidden"]

    def snapshot() -> set[Path]:
        return {p for p in tmp_path.rglob("*") if p != out and out not in p.parents}

    return tmp_path, out, hostile, snapshot


def _profile_files(tmp_path: Path, out: Path) -> list[str]:
    """Profile files whose stem is not a name (``...yaml``: stem ``..``; ``.hidden.yaml``), each a valid profile
    otherwise, writing under ``out`` (every section the tests run sets OUTPUT_ROOT)."""
    text = (f"_all: {{OUTPUT_ROOT: {out}}}\n01_dataset_synthesis: {{DATASET: synthetic}}\n"
            f"05_ablation_losses: {{DATASETS: [synthetic]}}\n"
            f"02_phase1_hr_reid: {{DATASETS: [synthetic], CONFIG: configs/pshrnet/tiny.yaml}}\n")
    files = []
    for name in ("...yaml", ".hidden.yaml"):
        (tmp_path / "root" / name).write_text(text)
        files.append(str(tmp_path / "root" / name))
    return files


# ------------------------------------------------------------------------------------------------ 1. names
@pytest.mark.parametrize("good", ["tiny", "paper_gpu", "cpu-2", "v1.5", "ps_seq1_lc", "a+b", "9"])
def test_check_name_accepts_plain_names(good):
    from lib.utils.paths import check_name

    assert check_name(good, "PROFILE") == good


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", "/abs/x", ".hidden", "-x", "a\0b", "a b",
                                 "x" * 200, None, 3])
def test_check_name_refuses_what_is_not_one_plain_name(bad):
    from lib.utils.paths import BadNameError, check_name

    with pytest.raises(BadNameError, match=r"--variant: .*(not a valid name|expected a name)"):
        check_name(bad, "--variant")


def test_library_entry_points_refuse_hostile_names(sandbox):
    """The notebooks' way in (``output_dir``, ``run_experiment``'s variants, tables, summaries) refuses every name
    that is not one path component, before anything is read or written."""
    from lib.results import load_table_spec, summary_path
    from lib.results.tables import write_table
    from lib.workflow import make_table, output_dir, run_experiment

    tmp_path, out, hostile, snapshot = sandbox
    before = snapshot()
    params = {"OUTPUT_ROOT": str(out), "DATASETS": ["synthetic"], "CONFIG": "configs/pshrnet/tiny.yaml"}
    for bad in hostile:
        with pytest.raises(ValueError, match="PROFILE: .*not a valid name"):
            output_dir({**params, "PROFILE": bad})
        with pytest.raises(ValueError, match="variant: .*not a valid name"):
            run_experiment({**params, "PROFILE": "tiny"}, {bad: {}}, {bad: ["pshrnet"]}, progress=False)
        with pytest.raises(ValueError, match="table: .*not a valid name"):
            load_table_spec(bad)
        with pytest.raises(ValueError, match="table: .*not a valid name"):
            make_table({**params, "PROFILE": "tiny"}, bad)
        with pytest.raises(ValueError, match="table: .*not a valid name"):
            write_table(None, "", out / "tiny", bad)
        with pytest.raises(ValueError, match="variant: .*not a valid name"):
            summary_path(out / "tiny", "pshrnet", "synthetic", bad)
    assert snapshot() == before
    assert output_dir({**params, "PROFILE": "tiny"}) == out / "tiny"


def test_command_lines_refuse_hostile_names_before_any_work(sandbox, capsys):
    """``lib.train``, ``scripts/run_table.py``, ``scripts/tune.py``, ``lib.robustness`` and ``lib.workbook`` (run, reproduce, check):
    a clear ``error:`` naming the option, a failing exit status, and no file or folder outside OUTPUT_ROOT."""
    from lib.robustness import main as robustness
    from lib.train import main as train
    from lib.workbook import main as workbook
    from lib.workbook import resolve_run

    tmp_path, out, hostile, snapshot = sandbox
    run_table, tune = _script("run_table"), _script("tune")
    tune.locate_dataset = _work_started  # tune imported it by name
    files = _profile_files(tmp_path, out)
    before = snapshot()
    train_args = ["--config", "configs/pshrnet/tiny.yaml", "--dataset", "synthetic", "--output-root", str(out),
                  "--no-progress"]
    calls = []
    for bad in hostile:
        calls += [
            ("--profile", lambda b=bad: train([*train_args, "--profile", b])),
            ("--variant", lambda b=bad: train([*train_args, "--variant", b])),
            ("--profile", lambda b=bad: run_table.main(["table2", "--output-root", str(out), "--profile", b])),
            ("--variants", lambda b=bad: run_table.main(["table2", "--output-root", str(out), "--variants", "default", b])),
            ("table", lambda b=bad: run_table.main([b, "--output-root", str(out)])),
            ("--profile", lambda b=bad: robustness(["--profile", b, "--output-root", str(out)])),
            ("--name", lambda b=bad: tune.main(["--profile", "tiny", "--dataset", "synthetic", "--output-root", str(out),
                                                "--name", b, "--quiet"])),
            ("--dataset", lambda b=bad: tune.main(["--profile", "tiny", "--collect", "--output-root", str(out),
                                                   "--dataset", b])),
        ]
    for bad in [*hostile, *files]:
        calls += [
            ("profile", lambda b=bad: tune.main(["--profile", b, "--dataset", "synthetic", "--output-root", str(out),
                                                 "--name", "t1", "--quiet"])),
            ("profile", lambda b=bad: workbook(["run", NOTEBOOK_01, "--profile", b])),
            ("profile", lambda b=bad: workbook(["reproduce", "--profile", b, "--data-root", "synthetic", "--tables", "2"])),
            ("profile", lambda b=bad: workbook(["check", "--profile", b])),
        ]
    for what, call in calls:
        rc = call()
        err = capsys.readouterr().err
        assert rc not in (0, None), (what, err)
        assert "error:" in err and what in err and "not a valid name" in err, (what, err)
        assert "Traceback" not in err, err
    for f in files:
        with pytest.raises(ValueError, match="profile.*not a valid name"):
            resolve_run(NOTEBOOK_01, f, output_root=out)
    assert snapshot() == before, sorted(map(str, snapshot() - before))


# ------------------------------------------------------------------------------------------------ 2a. whose value
def test_a_bad_value_is_reported_from_the_file_or_override_that_set_it(tmp_path, capsys):
    from lib.methods import load_config
    from lib.train import main as train
    from lib.workflow import experiment_config

    mine = tmp_path / "mine.yaml"
    mine.write_text(f"_base_: {REPO}/configs/pshrnet/paper.yaml\nphase1:\n  epochs: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(mine)
    assert "mine.yaml" in str(info.value) and "paper.yaml" not in str(info.value), str(info.value)
    assert "phase1" in str(info.value) and "epochs" in str(info.value) and info.value.key == "phase1.epochs"
    # a value that the base really set is still traced to it (not to the first key of its section)
    (tmp_path / "base.yaml").write_text(f"_base_: {REPO}/configs/pshrnet/paper.yaml\nphase1: {{epochs: -1}}\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\nseed: 1\nphase1: {lr: 0.01}\n")
    with pytest.raises(ConfigError, match=r"child.yaml.*epochs.*the value comes from .*base.yaml"):
        load_config(tmp_path / "child.yaml")
    # an override (notebook OVERRIDES, --set) is named as such
    with pytest.raises(ConfigError, match=r"override phase1\.epochs=-1\b.*epochs: expected ≥ 1, found -1") as info:
        experiment_config({"CONFIG": "configs/pshrnet/paper.yaml", "OVERRIDES": {"phase1.epochs": -1}})
    assert "comes from" not in str(info.value)
    with pytest.raises(ConfigError, match=r"override phase1\.epochs=-1\b"):
        experiment_config({"CONFIG": str(mine), "OVERRIDES": {"phase1.epochs": -1}})
    # the same from the command line: exit status 2, the right file or override, no traceback
    common = ["--dataset", "synthetic", "--output-root", str(tmp_path / "out")]
    assert train(["--config", str(mine), *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mine.yaml" in err and "paper.yaml" not in err, err
    assert train(["--config", "configs/pshrnet/paper.yaml", *common, "--set", "phase1.epochs=-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "override phase1.epochs=-1" in err, err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ 2b. a full disk
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("where", ["open", "write"])
def test_a_failed_write_names_the_destination(tmp_path, monkeypatch, code, where):
    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(code, os.strerror(code))

    def fdopen(fd, *args, **kwargs):
        if where == "open":
            os.close(fd)
            raise OSError(code, os.strerror(code))
        return Full(real(fd, *args, **kwargs))

    monkeypatch.setattr(io_mod.os, "fdopen", fdopen)
    dest = tmp_path / "results" / "summary.json"
    with pytest.raises(OSError) as info:
        atomic_write_text(dest, "{}")
    assert info.value.errno == code and str(dest) in str(info.value), str(info.value)
    assert type(info.value) is type(OSError(code, "x"))  # the same subclass (PermissionError for EACCES …)
    assert os.strerror(code) in str(info.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # the temporary file is removed


# ------------------------------------------------------------------------------------------------ 2c. lib.rank --out
def _images(tmp_path: Path) -> tuple[str, str]:
    q = write_image(tmp_path / "q" / "a.png")
    for i in range(3):
        write_image(tmp_path / "g" / f"g{i}.png", seed=i + 1)
    return str(q.parent), str(tmp_path / "g")


def test_rank_checks_that_out_can_be_written_before_loading_the_run(tmp_path, monkeypatch, capsys):
    import lib.rank
    from lib.rank import main

    queries, gallery = _images(tmp_path)
    monkeypatch.setattr(lib.rank, "load_run", _work_started)  # the run must not be loaded first
    (tmp_path / "a_file").write_text("a regular file, not a folder")
    for out in (tmp_path / "a_file" / "ranked.csv", tmp_path / "a_file" / "deeper" / "list.png"):
        assert main(["--run", str(tmp_path / "run"), "--query", queries, "--gallery", gallery, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "error:" in err and "--out" in err and str(tmp_path / "a_file") in err and "cannot write" in err, err
    folder = tmp_path / "ranked.csv"
    folder.mkdir()
    assert main(["--run", str(tmp_path / "run"), "--query", queries, "--gallery", gallery, "--out", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    # the check creates nothing: a run that fails later leaves no empty --out folders behind
    with pytest.raises(AssertionError, match="work started"):  # reached load_run: the check passed
        main(["--run", str(tmp_path / "run"), "--query", queries, "--gallery", gallery,
              "--out", str(tmp_path / "new" / "deep" / "r.csv")])
    assert not (tmp_path / "new").exists()


def test_rank_reports_a_failed_final_write_without_a_traceback(tmp_path, monkeypatch, capsys):
    import lib.rank
    from lib.rank import main

    queries, gallery = _images(tmp_path)
    write_image(tmp_path / "q" / "b.png", seed=9)  # two queries: the CSV only
    fake = (SimpleNamespace(method=SimpleNamespace(name="pshrnet"), run_dir=tmp_path / "run"),
            SimpleNamespace(name="pshrnet", size=(32, 16)), np.arange(6, dtype=float).reshape(2, 3), None)
    monkeypatch.setattr(lib.rank, "rank", lambda *a, **k: fake)

    def full(fd, *args, **kwargs):  # the disk fills up between the check and the write
        os.close(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io_mod.os, "fdopen", full)
    out = tmp_path / "res" / "ranked.csv"
    rc = main(["--run", str(tmp_path / "run"), "--query", queries, "--gallery", gallery, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc not in (0, None) and "error:" in err and str(out) in err and os.strerror(errno.ENOSPC) in err, err
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ 2d. no traceback
def test_command_line_mistakes_print_an_error_and_exit_2(tmp_path, monkeypatch, capsys):
    from lib.train import main as train
    from lib.workbook import main as workbook

    monkeypatch.setattr(lib.workflow, "locate_dataset", _work_started)
    run_table, tune = _script("run_table"), _script("tune")
    tune.locate_dataset = _work_started
    out = str(tmp_path / "out")
    bad_type = tmp_path / "badtype.yaml"
    bad_type.write_text("02_phase1_hr_reid: {SEED: abc, CONFIG: configs/pshrnet/tiny.yaml}\n")
    cases = [
        ("nosuch", lambda: run_table.main(["table2", "--output-root", out, "--set", "nosuch.key=1"])),
        ("nosuch", lambda: train(["--config", "configs/pshrnet/tiny.yaml", "--dataset", "synthetic",
                                  "--output-root", out, "--set", "nosuch.key=1"])),
        ("nosuch", lambda: tune.main(["--profile", "tiny", "--dataset", "synthetic", "--output-root", out,
                                      "--name", "t1", "--quiet", "--set", "nosuch.key=1"])),
        ("nope.yaml", lambda: run_table.main(["table2", "--output-root", out, "--config", "configs/nope.yaml"])),
        ("nope.yaml", lambda: train(["--config", "configs/nope.yaml", "--dataset", "synthetic", "--output-root", out])),
        ("unknown variant", lambda: run_table.main(["table2", "--output-root", out, "--variants", "nosuch"])),
        ("no_table", lambda: run_table.main(["no_table", "--output-root", out])),
        ("no_profile", lambda: tune.main(["--profile", "no_profile", "--name", "t1", "--output-root", out])),
        ("SEED must be int", lambda: tune.main(["--profile", str(bad_type), "--dataset", "synthetic", "--name", "t1",
                                                "--output-root", out, "--quiet"])),
        ("SEED must be int", lambda: workbook(["check", "--profile", str(bad_type)])),
    ]
    for piece, call in cases:
        assert call() == 2, piece
        err = capsys.readouterr().err
        assert err.startswith("error: ") and piece in err and "Traceback" not in err, (piece, err)
    assert not (tmp_path / "out").exists()
    # a real bug (here: the dataset step failing) keeps its traceback
    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(lib.workflow, "locate_dataset", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        run_table.main(["table2", "--output-root", out])
