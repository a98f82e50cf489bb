"""Issue #23 §2: a third method, registered from outside ``lib/`` (``tests/third_method``), runs through a table,
:func:`lib.inference.load_run`, the explorer's data layer, the resolution sweep and ``python -m lib.rank`` — with
no edit to any file under ``lib/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.methods import METHODS, PLUGINS_ENV, import_plugins

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # it trains two runs and starts two processes


@pytest.fixture(scope="module")
def toy():
    """The toy method registered for this module's tests, and unregistered after them (other tests see only
    the workbook's own methods)."""
    sys.modules.pop("tests.third_method", None)
    import_plugins("tests.third_method")
    yield METHODS.get("toy")
    METHODS.unregister("toy")
    sys.modules.pop("tests.third_method", None)


@pytest.fixture(scope="module")
def toy_table(toy, tmp_path_factory):
    """The toy method's table on the synthetic data, 1 split: ``(params, profile dir, long frame, markdown)``."""
    from lib.workflow import make_table, run_table

    out = tmp_path_factory.mktemp("toy")
    params = {"PROFILE": "t", "OUTPUT_ROOT": str(out), "DATASETS": ["synthetic"], "SEED": 0, "SPLITS": [0],
              "CONFIG": "tests/third_method/tiny.yaml", "VARIANTS": ["narrow", "wide"],
              "OVERRIDES": {"runtime.device": "cpu", "runtime.max_steps_per_epoch": 2, "test.num_repeats": 1},
              "SYN_NUM_IDENTITIES": 12, "SYN_HEIGHT": 64, "SYN_WIDTH": 32}
    exp, spec, rows = run_table(params, "toy_table", progress=False)
    assert exp.method == "toy" and [r.variant for r in rows] == ["narrow", "wide"]
    long, md, _ = make_table(params, "toy_table")
    return params, out / "t", long, md


def test_the_third_method_makes_its_table(toy_table):
    params, profile, long, md = toy_table
    assert "Toy table — two widths" in md and "Toy, width 8" in md and "Toy, width 16" in md
    ours = long[long.source == "reproduced"]
    assert set(ours.row) == {"Toy, width 8", "Toy, width 16"} and set(ours.dataset) == {"synthetic"}
    assert (profile / "tables" / "toy_table.md").read_text() == md
    # the effect against the reference variant comes with its interval, computed from the runs' per-query records
    assert "Effect of each variant" in md and len(long[long.source == "effect"]) >= 1


def test_load_run_rebuilds_it_with_its_stage_hook(toy_table):
    from lib.inference import load_run

    _, profile, _, _ = toy_table
    run = load_run(profile / "runs" / "toy" / "synthetic" / "variants" / "wide" / "split0" / "train")
    assert run.method.name == "toy" and run.cfg.model.width == 16 and type(run.cfg).__name__ == "ToyConfig"
    sp = run.split()
    d = run.matcher("toy").distances(sp.query[:2], sp.gallery[:3])
    assert d.shape == (2, 3)


def test_the_explorer_and_the_sweep_see_it(toy_table):
    from lib.explorer import ExplorerData
    from lib.robustness import default_outputs, sweep

    _, profile, _, _ = toy_table
    data = ExplorerData(profile)
    outs = data.outputs("synthetic", 0)
    assert {"toy/narrow/toy", "toy/wide/toy"} <= set(outs)
    assert data.distances("toy/wide/toy", "synthetic", 0).shape[0] == len(data.loaded("toy/wide/toy", "synthetic", 0)[2].query)
    assert "toy/default/toy" in default_outputs()  # its headline, though this profile has no default variant
    frame, _ = sweep(profile, outputs=["toy/wide/toy"], rates=[2], progress=False)
    assert set(frame.method) == {"toy/wide/toy"} and set(frame.r) == {2}


def test_python_m_lib_rank_runs_it_given_the_plugin_variable(toy_table, tmp_path):
    _, profile, _, _ = toy_table
    split = profile / "runs" / "toy" / "synthetic" / "variants" / "wide" / "split0"
    images = sorted((profile / "data").rglob("*.png")) or sorted(profile.parent.rglob("*.png"))
    gallery = images[0].parent
    env = {**os.environ, PLUGINS_ENV: "tests.third_method", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "ranked.csv"
    r = subprocess.run([sys.executable, "-m", "lib.rank", "--run", str(split), "--query", str(images[0]),
                        "--gallery", str(gallery), "--top", "3", "--out", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = out.read_text().splitlines()
    assert rows[0].startswith("query") and len(rows) == 4  # a header and the top 3


def test_without_the_plugin_variable_the_error_names_it(toy_table, tmp_path):
    _, profile, _, _ = toy_table
    split = profile / "runs" / "toy" / "synthetic" / "variants" / "wide" / "split0"
    images = sorted((profile / "data").rglob("*.png")) or sorted(profile.parent.rglob("*.png"))
    env = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV} | {"PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "lib.rank", "--run", str(split / "train"), "--query", str(images[0]),
                        "--gallery", str(images[0].parent), "--out", str(tmp_path / "r.csv")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "'toy' is not registered" in r.stderr and PLUGINS_ENV in r.stderr, r.stderr[-2000:]
    with pytest.raises(ImportError, match=f"{PLUGINS_ENV}='no_such_package_xyz'"):
        import_plugins("no_such_package_xyz")


def test_the_explorer_opens_the_first_methods_headline_not_the_first_name():
    from lib.explorer import default_output

    outs = ["ftwa/default/ftwa", "pshrnet/as_written/pshrnet", "pshrnet/default/baseline", "pshrnet/default/pshrnet"]
    assert default_output(outs) == "pshrnet/default/pshrnet"  # registration order, not the alphabet
    assert default_output(["ftwa/default/ftwa"]) == "ftwa/default/ftwa"
    assert default_output(["pshrnet/x/pshrnet"]) == "pshrnet/x/pshrnet" and default_output([]) is None


def test_method_of_takes_the_nearest_registered_configuration_class(toy):
    from dataclasses import dataclass

    from lib.methods import method_of
    from lib.methods.pshrnet import PSHRNetConfig
    from tests.third_method import ToyConfig

    @dataclass(frozen=True)
    class MyToy(ToyConfig):
        pass

    @dataclass(frozen=True)
    class MyPSHRNet(PSHRNetConfig):
        pass

    assert method_of(MyToy()).name == "toy" and method_of(MyPSHRNet()).name == "pshrnet"
    with pytest.raises(TypeError, match="no registered method.*LIB_METHODS"):
        method_of(object())


def test_a_table_no_notebook_makes_is_left_out_of_all_and_refused_by_name(toy, tmp_path):
    from lib.workbook import all_tables, reproduce, table_spec_name, workbook_tables

    assert "toy" in workbook_tables() and table_spec_name("toy_table") == "toy_table"
    assert "toy" not in all_tables() and {"1", "ftwa2", "methods", "robustness"} <= set(all_tables())
    with pytest.raises(ValueError, match="table 'toy': no notebook makes it"):
        reproduce("tiny", tmp_path, ["toy"])
    assert not any(tmp_path.iterdir())


def test_pool_workers_find_a_plugin_found_from_the_callers_folder(tmp_path, monkeypatch):
    from lib.scale.execute import _slot_env

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    assert str(tmp_path) not in _slot_env(0, 1, 1, 0)["PYTHONPATH"].split(os.pathsep)
    monkeypatch.setenv(PLUGINS_ENV, "my_lab.method")
    assert _slot_env(0, 1, 1, 0)["PYTHONPATH"].split(os.pathsep) == ["/somewhere", str(tmp_path)]
