"""One builder for every regenerated table: paper | reproduced | Δ, with the protocol and differences above it.

Paper numbers come only from the registry (:mod:`lib.paper_numbers`); reproduced numbers only from the summaries the
notebooks write (:mod:`lib.results.summaries`). What a table shows is its spec (:mod:`lib.results.specs`):

* columns: the paper table's datasets, then any other dataset with a run (a substitution where the paper's
  dataset is absent, stated above the table) — a paper dataset without a run is listed as missing;
* rows: every paper row, then each spec row that has results (mean ± sample std over splits);
* Δ (reproduced − paper) per reproduced row, on the datasets both have;
* for ablations (a ``reference`` variant): each variant's change against the reference, paper and ours side by
  side — comparable even where the dataset was substituted;
* above the table: the protocol, each dataset's manifest hash / seed / splits, and each row's differences from
  the paper row it reproduces, computed from the two configurations (``ours + variant`` vs ``paper + variant``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..paper_numbers import DATASET_LABELS, paper_table, paper_table_info
from ..utils.io import atomic_write_text
from ..utils.paths import check_name
from ..metrics.intervals import DEFAULT_B, interval_columns
from .effects import row_interval
from .specs import RowSpec, TableSpec
from .summaries import load_summaries

__all__ = ["PAPER_DATASETS", "dataset_label", "build_table", "compact_markdown", "frame_markdown", "write_table", "cell",
           "not_learning_splits"]

#: Registry dataset keys → the workbook's dataset names.
PAPER_DATASETS: dict[str, str] = {
    "mlr_market1501": "market1501", "mlr_cuhk03": "cuhk03", "mlr_viper": "viper", "mlr_dukemtmc": "dukemtmc",
    "caviar": "caviar", "market1501": "market1501", "dukemtmc": "dukemtmc",
}
_LABEL = {"rank1": "R1", "rank5": "R5", "rank10": "R10", "rank20": "R20", "mAP": "mAP", "psnr": "PSNR (dB)", "ssim": "SSIM"}
#: Decimals shown per metric (percent metrics: 1).
_DIGITS = {"psnr": 2, "ssim": 3}
PROTOCOL = ("Protocol: query = LR images, gallery = HR images; single-shot datasets (VIPeR, CUHK03, CAVIAR): the gallery "
            "holds one random image per identity, redrawn and averaged; multi-shot (Market, Duke, synthetic): "
            "same-identity same-camera gallery images removed, mAP non-interpolated.")


def cell(mean: float | None, std: float | None = None, n: int | None = 1, digits: int = 1) -> str:
    """``48.7`` or ``48.7 ± 1.2`` (std shown only over several splits); ``—`` for no value."""
    if mean is None or pd.isna(mean):
        return "—"
    if std is None or pd.isna(std) or n is None or pd.isna(n) or n < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _scale(unit: Any, metric: str) -> float:
    """100 for percent metrics (summaries hold fractions), 1 for dB / ratio (PSNR, SSIM)."""
    u = unit.get("map" if metric == "mAP" else metric, "percent") if isinstance(unit, dict) else (unit or "percent")
    return 100.0 if u == "percent" else 1.0


def dataset_label(ds: str) -> str:
    keys = [k for k, v in PAPER_DATASETS.items() if v == ds and k.startswith("mlr_")] or [k for k, v in PAPER_DATASETS.items() if v == ds]
    return DATASET_LABELS[keys[0]] if keys else ds


def _provenance_lines(results: dict, method: str, shown: list[RowSpec]) -> list[str]:
    """One line per dataset: the manifest, seeds, splits and protocol its rows were measured on.

    Rows whose summaries disagree (e.g. a single-split rerun beside a three-split summary, or another MLR seed) are
    grouped, each group naming its rows, under a warning: their differences are not like for like.
    """
    out: list[str] = []
    datasets = list(dict.fromkeys(d for (_, v, d) in sorted(results) if any(r.variant == v for r in shown)))
    for d in datasets:
        groups: dict[tuple, list[str]] = {}
        for r in shown:
            rec = results.get((method, r.variant, d))
            if rec is None or r.output not in rec.get("outputs", {}):
                continue
            key = (rec["manifest"], rec["manifest_sha256"], rec["mlr_seed"], rec["seed"], tuple(rec["splits"]), rec["protocol"])
            groups.setdefault(key, []).append(r.label)
        for (manifest, sha, mlr_seed, seed, splits, protocol), labels in groups.items():
            rows_of = f" (rows {', '.join(labels)})" if len(groups) > 1 else ""
            out.append(f"- **{d}**{rows_of}: manifest `{manifest}` (content sha256 {sha[:12]}…), MLR seed {mlr_seed}, "
                       f"training seed {seed}, splits {list(splits)}, {protocol}.")
        if len(groups) > 1:
            out.append(f"- **Not like for like on {d}**: its rows were measured on different data, seeds or splits "
                       "(above), so the differences between them mix the variants' effects with split-to-split spread. "
                       "Rerun the table with the same `SPLITS` for every row (`make reproduce` does).")
    return out


def build_table(spec: TableSpec, out_dir: str | os.PathLike, profile: str, rows: list[RowSpec] | None = None,
                *, bootstrap: int = DEFAULT_B) -> tuple[pd.DataFrame, str]:
    """The table of ``spec`` for one profile (``rows``: e.g. with generated variants; default the spec's).

    ``bootstrap``: replicates of each effect's interval (:mod:`lib.metrics.intervals`).

    Returns:
        ``(long, markdown)``: the long table (``row, source, variant, dataset, metric, value, std, num_splits, paper,
        delta``; values in percent; the effects as ``source == 'effect'`` records with ``effect_low``,
        ``effect_high``, ``effect_excludes_zero`` and ``reference``) and the Markdown text with its header.
    """
    rows = list(rows if rows is not None else spec.rows)
    info = paper_table_info(spec.paper, spec.table)
    paper = paper_table(spec.paper, spec.table, include_missing=True)
    results = load_summaries(out_dir, spec.method)
    paper_ds = [PAPER_DATASETS[d] for d in info["datasets"]]
    have = {d for (_, v, d) in results if any(r.variant == v for r in rows)}
    extra = sorted(d for d in have if d not in paper_ds)
    datasets = paper_ds + extra
    metric_keys = ["mAP" if m == "map" else m for m in info["metrics"]]

    def metrics_of(ds: str) -> list[str]:
        multi = any(rec["protocol"] == "multi_shot" for (_, _, d), rec in results.items() if d == ds)
        return metric_keys + (["mAP"] if multi and "mAP" not in metric_keys else [])

    ours_row = next((r["id"] for r in paper.to_dict("records") if r["ours"]), None)
    row_ids = {r.label: (ours_row if r.paper_row == "ours" else r.paper_row) for r in rows}
    pval = {(r.id, PAPER_DATASETS[r.dataset], "mAP" if r.metric == "map" else r.metric): r.value for r in paper.itertuples()}
    recs: list[dict[str, Any]] = []
    names = {r.id: r.method for r in paper.itertuples()}
    ours_labels = {r["method"] for r in paper.to_dict("records") if r["ours"]}
    for r in paper.itertuples():
        recs.append({"row": r.method, "source": "paper", "variant": None, "dataset": PAPER_DATASETS[r.dataset],
                     "metric": "mAP" if r.metric == "map" else r.metric, "value": None if pd.isna(r.value) else float(r.value),
                     "std": None, "num_splits": None, "paper": None, "delta": None, "paper_row": None,
                     "paper_ours": r.method in ours_labels})
    stuck = {row.label: not_learning_splits(results, spec.method, row.variant, row.output) for row in rows}
    for row in rows:
        for ds in datasets:
            rec = results.get((spec.method, row.variant, ds))
            agg = (rec or {}).get("outputs", {}).get(row.output, {}).get("aggregate")
            if agg is None:
                continue
            for m in metrics_of(ds):
                if m not in agg:
                    continue
                p = None if m in row.no_delta else pval.get((row_ids[row.label], ds, m))
                p = None if p is None or pd.isna(p) else float(p)
                k = _scale(info.get("unit"), m)
                v = k * agg[m]["mean"]
                recs.append({"row": row.label, "source": "reproduced", "variant": row.variant, "dataset": ds, "metric": m,
                             "value": v, "std": k * agg[m]["std"], "num_splits": len(agg[m]["values"]), "paper": p,
                             "delta": None if p is None else v - p,
                             "paper_row": None if p is None else names.get(row_ids[row.label]), "paper_ours": False,
                             "not_learning": ", ".join(f"split {k}" for k, _ in stuck[row.label].get(ds, []))})
    long = pd.DataFrame(recs)
    idx = {(r["row"], r["source"], r["dataset"], r["metric"]): r for r in recs}
    cols = [(ds, m) for ds in datasets for m in metrics_of(ds)]
    lines = ["| Method | " + " | ".join(f"{dataset_label(ds)} {_LABEL.get(m, m)}" for ds, m in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]

    def line(name: str, source: str, bold: bool,
             fmt=lambda r: cell(r["value"], r["std"], r["num_splits"], _DIGITS.get(r["metric"], 1))) -> str:
        cells = ["—" if idx.get((name, source, ds, m)) is None else fmt(idx[(name, source, ds, m)]) for ds, m in cols]
        return f"| {'**' + name + '**' if bold else name} | " + " | ".join(cells) + " |"

    for name in paper.method.unique():
        lines.append(line(name, "paper", name in ours_labels))
    shown = [r for r in rows if any(k[0] == r.label and k[1] == "reproduced" for k in idx)]
    for r in shown:
        text = line(r.label, "reproduced", r.paper_row == "ours")
        if stuck[r.label]:  # a run that learnt nothing is never an ordinary row (bold or not)
            for shown_as in (f"**{r.label}**", r.label):
                if f"| {shown_as} |" in text:
                    text = text.replace(f"| {shown_as} |", f"| {shown_as} ⚠ not learning |", 1)
                    break
        lines.append(text)
    for r in shown:
        if row_ids[r.label] is not None and any(idx[k]["delta"] is not None for k in idx
                                                if k[0] == r.label and k[1] == "reproduced"):
            lines.append(line(r.label, "reproduced", False, lambda x: "—" if x["delta"] is None else f"{x['delta']:+.{_DIGITS.get(x['metric'], 1)}f}")
                         .replace(f"| {r.label} |", f"| Δ {r.label} (reproduced − paper) |", 1))

    head = [f"# {spec.title}", "", f"Paper: {info['label']} — {info['caption']}", "",
            f"Profile **`{profile}`**, method `{spec.method}`. Paper rows: the registry (`lib/paper_numbers/paper_results.yaml`); "
            f"reproduced rows: this profile's runs (`results/{spec.method}/<dataset>/<variant>.json`), mean ± sample std over "
            "identity splits, in % (PSNR in dB, SSIM as a ratio). Spec: `configs/tables/" + spec.name + ".yaml`.",
            spec.protocol or PROTOCOL, ""] + [f"- {n}" for n in spec.notes]
    missing = [dataset_label(d) for d in paper_ds if d not in have]
    if extra and len(missing) == len(paper_ds):
        head.append(f"- **Substitution**: the paper ran this table on {', '.join(dataset_label(d) for d in paper_ds)}; none has a "
                    f"run in this profile, so it is reproduced on {', '.join(dataset_label(d) for d in extra)}. Δ against the paper "
                    "exists only on the paper's own datasets" + ("; compare the effects below instead." if spec.reference else "."))
    elif missing:
        head.append(f"- **Missing** (no run in this profile): {', '.join(missing)}.")
    head += _provenance_lines(results, spec.method, shown)
    for r in shown:
        for ds, bad in stuck[r.label].items():
            head.append(f"- ⚠ **Not learning**: row **{r.label}** on {dataset_label(ds)}, "
                        + "; ".join(f"split {k}: {why}" for k, why in bad) + ".")
    diffs = {}
    for r in shown:  # a line found for only some datasets (e.g. "3 of 10 identity splits") is tagged with them
        per_ds = {d: rec.get("differences") or [] for (_, v, d), rec in sorted(results.items()) if v == r.variant}
        found = list(dict.fromkeys(x for d in per_ds.values() for x in d))
        diffs[r.label] = [x if all(x in d for d in per_ds.values())
                          else f"{x} ({', '.join(k for k, d in per_ds.items() if x in d)})" for x in found]
    if diffs:
        common = set.intersection(*(set(d) for d in diffs.values()))
        if common:
            head.append(f"- Differences from the paper's setting (every row): {'; '.join(d for d in next(iter(diffs.values())) if d in common)}.")
        else:
            head.append("- Differences from the paper's setting: none — the paper setting.")
        for label, d in diffs.items():
            own = [x for x in d if x not in common]
            if own:
                head.append(f"- Row **{label}** also differs: {'; '.join(own)}.")
    if not shown:
        head.append("- No reproduced row yet: run the notebook `" + spec.notebook + "` for this profile.")
    text = "\n".join(head + [""] + lines) + "\n"
    if (spec.reference is not None or spec.reference_row is not None) and shown:
        section, effects = _effects(spec, shown, idx, row_ids, pval, paper_ds, datasets, results, out_dir, bootstrap)
        text += "\n" + section + "\n"
        if effects:
            long = pd.concat([long, pd.DataFrame(effects)], ignore_index=True)
    return long, text


def not_learning_splits(results: dict, method: str, variant: str, output: str) -> dict[str, list[tuple[int, str]]]:
    """``{dataset: [(split, why), …]}`` of the splits whose run of ``output`` learnt nothing
    (:mod:`lib.core.learning`; ``not_learning`` in the summaries' per-split metrics)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for (m, v, ds), rec in results.items():
        if m != method or v != variant:
            continue
        per = rec.get("outputs", {}).get(output, {}).get("per_split", [])
        splits = rec.get("splits", list(range(len(per))))
        bad = [(splits[i] if i < len(splits) else i, p["not_learning"]) for i, p in enumerate(per)
               if isinstance(p, dict) and p.get("not_learning")]
        if bad:
            out[ds] = bad
    return out


#: How the effects' intervals are made, in the words every table prints (docs/intervals.md).
INTERVAL_METHOD = ("paired per split and bootstrapped over query identities; over several splits Student's t on the "
                   "per-split effects, their variance floored by the bootstrap's (`lib/metrics/intervals.py`)")


def _signed(x: float, digits: int = 1) -> str:
    """``+0.8`` / ``−1.9`` (a minus sign, as the intervals print)."""
    return f"{x:+.{digits}f}".replace("-", "−")


def _reference_row(spec: TableSpec, shown: list[RowSpec]) -> RowSpec | None:
    if spec.reference_row is not None:
        return next((r for r in shown if r.label == spec.reference_row), None)
    return next((r for r in shown if r.variant == spec.reference), None)


def _effects(spec: TableSpec, shown: list[RowSpec], idx: dict, row_ids: dict, pval: dict, paper_ds: list[str],
             datasets: list[str], results: dict, out_dir: str | os.PathLike, bootstrap: int
             ) -> tuple[str, list[dict[str, Any]]]:
    """Rank-1 change of each row against the reference row, paper and ours, ours with its 95 % interval
    (:func:`lib.results.effects.row_interval`); and the effects as long-table records."""
    ref = _reference_row(spec, shown)
    what = spec.reference_row or f"variant `{spec.reference}`"
    if ref is None:
        return f"(The reference {what} has no result yet, so no effects are shown.)", []
    ours_ds = [d for d in datasets if (ref.label, "reproduced", d, "rank1") in idx]
    head = ["| Rank-1 change vs " + ref.label + " | paper (" + ", ".join(dataset_label(d) for d in paper_ds) + ") | "
            + " | ".join(f"ours {dataset_label(d)}" for d in ours_ds) + " |", "|---|---|" + "---|" * len(ours_ds)]
    records: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    for r in shown:
        if r.label == ref.label:
            continue
        pd_ = [pval.get((row_ids[r.label], d, "rank1")) for d in paper_ds]
        pr = [pval.get((row_ids[ref.label], d, "rank1")) for d in paper_ds]
        p = "—" if not pd_ or any(x is None or pd.isna(x) for x in pd_ + pr) else _signed(pd_[0] - pr[0])
        cells = []
        for d in ours_ds:
            a, b = idx.get((r.label, "reproduced", d, "rank1")), idx[(ref.label, "reproduced", d, "rank1")]
            if a is None:
                cells.append("—")
                continue
            iv, why = row_interval(out_dir, results[(spec.method, r.variant, d)], r.output,
                                   results[(spec.method, ref.variant, d)], ref.output, B=bootstrap)
            if iv is None:  # the difference of the two means, said to have no interval and why
                missing.setdefault(why, f"{r.label} on {dataset_label(d)}")
                cells.append(f"{_signed(a['value'] - b['value'])} (no interval)")
                continue
            shown = ("**" + iv.text() + "**") if iv.excludes_zero else iv.text()
            fewer = min(x for x in (a["num_splits"], b["num_splits"]) if x is not None and not pd.isna(x))
            cells.append(shown + (f" ({iv.num_splits} of {int(fewer)} splits)" if iv.num_splits < fewer else ""))
            records.append({"row": r.label, "source": "effect", "variant": r.variant, "dataset": d, "metric": "rank1",
                            "value": 100 * iv.effect, "std": None, "num_splits": iv.num_splits, "paper": None,
                            "delta": None, "paper_row": None, "paper_ours": False, "reference": ref.label,
                            **interval_columns(iv)})
        head.append(f"| {r.label} | {p} | " + " | ".join(cells) + " |")
    text = ["Effect of each variant (Rank-1 points against the reference row; ours with its 95 % interval, "
            f"{INTERVAL_METHOD}, {bootstrap} bootstrap replicates; **bold** and * = the interval excludes 0):", ""] + head
    for why, where in missing.items():
        text.append(f"\n- No interval for {where} (and any other cell marked so): {why}.")
    return "\n".join(text), records


def frame_markdown(frame: pd.DataFrame) -> str:
    """A numeric DataFrame as a Markdown table (index first, one decimal, ``—`` for NaN), without the optional
    ``tabulate`` dependency."""
    cols = [str(c) for c in frame.columns]
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for idx, row in frame.iterrows():
        lines.append(f"| {idx} | " + " | ".join("—" if v != v else f"{v:.1f}" for v in row.to_numpy(dtype=float)) + " |")
    return "\n".join(lines)


def compact_markdown(long: pd.DataFrame, full: str, name: str, metric: str | None = None) -> str:
    """The screen-sized view of a table: per dataset and reproduced row, the headline ``metric`` (default: the
    first metric the table has) as *best competitor in the paper · the paper's counterpart row · ours · Δ*; the
    full table's header (protocol, data, differences) and its effects section are kept, the full comparison is
    ``<name>_full.md`` and ``<name>.csv``."""
    if long.empty or "source" not in long:
        return full
    if metric is None:  # the table's first metric as the paper lists them, Rank-1 where it has one
        ms = list(dict.fromkeys(long["metric"]))
        metric = "rank1" if "rank1" in ms else ms[0]
    head, sep, rest = full.partition("\n| Method |")
    effects = rest.partition("\nEffect of each variant")
    tail = ("\nEffect of each variant" + effects[2]) if effects[1] else ""
    label = _LABEL.get(metric, metric)
    lines = [f"Headline metric: {label} — the whole comparison (every metric, every paper row) is in "
             f"[`{name}_full.md`]({name}_full.md) and `{name}.csv`.", "",
             f"| Dataset | Row | Best competitor in the paper | Paper (same row) | Ours | Δ (ours − paper) |",
             "|---|---|---|---|---|---|"]
    ours = long[(long.source == "reproduced") & (long.metric == metric)]
    if ours.empty:
        lines.append("| — | no reproduced row yet | | | | |")
    digits = _DIGITS.get(metric, 1)
    for ds in dict.fromkeys(ours.dataset):
        paper = long[(long.source == "paper") & (long.metric == metric) & (long.dataset == ds) & long.value.notna()]
        for r in ours[ours.dataset == ds].itertuples():
            rivals = paper[~paper.paper_ours.astype(bool) & (paper.row != r.paper_row)]
            best = rivals.loc[rivals.value.idxmax()] if len(rivals) else None
            best_s = "—" if best is None else f"{best.value:.{digits}f} ({best.row})"
            paper_s = "—" if r.paper is None or pd.isna(r.paper) else f"{r.paper:.{digits}f} ({r.paper_row})"
            delta = "—" if r.delta is None or pd.isna(r.delta) else f"{r.delta:+.{digits}f}"
            mark = f" ⚠ not learning ({r.not_learning})" if getattr(r, "not_learning", "") else ""
            lines.append(f"| {dataset_label(ds)} | {r.row}{mark} | {best_s} | {paper_s} | "
                         f"{cell(r.value, r.std, r.num_splits, digits)} | {delta} |")
    return head.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n" + tail


def write_table(long: pd.DataFrame, markdown: str, out_dir: str | os.PathLike, name: str,
                full: str | None = None) -> tuple[Path, ...]:
    """Write ``tables/<name>.csv`` and ``tables/<name>.md`` (and ``tables/<name>_full.md`` when ``full`` is given)
    atomically. ``name`` must be a plain name (:func:`~lib.utils.paths.check_name`)."""
    folder = Path(out_dir) / "tables"
    check_name(name, "table")
    csv = atomic_write_text(folder / f"{name}.csv", long.to_csv(index=False, float_format="%.4f"))
    md = atomic_write_text(folder / f"{name}.md", markdown)
    if full is None:
        return csv, md
    return csv, md, atomic_write_text(folder / f"{name}_full.md", full)
