"""Resolution robustness (notebook 14, beyond both papers): Rank-1 and mAP against the query's down-sampling rate.

Training saw r ∈ {2, 3, 4}; here every test query of a split is re-made from its HR original at r = 1 … 8
(:class:`lib.inference.QuerySource`: r = 1 is the HR original itself, r > 4 rates never seen) and matched against
the same HR gallery by every trained method of a profile — PS-HRNet, the bicubic baseline, the teacher without SR,
FTWA where present — with each run's own test (:class:`lib.inference.Matcher`) and the dataset's protocol
(single-shot gallery draws with the run's seed, as the tables). Datasets whose queries have no HR original
(CAVIAR's natively LR camera) cannot be swept and are reported as such.

Each (run, output, r) result is cached under ``<profile>/robustness/cache/`` per run folder and output, stamped
with the run's evaluation settings and ``model.pt`` (a changed test or a retrained model is recomputed), so a rerun
or an extended sweep computes only what is new; a run that cannot be loaded is reported, not fatal; tables ``tables/robustness.{csv,md}``, figure
``figures/robustness.png``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .inference import QuerySource, RunLoadError, load_run, output_runs
from .utils.io import atomic_write_json, atomic_write_text
from .utils.paths import resolve_path

__all__ = ["DEFAULT_OUTPUTS", "default_outputs", "DEFAULT_RATES", "sweep", "robustness_markdown", "robustness_figure", "write_robustness"]

def default_outputs() -> tuple[str, ...]:
    """The outputs swept by default, ``method/variant/output``: each registered method's ``sweep_outputs`` (its
    headline's default variant unless it names others), in registration order; those absent in a profile are
    skipped. Also :data:`DEFAULT_OUTPUTS` (computed when read, so a method registered later is included)."""
    from .methods import METHODS

    return tuple(label for m in METHODS.in_order() for label in m.default_sweep)


def __getattr__(name: str):
    if name == "DEFAULT_OUTPUTS":
        return default_outputs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_RATES = tuple(range(1, 9))
TRAINING_RATES = (2, 3, 4)


def sweep(profile_dir: str | Path, *, outputs: Sequence[str] | None = None, rates: Sequence[int] = DEFAULT_RATES,
          datasets: Sequence[str] | None = None, splits: Sequence[int] | None = None,
          progress: bool = True) -> tuple[pd.DataFrame, dict[str, str]]:
    """Evaluate ``outputs`` (``method/variant/output`` labels) at every rate on every dataset / split of a profile.

    Returns ``(frame, skipped)``: one row per (dataset, split, method, r) with ``rank1``, ``mAP`` (fractions),
    ``num_query`` and ``run`` (the run folder); ``skipped``: ``'dataset'`` or ``'dataset/method'`` → why.
    """
    from tqdm.auto import tqdm

    from .utils.progress import bars_off

    profile_dir = resolve_path(profile_dir)
    outputs = default_outputs() if outputs is None else tuple(outputs)
    rates = [int(r) for r in rates]
    if not rates or any(r < 1 for r in rates):
        raise ValueError(f"rates: expected rates ≥ 1, found {rates}")
    found = output_runs(profile_dir)
    if not found:
        raise FileNotFoundError(f"{profile_dir}: no trained run (run `make demo` or a table's notebook first)")
    jobs, skipped = [], {}
    for r in found:
        if r.label not in outputs or (datasets and r.dataset not in datasets) or (splits is not None and r.split not in splits):
            continue
        jobs.append((r.entry, r.output, r.label))
    labels, names = sorted({r.label for r in found}), sorted({r.dataset for r in found})
    for name in datasets or ():
        if name not in names:
            skipped[name] = f"no finished run on this dataset in this profile (datasets with runs: {', '.join(names)})"
    for want in outputs:
        if not any(m == want for *_, m in jobs):
            skipped[want] = ("no finished run of it in this profile" if want not in labels else
                             "no finished run of it on the datasets / splits asked for")
            if want not in labels:  # a misspelt label reads like a missing run: name those that exist
                skipped[want] += f" (labels with runs: {', '.join(labels)})"
    rows = []
    cache_dir = profile_dir / "robustness" / "cache"
    by_dataset: dict[str, object] = {}
    for entry, output, label in tqdm(jobs, desc="robustness", disable=bars_off(progress)):
        run_dir = entry.path.resolve()
        cache = cache_dir / f"{entry.method}-{entry.dataset}-split{entry.split}-{run_dir.name}-{output}.json"
        stamp = _stamp(run_dir)
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        results = cached.get("results", {}) if cached.get("stamp") == stamp else {}  # stale: the run or test changed
        todo = [r for r in rates if str(r) not in results]
        if todo:
            try:
                run = load_run(entry.path)
                if entry.dataset not in by_dataset:
                    by_dataset[entry.dataset] = run.dataset()
                ds = by_dataset[entry.dataset]
                sp = ds.split(entry.split)
                if not all(q.has_hr_original for q in sp.query):
                    skipped[entry.dataset] = "its queries are natively low-resolution (no HR original to re-make them from)"
                    continue
                m = run.matcher(output)
                g = m.embed_gallery(sp.gallery)
                for r in todo:
                    res = m.evaluate(sp, protocol=ds.eval_protocol, source=QuerySource(r), gallery_embedding=g,
                                     num_repeats=run.cfg.test.num_repeats, seed=run.cfg.seed)
                    results[str(r)] = {"rank1": res["rank1"], "mAP": res["mAP"], "num_query": res["num_query"]}
                    # one rate at a time: an interrupted sweep keeps what it did
                    atomic_write_json(cache, {"stamp": stamp, "results": results})
            except (RunLoadError, ValueError, OSError) as e:  # one bad run must not cost the others their rows
                skipped[f"{entry.dataset}/{label} split {entry.split}"] = f"{type(e).__name__}: {e}"
                continue
        for r in rates:
            rows.append({"dataset": entry.dataset, "split": entry.split, "method": label, "r": r,
                         **results[str(r)], "run": str(run_dir)})
    frame = pd.DataFrame(rows, columns=["dataset", "split", "method", "r", "rank1", "mAP", "num_query", "run"])
    return frame, skipped


#: Bumped when the sweep's computation changes, so cached results of an older one are recomputed.
CACHE_VERSION = 1


def _stamp(run_dir: Path) -> dict:
    """What a cached result depends on: the run's recorded evaluation settings and identity (``metrics.json``),
    its ``model.pt`` (size, modification time) and the sweep's version."""
    rec = json.loads((run_dir / "metrics.json").read_text())
    st = (run_dir / "model.pt").stat()
    return {"version": CACHE_VERSION, "eval": rec.get("eval"), "identity": rec.get("run", {}).get("stage"),
            "model": [st.st_size, st.st_mtime_ns]}


def _aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame.groupby(["dataset", "method", "r"], sort=False)
    out = g[["rank1", "mAP"]].agg(["mean", "std"]).reset_index()
    out.columns = ["dataset", "method", "r", "rank1", "rank1_std", "mAP", "mAP_std"]
    out["num_splits"] = g.size().values
    return out


def robustness_markdown(frame: pd.DataFrame, skipped: dict[str, str], profile: str, command: str = "") -> str:
    """Rank-1 (and mAP) per method (rows) and r (columns), one block per dataset; mean ± std over splits, %."""
    from .results.tables import cell

    lines = ["# Resolution robustness: Rank-1 and mAP against the query's down-sampling rate", "",
             f"Profile **`{profile}`**. Each test query is re-made from its HR original at r (r = 1: the HR original; "
             f"training saw r ∈ {{{', '.join(map(str, TRAINING_RATES))}}}) and matched against the same HR gallery with "
             "each run's own test and the dataset's protocol (single-shot datasets: one random gallery image per "
             "identity, redrawn and averaged). Mean ± sample std over identity splits, in %."]
    if command:
        lines += ["", f"Made by: `{command}`"]
    for what, why in skipped.items():
        lines.append(f"- **{what}** not swept: {why}.")
    if frame.empty:
        return "\n".join(lines + ["", "No result."]) + "\n"
    agg = _aggregate(frame)
    rates = sorted(agg["r"].unique())
    for metric, name in (("rank1", "Rank-1"), ("mAP", "mAP")):
        for ds, part in agg.groupby("dataset", sort=True):
            n = int(part["num_splits"].max())
            lines += ["", f"## {ds}: {name} (%), {n} split{'s' if n > 1 else ''}", "",
                      "| Method | " + " | ".join(f"r={r}" + ("*" if r in TRAINING_RATES else "") for r in rates) + " |",
                      "|---|" + "---|" * len(rates)]
            for method, rows in part.groupby("method", sort=False):
                by_r = {int(x.r): x for x in rows.itertuples()}
                cells = [cell(100 * getattr(by_r[r], metric), 100 * getattr(by_r[r], metric + "_std"), by_r[r].num_splits)
                         if r in by_r else "—" for r in rates]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "\\* a training rate."]
    return "\n".join(lines) + "\n"


def robustness_figure(frame: pd.DataFrame):
    """Rank-1 and mAP against r, one line per method (mean over splits, ± std band), a column per dataset;
    the training rates shaded."""
    from .viz import subplots

    agg = _aggregate(frame)
    datasets = sorted(agg["dataset"].unique())
    if not datasets:
        raise ValueError("robustness_figure: no result to plot")
    fig, axes = subplots(2, len(datasets), figsize=(4.6 * len(datasets) + 1.8, 5.6), squeeze=False)
    for j, ds in enumerate(datasets):
        part = agg[agg["dataset"] == ds]
        for i, (metric, name) in enumerate((("rank1", "Rank-1 (%)"), ("mAP", "mAP (%)"))):
            ax = axes[i][j]
            ax.axvspan(min(TRAINING_RATES) - 0.5, max(TRAINING_RATES) + 0.5, color="0.92", zorder=0)
            for method, rows in part.groupby("method", sort=False):
                rows = rows.sort_values("r")
                y, s = 100 * rows[metric].to_numpy(), 100 * rows[metric + "_std"].fillna(0).to_numpy()
                ax.plot(rows["r"], y, marker="o", ms=3, label=method)
                ax.fill_between(rows["r"], y - s, y + s, alpha=0.12)
            ax.set_xlabel("query down-sampling rate r")
            ax.set_ylabel(name)
            ax.set_title(ds if i == 0 else "", fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_xticks(sorted(part["r"].unique()))
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle("Query resolution sweep (grey: training rates)", fontsize=9)
    fig.tight_layout()
    return fig


def write_robustness(frame: pd.DataFrame, skipped: dict[str, str], out_dir: str | Path, profile: str,
                     command: str = "") -> list[Path]:
    """``tables/robustness.csv`` (per split), ``tables/robustness.md`` and ``figures/robustness.png``."""
    from .viz import save_figure

    out_dir = Path(out_dir)
    files = [atomic_write_text(out_dir / "tables" / "robustness.csv", frame.to_csv(index=False, float_format="%.4f")),
             atomic_write_text(out_dir / "tables" / "robustness.md", robustness_markdown(frame, skipped, profile, command))]
    if not frame.empty:
        files.append(save_figure(robustness_figure(frame), out_dir / "figures" / "robustness.png"))
    return files


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.robustness --profile cpu [--methods LABEL ...] [--datasets viper] [--rates 1 2 …]``:
    notebook 14 without Jupyter (writes the same tables and figure)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m lib.robustness", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--output-root", default="outputs")
    ap.add_argument("--methods", nargs="+", default=None,
                    help="method/variant/output labels (default: every method's own, those without runs skipped)")
    ap.add_argument("--datasets", nargs="*", default=None)
    ap.add_argument("--splits", type=int, nargs="*", default=None)
    ap.add_argument("--rates", type=int, nargs="+", default=list(DEFAULT_RATES))
    a = ap.parse_args(argv)
    try:
        from .utils.paths import check_name
        from .workflow import output_dir

        check_name(a.profile, "--profile")  # a name: ../x, /abs or "" would write outside --output-root
        out = output_dir({"PROFILE": a.profile, "OUTPUT_ROOT": a.output_root})
        frame, skipped = sweep(out, outputs=a.methods, rates=a.rates, datasets=a.datasets or None, splits=a.splits)
    except (FileNotFoundError, ValueError) as e:
        print(f"lib.robustness: error: {e}", file=sys.stderr)
        return 2
    if frame.empty:  # nothing swept (a misspelt label or dataset, or no HR originals): the tables are left as they were
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no run matched"
        print(f"lib.robustness: error: nothing was swept ({why}); {out / 'tables'} left as it was", file=sys.stderr)
        return 1
    command = "python -m lib.robustness " + " ".join(argv if argv is not None else sys.argv[1:])
    for p in write_robustness(frame, skipped, out, a.profile, command):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
