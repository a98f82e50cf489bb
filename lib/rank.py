"""Rank your own images with a trained run: ``python -m lib.rank --run RUN --query IMG_OR_DIR --gallery DIR``.

Loads a finished run of any method (:func:`lib.inference.load_run`; ``RUN`` is a stage folder, a variant's link
to one, or a variant's split folder — then the method's main output is used), embeds every gallery image with the
run's gallery path and every query with its query path (the LR path: SR module, LR stream … exactly as the
run's test), and ranks the gallery for each query by the run's distance.

Writes a CSV of the top-k (``query, rank, gallery, distance``) and, for a single query, a PNG of the ranked list.
``--out`` names either: ``ranked.csv`` (default) also writes ``ranked.png`` beside it for one query, and
``--out list.png`` writes ``list.csv`` beside it. Images: .jpg/.jpeg/.png/.bmp, any size (resized to the run's
input size as its test does); folders are read recursively in sorted order.

    python -m lib.rank --run outputs/tiny/runs/pshrnet/synthetic/variants/default/split0 \\
        --query person.png --gallery my_gallery/ --top 10 --out outputs/tiny/ranked.png
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .data.mlr_dataset import MLRImage
from .data.records import IMAGE_SUFFIXES, ImageReadError
from .inference import RunLoadError, load_run
from .utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["main", "image_files", "as_images", "resolve_run", "rank"]


class RankError(ValueError):
    """Bad input to ``lib.rank`` (the message names the path and what was expected)."""


def image_files(path: str | Path, what: str) -> list[Path]:
    """An image file, or the images under a folder (recursive, sorted)."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise RankError(f"{what} {p}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
        return [p]
    if not p.is_dir():
        raise RankError(f"{what} {p} does not exist")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise RankError(f"{what} {p} holds no image ({', '.join(IMAGE_SUFFIXES)}, searched recursively)")
    return files


def as_images(files: list[Path]) -> list[MLRImage]:
    """Files as test images (each opened once first, so an unreadable one is named before any work)."""
    from .data.mlr_build import load_rgb

    for f in files:
        load_rgb(f)  # raises ImageReadError naming the file
    return [MLRImage(index=i, hr_path=f, lr_path=None, pid=-1, camid=-1, res="hr", r=None) for i, f in enumerate(files)]


def resolve_run(path: str | Path) -> tuple[Path, str | None]:
    """``(stage folder, output)``: a stage folder / link as it is (finished or not: :func:`load_run` says what is
    missing); a variant split folder → its last stage (one no other stage there depends on — ``phase2`` over
    ``phase1``, ``solo_sr`` in the Solo SR variant) and that stage's first output."""
    from .methods import METHODS, PLUGINS_ENV

    p = Path(path)
    if not p.is_dir() or any((p / n).exists() for n in ("metrics.json", "model.pt", "identity.json", "checkpoints")):
        return p, None
    for method in (METHODS.get(n) for n in METHODS.names()):
        if method.name not in p.resolve().parts:
            continue
        present = [s for s in method.stages if (p / s).is_dir()]
        deps = {d for s in present for d in method.stages[s].deps}
        for output, (stage, _) in method.outputs.items():
            if stage in present and stage not in deps:
                return p / stage, output
    stages = sorted(c.name for c in p.iterdir() if c.is_dir())
    parts = p.resolve().parts  # runs/<method>/<dataset>/variants/<variant>/split<k>
    at = len(parts) - 1 - parts[::-1].index("runs") if "runs" in parts else None
    unknown = [parts[at + 1]] if at is not None and at + 1 < len(parts) and parts[at + 1] not in METHODS else []
    hint = (f"; its method {unknown[0]!r} is not registered (known: {', '.join(METHODS.names())}; a method package "
            f"outside lib/methods is imported through {PLUGINS_ENV}=package)") if unknown else ""
    raise RankError(f"--run {p}: neither a run folder (model.pt + metrics.json) nor a variant split folder holding "
                    f"one (found: {', '.join(stages) or 'nothing'}){hint}")


def rank(run_path: str | Path, queries: list[Path], gallery: list[Path], *, output: str | None = None):
    """``(run, matcher, distances (queries × gallery), gallery images)`` for image files."""
    stage_dir, default_output = resolve_run(run_path)
    run = load_run(stage_dir)
    m = run.matcher(output or default_output)
    g_imgs = as_images(gallery)
    q_imgs = as_images(queries)
    return run, m, m.distances(q_imgs, g_imgs), g_imgs


def check_writable(paths: list[Path], what: str = "--out") -> None:
    """Make sure the files ``paths`` can be written before any work, without creating anything: the nearest folder
    that exists on the way to each must be a folder in which a temporary file can be created (and is removed at
    once). A read-only or full folder, a parent that is a file or a destination that is a folder is a
    :class:`RankError` naming the path now, not a traceback after the embedding."""
    for folder in dict.fromkeys(p.parent for p in paths):
        have = next((a for a in (folder, *folder.parents) if a.exists()), Path("."))
        try:
            if not have.is_dir():
                raise NotADirectoryError(f"{have} is a file")
            fd, tmp = tempfile.mkstemp(prefix=".lib-rank.", suffix=".check", dir=have)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            why = ("it is a file, not a folder" if have == folder else f"{have} is a file, not a folder"
                   if isinstance(e, NotADirectoryError) else e.strerror or str(e))
            raise RankError(f"{what}: cannot write to the folder {folder} ({why})") from None
    for p in paths:
        if p.is_dir():
            raise RankError(f"{what}: {p} is a folder; expected a file name")


def _rows(queries: list[Path], gallery: list[Path], dist: np.ndarray, top: int) -> list[dict]:
    rows = []
    for qi, q in enumerate(queries):
        order = np.argsort(dist[qi], kind="stable")[:top]
        rows += [{"query": str(q), "rank": k + 1, "gallery": str(gallery[g]), "distance": f"{dist[qi, g]:.6f}"}
                 for k, g in enumerate(order)]
    return rows


def _write_failed(e: OSError, written: Path | None = None) -> int:
    """Report a failed final write (disk full, folder made read-only meanwhile) without a traceback; exit status 1."""
    kept = f"; {written} was written" if written else ""
    print(f"lib.rank: error: the ranking was computed but not saved: {e}{kept}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.rank", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished run folder (stage folder, variant link or split folder)")
    ap.add_argument("--query", required=True, help="a query image or a folder of them")
    ap.add_argument("--gallery", required=True, help="a folder of gallery images")
    ap.add_argument("--top", type=int, default=10, help="gallery images listed per query (default 10)")
    ap.add_argument("--out", default="ranked.csv", help="ranked.csv (+ ranked.png for one query) or NAME.png")
    ap.add_argument("--output", default=None, help="the method output to use (default: the run's main one)")
    a = ap.parse_args(argv)
    try:
        if a.top < 1:
            raise RankError(f"--top: expected a positive number, found {a.top}")
        out = Path(a.out)
        if out.suffix.lower() not in (".csv", ".png"):
            raise RankError(f"--out {out}: expected a .csv or .png file name")
        check_writable([out.with_suffix(".csv"), out.with_suffix(".png")])  # before the run is loaded
        queries = image_files(a.query, "--query")
        gallery = image_files(a.gallery, "--gallery")
        run, m, dist, _ = rank(a.run, queries, gallery, output=a.output)
    except (RankError, RunLoadError, ImageReadError) as e:
        print(f"lib.rank: error: {e}", file=sys.stderr)
        return 2
    csv_path, png_path = out.with_suffix(".csv"), out.with_suffix(".png")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["query", "rank", "gallery", "distance"])
    w.writeheader()
    rows = _rows(queries, gallery, dist, a.top)
    w.writerows(rows)
    try:
        atomic_write_text(csv_path, buf.getvalue())
    except OSError as e:  # checked above, but a disk can fill up meanwhile: the message names the file
        return _write_failed(e)
    written = [csv_path]
    if len(queries) == 1:
        import matplotlib

        matplotlib.use("Agg")
        from .data.mlr_build import load_rgb
        from .data.transforms import resize
        from .viz import figure_png, ranked_list

        order = [gallery.index(Path(r["gallery"])) for r in rows]
        imgs = [np.asarray(resize(load_rgb(gallery[g]), m.size, "bilinear")) for g in order]
        fig = ranked_list(np.asarray(load_rgb(queries[0])), imgs, distances=dist[0][order],
                          captions=[gallery[g].name[:18] for g in order], query_caption=queries[0].name[:18],
                          title=f"{run.method.name}/{m.name} ({run.run_dir.name}): top {len(order)} of {len(gallery)}")
        try:
            atomic_write_bytes(png_path, figure_png(fig))
        except OSError as e:
            return _write_failed(e, csv_path)
        written.append(png_path)
    print(f"ranked {len(gallery)} gallery images for {len(queries)} quer{'y' if len(queries) == 1 else 'ies'} with "
          f"{run.method.name}/{m.name} from {run.run_dir}")
    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
