"""The workbook's kernelspec has its own name (never ``python3``), is what notebooks, runner and Makefile use, and a
missing one is a clear error before any kernel starts."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from lib import kernel
from lib.kernel import KERNEL_NAME, KernelMissingError, check_kernel, install_kernel

ROOT = Path(__file__).resolve().parents[1]


def test_the_name_is_the_workbooks_own_and_the_makefile_installs_it():
    assert KERNEL_NAME == "reid-workbook" and KERNEL_NAME != "python3"
    makefile = (ROOT / "Makefile").read_text()
    (path,) = re.findall(r"^KERNEL\s*:=\s*(\S+)$", makefile, re.M)
    assert path == f"$(VENV)/share/jupyter/kernels/{KERNEL_NAME}/kernel.json"
    assert re.search(r"^setup: .*\$\(KERNEL\)", makefile, re.M) and "-m lib.kernel" in makefile
    assert "--name python3" not in makefile


def test_install_writes_a_spec_for_this_python_under_the_prefix(tmp_path):
    spec_dir = install_kernel(str(tmp_path))
    assert spec_dir == tmp_path / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and spec["display_name"] == kernel.KERNEL_DISPLAY_NAME
    assert "ipykernel_launcher" in spec["argv"]


def test_a_missing_kernel_is_named_with_the_command_that_installs_it(monkeypatch, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setattr(KernelSpecManager, "find_kernel_specs", lambda self: {"python3": "/x/python3"})
    with pytest.raises(KernelMissingError, match=r"'reid-workbook' is not installed \(kernels found: python3\).*"
                                                 r"make setup.*python -m lib\.kernel"):
        check_kernel()
    assert kernel.main(["--check"]) == 1
    # the runner checks it before papermill starts anything: no executed or failed notebook appears
    from lib.workbook import run_notebook

    with pytest.raises(KernelMissingError):
        run_notebook("notebooks/01_dataset_synthesis.ipynb", "tiny", output_root=tmp_path)
    assert not list(tmp_path.rglob("*.ipynb"))


def test_the_installed_kernel_is_found():
    # make setup (or python -m lib.kernel) installed it into this environment: the notebooks' nbval run needs it
    assert (check_kernel() / "kernel.json").is_file()


def test_a_kernel_started_with_pinned_variables_sees_them_whatever_the_process_environment_says(monkeypatch, tmp_path):
    """The progress file reaches the kernel with it: another thread moving ``os.environ`` meanwhile (its own
    notebook's tail) does not redirect this kernel's lines; the rest of the environment still comes through."""
    import nbformat
    from nbclient import NotebookClient

    from lib.kernel import kernel_manager_with_env
    from lib.utils.progress import ENV

    mine, other = tmp_path / "mine.progress.log", tmp_path / "other.progress.log"
    monkeypatch.setenv(ENV, str(other))  # what the other thread's tail set
    monkeypatch.setenv("WORKBOOK_TEST_MARK", "kept")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nfrom lib.utils.progress import report\nreport('a line')\n"
        f"print(os.environ[{ENV!r}], os.environ['WORKBOOK_TEST_MARK'])")])
    cls = kernel_manager_with_env({ENV: str(mine)})
    NotebookClient(nb, kernel_name=KERNEL_NAME, kernel_manager_class=cls, timeout=120,
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    assert nb.cells[0].outputs[0]["text"].split() == [str(mine), "kept"]
    assert mine.read_text() == "a line\n" and not other.exists()


def test_the_pinned_variables_go_into_the_launch_and_nothing_else_changes(monkeypatch):
    from jupyter_client import AsyncKernelManager

    from lib.kernel import kernel_manager_with_env

    seen = []

    async def fake_pre_start(self, **kw):
        seen.append(kw)
        return ["true"], kw

    monkeypatch.setattr(AsyncKernelManager, "_async_pre_start_kernel", fake_pre_start)
    monkeypatch.setenv("WORKBOOK_PROGRESS_FILE", "/elsewhere.log")
    cls = kernel_manager_with_env({"WORKBOOK_PROGRESS_FILE": "/mine.log"})
    import asyncio

    asyncio.run(cls()._async_pre_start_kernel(cwd="/tmp"))
    asyncio.run(cls()._async_pre_start_kernel(env={"ONLY": "this"}))
    assert seen[0]["cwd"] == "/tmp" and seen[0]["env"]["WORKBOOK_PROGRESS_FILE"] == "/mine.log"
    assert seen[0]["env"]["PATH"] == os.environ["PATH"]  # the process's environment underneath
    assert seen[1]["env"] == {"ONLY": "this", "WORKBOOK_PROGRESS_FILE": "/mine.log"}
    assert os.environ["WORKBOOK_PROGRESS_FILE"] == "/elsewhere.log"  # the process's own is left alone
