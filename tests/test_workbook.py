"""Notebook and profile conventions (DEVELOPERS.md): papermill only warns, these tests fail."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from lib.utils import repo_root
from lib.workbook import check_profile, load_profile, notebook_parameters

ROOT = repo_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROFILES = sorted((ROOT / "params").glob("*.yaml"))


def test_there_are_notebooks_and_profiles():
    assert NOTEBOOKS and PROFILES
    assert all(re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", p.name) for p in NOTEBOOKS), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_profile_key_exists_in_its_notebook(profile):
    assert check_profile(str(profile))
    for stem, params in load_profile(str(profile)).items():
        declared = notebook_parameters(ROOT / "notebooks" / f"{stem}.ipynb")
        assert set(params) <= set(declared)
        for k, v in params.items():  # same type as the default (papermill would inject anything)
            assert isinstance(v, type(declared[k])) or (isinstance(v, int) and isinstance(declared[k], float)), (
                f"{profile.name}: {stem}.{k} = {v!r} has type {type(v).__name__}, the notebook's default "
                f"{declared[k]!r} is {type(declared[k]).__name__}"
            )


def test_unknown_profile_key_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"01_dataset_synthesis": {"NOT_A_PARAMETER": 1}}))
    with pytest.raises(KeyError, match="NOT_A_PARAMETER"):
        check_profile(str(bad))
    bad.write_text(yaml.safe_dump({"99_missing": {"SEED": 1}}))
    with pytest.raises(FileNotFoundError, match="99_missing"):
        check_profile(str(bad))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(nb_path):
    nb = json.loads(nb_path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# "), "starts with a title"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    src = "".join(tagged[0]["source"])
    for line in src.strip().splitlines():
        name, _, rest = line.partition("=")
        assert name.strip().isupper(), f"{nb_path.name}: parameter names are UPPER_CASE: {line!r}"
        assert "#" in rest, f"{nb_path.name}: every parameter has a comment: {line!r}"
        comment = rest.split("#", 1)[1]
        assert "'" not in comment and "=" not in comment, f"{nb_path.name}: papermill cannot parse ' or = in comments: {line!r}"
    notebook_parameters(nb_path)  # literals only
    for c in cells:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and not c.get("execution_count"), f"{nb_path.name}: committed with outputs"
            tree = ast.parse("".join(c["source"]))
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)], "no classes in notebooks (logic in lib)"


def test_run_notebook_rejects_unknown_override():
    from lib.workbook import run_notebook

    with pytest.raises(KeyError, match="NOT_A_PARAMETER"):
        run_notebook(ROOT / "notebooks" / "04_table1.ipynb", "tiny", overrides={"NOT_A_PARAMETER": 1})


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_profile_configuration_loads(profile):
    """A profile names a configuration file (CONFIG) and OVERRIDES per notebook: each must load as a typed
    configuration (a mistake there would otherwise surface inside the kernel)."""
    from lib.workflow import experiment_config

    for stem, params in load_profile(str(profile)).items():
        declared = notebook_parameters(ROOT / "notebooks" / f"{stem}.ipynb")
        if "CONFIG" in declared:
            cfg = experiment_config(declared | params)
            assert cfg.seed == (declared | params)["SEED"], (profile.stem, stem)


def test_notebook_defaults_are_the_tiny_profile():
    """The notebooks' parameter defaults equal the tiny profile (params/tiny.yaml's header says so)."""
    for stem, params in load_profile("tiny").items():
        declared = notebook_parameters(ROOT / "notebooks" / f"{stem}.ipynb")
        assert {k: declared[k] for k in params} == params, stem


def test_every_table_has_a_spec_and_notebooks():
    from lib.results import load_table_spec, table_names
    from lib.results.methods_table import load_methods_spec
    from lib.workbook import TABLE_NOTEBOOKS, table_spec_name

    beyond = ("methods", "robustness")  # beyond the papers: no paper table spec
    assert sorted(table_spec_name(t) for t in TABLE_NOTEBOOKS if t not in beyond) == table_names()
    assert table_spec_name("ftwa1") == "ftwa_table1" and table_spec_name("3") == "table3"
    assert {r.method for r in load_methods_spec().rows} == {"pshrnet", "ftwa"}
    assert TABLE_NOTEBOOKS["robustness"] == ("14_resolution_robustness",)
    for t, stems in TABLE_NOTEBOOKS.items():
        if t == "robustness":
            continue
        spec = load_table_spec(table_spec_name("ftwa1" if t == "methods" else t))
        assert spec.notebook in stems and spec.method == ("ftwa" if t.startswith(("ftwa", "methods")) else "pshrnet"), t
        for stem in stems:
            assert (ROOT / "notebooks" / f"{stem}.ipynb").is_file(), stem
        for prof in ("tiny", "cpu", "paper"):  # every profile that reproduces tables runs each table's notebooks
            assert set(stems) <= set(load_profile(prof)), (prof, t)


def test_reproduce_rejects_unknown_tables_before_running(tmp_path):
    from lib.workbook import main, reproduce

    with pytest.raises(ValueError, match=r"TABLES: unknown table\(s\) \['table8'\]; the workbook has 1, 2, 3, 4, 5, 6, 7, ftwa1, ftwa2, methods"):
        reproduce("tiny", tmp_path, ["1", "table8"])
    assert not any(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="no dataset under"):
        reproduce("tiny", tmp_path, ["table1"])  # an empty DATA_ROOT: nothing to run
    with pytest.raises(FileNotFoundError, match=r"DATA_ROOT .*no_such_folder does not exist \(resolved: "):
        reproduce("tiny", tmp_path / "no_such_folder", ["table1"])  # said so, not as every dataset missing
    assert not any(tmp_path.iterdir())
    assert main(["reproduce", "--profile", "tiny", "--data-root", str(tmp_path), "--tables", "9"]) == 1


def test_two_runs_of_one_notebook_on_one_output_folder_do_not_collide(tmp_path, monkeypatch):
    """Issue #21: two `make reproduce` on one output folder execute the same notebooks at the same time; each writes
    its own temporary notebook and progress log, and both end with the executed notebook in place."""
    import threading
    import time

    import papermill

    from lib.utils.progress import ENV
    from lib.workbook import run_notebook

    seen: list[tuple[str, str]] = []

    def fake_execute(src, out, parameters, **kw):
        seen.append((out, kw["kernel_manager_class"].pinned_env[ENV]))
        for k in range(3):  # papermill saves the output notebook after every cell
            Path(out).write_text(json.dumps({"cells": [], "k": k, "params": parameters, "metadata": {},
                                             "nbformat": 4, "nbformat_minor": 5}))
            time.sleep(0.2)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    errors: list[BaseException] = []

    def go():
        try:
            run_notebook(ROOT / "notebooks" / "04_table1.ipynb", "tiny", output_root=tmp_path)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({out for out, _ in seen}) == 2  # two temporary notebooks
    # and two progress logs, each handed to its own kernel (not through the one os.environ both threads share)
    logs = {log for _, log in seen}
    assert len(logs) == 2 and all(Path(log).is_file() for log in logs)
    folder = tmp_path / "tiny" / "notebooks"
    assert json.loads((folder / "04_table1.ipynb").read_text())["k"] == 2
    assert not list(folder.glob(".*running*")) and not list(folder.glob("*.failed.ipynb"))


def test_run_takes_papermill_style_parameters(capsys):
    """Issue #24: ``python -m lib.workbook run NB -p KEY VALUE`` (VALUE read as YAML); a bad name or an unknown
    parameter fails before any kernel starts."""
    from lib.workbook import main, parse_parameters

    assert parse_parameters([["SPLITS", "[0, 1]"], ["SEED", "3"], ["DATASETS", "[viper]"], ["RUN_BASELINE", "false"],
                             ["CONFIG", "configs/pshrnet/cpu.yaml"]]) == {
        "SPLITS": [0, 1], "SEED": 3, "DATASETS": ["viper"], "RUN_BASELINE": False, "CONFIG": "configs/pshrnet/cpu.yaml"}
    with pytest.raises(ValueError, match="expected an UPPER_CASE notebook parameter name, found 'seed'"):
        parse_parameters([["seed", "3"]])
    with pytest.raises(ValueError, match="not a YAML value"):
        parse_parameters([["SPLITS", "[0, 1"]])
    assert main(["run", "notebooks/02_phase1_hr_reid.ipynb", "-p", "seed", "1"]) == 2
    assert "UPPER_CASE" in capsys.readouterr().err
    assert main(["run", "notebooks/02_phase1_hr_reid.ipynb", "-p", "NO_SUCH_PARAMETER", "1"]) == 1
    err = capsys.readouterr().err
    assert "NO_SUCH_PARAMETER" in err and "not parameters of this notebook" in err
    assert "(its parameters: PROFILE, " in err and "KeyError: \"" not in err  # the valid names, the message unquoted
    assert main(["run", "notebooks/02_phase1_hr_reid.ipynb", "-p", "PROFILE", "cpu"]) == 1
    assert "-p PROFILE (or overrides) sets PROFILE: 'cpu'; PROFILE must be the profile's own name 'tiny'" in \
        capsys.readouterr().err  # the flag named, not the profile's file


def test_make_mlr_and_plan_pass_a_given_data_root_and_otherwise_keep_their_defaults():
    """`make mlr PROFILE=viper DATA_ROOT=/data` reads VIPeR under /data (before: the profile's ../shared/data/VIPeR,
    whatever DATA_ROOT said); without DATA_ROOT the profile's folder stands (the Makefile's default is not forced on
    it)."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_ROOT", "MAKEFLAGS", "MFLAGS")}

    def dry(*args: str) -> str:
        out = subprocess.run(["make", "-n", "-s", "mlr", "PROFILE=viper", *args], cwd=ROOT, env=env, text=True,
                             capture_output=True, check=True).stdout
        return next(line for line in out.splitlines() if "01_dataset_synthesis" in line)

    assert dry("DATA_ROOT=/data/reid").endswith('--profile viper -p DATA_ROOT "/data/reid"')
    assert "DATA_ROOT" not in dry()
    assert dry().rstrip().endswith("--profile viper")

    def plan(*args: str) -> str:  # `make plan PROFILE=tiny` plans make demo's runs unless DATA_ROOT is given
        out = subprocess.run(["make", "-n", "-s", "plan", *args], cwd=ROOT, env=env, text=True, capture_output=True,
                             check=True).stdout
        return next(line for line in out.splitlines() if "lib.workbook plan" in line)

    assert '--data-root "synthetic"' in plan("PROFILE=tiny")
    assert '--data-root "/data/reid"' in plan("PROFILE=tiny", "DATA_ROOT=/data/reid")
    assert '--data-root "../shared/data"' in plan("PROFILE=cpu")
