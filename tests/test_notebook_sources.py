"""Every notebook has one source, ``scripts/make_notebooks.py``: the committed ``.ipynb`` are exactly what it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from lib.kernel import KERNEL_NAME

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "scripts" / "make_notebooks.py"


def _generator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


def test_committed_notebooks_are_what_the_generator_writes():
    before = _snapshot(ROOT / "notebooks")
    res = _generator("--check")
    assert res.returncode == 0, (
        "a committed notebook differs from scripts/make_notebooks.py: edit its cells there, run "
        f"`.venv/bin/python scripts/make_notebooks.py` and commit both\n{res.stderr}")
    assert _snapshot(ROOT / "notebooks") == before, "--check wrote into notebooks/"


def test_check_names_each_changed_missing_and_foreign_notebook(tmp_path):
    assert _generator("--dir", str(tmp_path)).returncode == 0
    names = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert names == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) and len(names) == 14
    assert _generator("--check", "--dir", str(tmp_path)).returncode == 0

    edited = tmp_path / "02_phase1_hr_reid.ipynb"  # one character of one cell
    nb = json.loads(edited.read_text(encoding="utf-8"))
    nb["cells"][1]["source"][0] = nb["cells"][1]["source"][0].replace('"tiny"', '"cpu"')
    edited.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    executed = tmp_path / "05_ablation_losses.ipynb"  # committed with an output
    nb = json.loads(executed.read_text(encoding="utf-8"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"], code["outputs"] = 1, [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}]
    executed.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    resaved = tmp_path / "09_ablation_pooling.ipynb"  # as Jupyter saves it: same cells, sorted keys
    resaved.write_text(json.dumps(json.loads(resaved.read_text(encoding="utf-8")), indent=1, sort_keys=True,
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "14_resolution_robustness.ipynb").unlink()
    (tmp_path / "99_by_hand.ipynb").write_text("{}\n")

    before = _snapshot(tmp_path)
    res = _generator("--check", "--dir", str(tmp_path))
    assert res.returncode == 1
    assert _snapshot(tmp_path) == before, "--check wrote something"
    lines = [ln.strip() for ln in res.stderr.splitlines()[1:]]
    assert lines == [
        "02_phase1_hr_reid.ipynb: differs from its cells here (cell 1 (02-01): source)",
        "05_ablation_losses.ipynb: differs from its cells here (cell 1 (05-01): execution_count, outputs)",
        "09_ablation_pooling.ipynb: differs from its cells here (same content, other formatting or key order)",
        "14_resolution_robustness.ipynb: missing",
        "99_by_hand.ipynb: not generated here",
    ], res.stderr

    assert _generator("--dir", str(tmp_path)).returncode == 0  # writing restores the four it writes
    res = _generator("--check", "--dir", str(tmp_path))
    assert res.returncode == 1 and res.stderr.splitlines()[1:] == ["  99_by_hand.ipynb: not generated here"]


def test_generated_notebooks_are_valid_nbformat_without_outputs(tmp_path):
    assert _generator("--dir", str(tmp_path)).returncode == 0
    for path in sorted(tmp_path.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == KERNEL_NAME, path.name  # the kernel lib.workbook and nbval start
        ids = [c.id for c in nb.cells]
        assert ids == [f"{path.name[:2]}-{i:02d}" for i in range(len(ids))], path.name
        assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code"), path.name
