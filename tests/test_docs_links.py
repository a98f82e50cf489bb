"""README.md and docs/**/*.md: every relative link resolves, every #anchor names a heading; the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200  # issue #23 §1: the README opens the workbook; everything else lives in docs/

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.S)  # may wrap lines, never a paragraph
#: [text](target) or ![alt](target "title"); the text may hold one level of brackets ([`x`][y] is not used here)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, …


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _prose(text: str) -> str:
    """A markdown text with its fenced code blocks and inline code spans blanked out (line numbers kept)."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            line = ""
        lines.append("" if fenced else line)
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), "\n".join(lines))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation but hyphens and spaces dropped,
    each space a hyphen (github-slugger)."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    parts = re.split(r"(`+[^`]*`+)", re.sub(r"<[^>]+>", "", text))  # code spans keep every character
    text = "".join(p.strip("`") if p.startswith("`") else re.sub(r"\*+|(?<!\w)_+|_+(?!\w)", "", p) for p in parts)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file's headings; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_anchor_rule_matches_github() -> None:
    assert slug("The experiment core (`lib.core`, `lib.methods`, `lib.results`)") == \
        "the-experiment-core-libcore-libmethods-libresults"
    assert slug("Both data paths side by side: `make bench` (issue #22 §3)") == \
        "both-data-paths-side-by-side-make-bench-issue-22-3"
    assert slug("Measuring the throughput: `make bench`") == "measuring-the-throughput-make-bench"
    assert slug("3. The `cpu` profile with the recipe: Tables I and II re-measured, and as written") == \
        "3-the-cpu-profile-with-the-recipe-tables-i-and-ii-re-measured-and-as-written"
    assert slug("`runtime.image_cache` and **bold**, `_base_`") == "runtimeimage_cache-and-bold-_base_"


def test_repeated_headings_are_numbered(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# A\n## Tests\n```bash\n# Tests\n```\n## Tests\n### Tests\n", encoding="utf-8")
    assert anchors(doc) == {"a", "tests", "tests-1", "tests-2"}


def test_readme_is_short() -> None:
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, \
        f"README.md has {n} lines (at most {README_MAX_LINES}): move sections into docs/ and link them"


def broken_links(doc: Path) -> list[str]:
    """What is wrong with each relative link of a markdown file: 'file:line: link (target): what was not found'."""
    text = _prose(doc.read_text(encoding="utf-8"))
    name = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc
    problems = []
    for m in LINK.finditer(text):
        target = m.group(1)
        if EXTERNAL.match(target):
            continue
        where = f"{name}:{text.count(chr(10), 0, m.start()) + 1}: link ({target})"
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            problems.append(f"{where}: no file or folder {path_part} (relative to {doc.parent.name}/)")
        elif anchor and (dest.suffix != ".md" or not dest.is_file()):
            problems.append(f"{where}: #{anchor} on {path_part}, which is not a markdown file")
        elif anchor and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{anchor} in {path_part or name}")
    return problems


def test_the_check_finds_broken_links_and_skips_code(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n## A section\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("# Doc\n[ok](other.md#a-section) [here](#doc) [wrapped\nlink](other.md)\n"
                   "[gone](missing.md) [no anchor](other.md#nothing) [web](https://example.org/x)\n"
                   "`[in code](missing.md)` and\n```\n[in a block](missing.md)\n```\n", encoding="utf-8")
    problems = broken_links(doc)
    assert len(problems) == 2, problems
    assert "doc.md:4: link (missing.md): no file or folder missing.md" in problems[0]
    assert "doc.md:4: link (other.md#nothing): no heading with anchor #nothing in other.md" in problems[1]


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    problems = broken_links(doc)
    assert not problems, "\n".join(problems)
