"""docs/equations.md, the equation index: every object it names exists, every equation of each paper is listed."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "equations.md"
SEEDS = ROOT.parent / "shared" / "seeds"

# The last numbered equation of each paper, read from the papers' texts (../shared/seeds/):
# PS-HRNet (001_b5cff2a35b794a4c.txt) ends with L_TOTAL, Eq. (12), in Sec. III-D;
# FTWA (002_719b473bad947798.txt) ends with the full loss L_ReID, Eq. (8), in Sec. 2.3.
LAST_EQUATION = {"PS-HRNet": 12, "FTWA": 8}
SEED_FILES = {"PS-HRNet": "001_b5cff2a35b794a4c.txt", "FTWA": "002_719b473bad947798.txt"}

DOTTED = re.compile(r"^lib(?:\.\w+)+$")  # lib.methods.pshrnet.losses.PSTerm
FILE_OBJ = re.compile(r"^([\w./-]+\.py)::(\w+(?:\.\w+)*)$")  # lib/methods/pshrnet/losses.py::PSTerm
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tables() -> dict[str, list[tuple[int, str, str, str]]]:
    """``{paper: [(equation number, what, implemented by, the row's text)]}`` from the ``## <paper>`` sections."""
    tables: dict[str, list[tuple[int, str, str, str]]] = {}
    paper = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            paper = next((p for p in LAST_EQUATION if heading.startswith(p)), None)
            if paper is not None:
                tables.setdefault(paper, [])
            continue
        if paper is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or not cells[0].isdigit():  # the header and the |---| line
            continue
        assert len(cells) == 3, f"{paper} row {line!r}: expected 3 cells (Eq. | what | implemented by), found {len(cells)}"
        tables[paper].append((int(cells[0]), cells[1], cells[2], line))
    return tables


def _references(cell: str) -> list[str]:
    return [s for s in re.findall(r"`([^`]+)`", cell) if DOTTED.match(s) or FILE_OBJ.match(s)]


def _resolve_dotted(name: str):
    """Import the longest importable module prefix of ``name``, then getattr the rest."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as e:
            if e.name is not None and ".".join(parts[:i]).startswith(e.name) and e.name.startswith("lib"):
                continue  # this prefix is not a module: try a shorter one
            raise
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise AttributeError(f"{'.'.join(parts[:i])} has no attribute path {'.'.join(parts[i:])!r} "
                                     f"({attr!r} is missing)")
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(f"no importable module prefix in {name!r}")


def _defined_in(path: Path, dotted: str) -> bool:
    """``dotted`` (``Obj`` or ``Class.method``) is a class, function or assigned name defined in ``path``."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for part in dotted.split("."):
        found = None
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == part:
                found = node
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == part for t in node.targets):
                found = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == part:
                found = node
        if found is None:
            return False
        body = getattr(found, "body", [])
    return True


def test_each_paper_has_a_table() -> None:
    tables = _tables()
    for paper in LAST_EQUATION:
        assert tables.get(paper), f"docs/equations.md: no '## {paper}' table with equation rows"


@pytest.mark.parametrize("paper", sorted(LAST_EQUATION))
def test_every_equation_listed_once(paper: str) -> None:
    numbers = [n for n, *_ in _tables().get(paper, [])]
    expected = list(range(1, LAST_EQUATION[paper] + 1))
    missing = sorted(set(expected) - set(numbers))
    extra = sorted(set(numbers) - set(expected))
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    problems = ([f"Eqs. {missing} missing (expected every equation 1..{LAST_EQUATION[paper]})"] if missing else []) \
        + ([f"Eqs. {extra} beyond the paper's last equation ({LAST_EQUATION[paper]})"] if extra else []) \
        + ([f"Eqs. {dupes} listed more than once"] if dupes else []) \
        + ([f"rows out of order {numbers}"] if numbers != sorted(numbers) else [])
    assert not problems, f"{paper} table: " + "; ".join(problems)


ROWS = [(paper, n, what, impl, line) for paper, rows in _tables().items() for n, what, impl, line in rows]


@pytest.mark.parametrize("paper,n,what,impl,line", ROWS, ids=[f"{p}-Eq{n}" for p, n, *_ in ROWS])
def test_row_names_existing_objects(paper: str, n: int, what: str, impl: str, line: str) -> None:
    row = f"{paper} Eq. ({n}) row"
    assert what, f"{row}: the 'what' cell is empty"
    refs = _references(impl)
    if "not implemented" in impl.lower():
        return
    assert refs, f"{row}: names no object (`lib.x.y.Obj` or `path.py::Obj`) and does not say 'not implemented'"
    problems = []
    for ref in refs:
        m = FILE_OBJ.match(ref)
        if m:
            path = ROOT / m.group(1)
            if not path.is_file():
                problems.append(f"{ref}: file {m.group(1)} does not exist")
            elif not _defined_in(path, m.group(2)):
                problems.append(f"{ref}: {m.group(2)} is not defined in {m.group(1)}")
            continue
        try:
            _resolve_dotted(ref)
        except (ImportError, AttributeError) as e:
            problems.append(f"{ref}: {type(e).__name__}: {e}")
    for target in LINK.findall(impl):
        if not (DOC.parent / target.split("#")[0]).resolve().exists():
            problems.append(f"link {target}: no such file (relative to docs/)")
    assert not problems, f"{row}: " + "; ".join(problems)


@pytest.mark.parametrize("paper", sorted(LAST_EQUATION))
def test_last_equation_matches_paper_text(paper: str) -> None:
    """Cross-check of the hard-coded maxima where the papers' texts are present (only in the project workspace)."""
    seed = SEEDS / SEED_FILES[paper]
    if not seed.is_file():
        pytest.skip(f"{seed} not present")
    numbers = {int(x) for x in re.findall(r"\\quad \((\d+)\)\$\$", seed.read_text(encoding="utf-8"))}
    assert numbers == set(range(1, LAST_EQUATION[paper] + 1)), \
        f"{paper}: the paper's text numbers equations {sorted(numbers)}, the test expects 1..{LAST_EQUATION[paper]}"
