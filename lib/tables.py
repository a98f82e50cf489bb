"""Regenerated paper tables: paper | reproduced | Δ side by side, with the protocol stated above them.

Paper numbers come only from the registry (:mod:`lib.registry`); reproduced numbers only from the
``metrics/<dataset>_pshrnet.json`` files that notebook 03 writes after its runs. A dataset without a run is
listed as missing, never silently dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .registry import DATASET_LABELS, paper_table, paper_table_info
from .utils.io import atomic_write_text

__all__ = ["TABLE1_DATASETS", "load_summaries", "table1", "write_table"]

#: Table I's dataset keys (registry) → the workbook's dataset names.
TABLE1_DATASETS: dict[str, str] = {
    "mlr_market1501": "market1501",
    "mlr_cuhk03": "cuhk03",
    "mlr_viper": "viper",
    "mlr_dukemtmc": "dukemtmc",
    "caviar": "caviar",
}
_METRICS = ("rank1", "rank5", "rank10")
_LABEL = {"rank1": "R1", "rank5": "R5", "rank10": "R10", "mAP": "mAP"}
_METHODS = {"pshrnet": "PS-HRNet (reproduced)", "baseline": "Bicubic + ID baseline (reproduced)"}


def load_summaries(out_dir: str | os.PathLike) -> dict[str, dict]:
    """``metrics/*_pshrnet.json`` of a profile's output folder, by dataset name."""
    folder = Path(out_dir) / "metrics"
    out = {}
    for p in sorted(folder.glob("*_pshrnet.json")):
        try:
            rec = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{p} is not valid JSON ({e}); re-run notebook 03 for that dataset") from None
        rec["_path"] = str(p)
        out[rec["dataset"]] = rec
    return out


def _cell(mean: float | None, std: float | None = None, n: int | None = 1) -> str:
    """``48.7`` or ``48.7 ± 1.2`` (std shown only over several splits)."""
    if mean is None or pd.isna(mean):
        return "—"
    if std is None or pd.isna(std) or n is None or pd.isna(n) or n < 2:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {std:.1f}"


def table1(out_dir: str | os.PathLike, profile: str) -> tuple[pd.DataFrame, str]:
    """Table I for one profile: every paper row, then the reproduced rows and Δ.

    Returns:
        ``(long, markdown)``: the long table (``method, source, dataset, metric, value, std, num_splits,
        paper, delta``; values in percent) and the Markdown text with the header.
    """
    paper = paper_table("ps_hrnet", "table1", include_missing=True)
    info = paper_table_info("ps_hrnet", "table1")
    runs = load_summaries(out_dir)
    extra = [d for d in runs if d not in TABLE1_DATASETS.values()]  # e.g. synthetic: ours only
    columns = [(k, TABLE1_DATASETS[k], DATASET_LABELS[k]) for k in TABLE1_DATASETS] + [(None, d, d) for d in extra]
    rows = []
    for r in paper.itertuples():
        rows.append({"method": r.method, "source": "paper", "dataset": TABLE1_DATASETS[r.dataset], "metric": r.metric,
                     "value": None if pd.isna(r.value) else float(r.value), "std": None, "num_splits": None})
    ours_paper = {(TABLE1_DATASETS[r.dataset], r.metric): r.value for r in paper.itertuples() if r.ours and not pd.isna(r.value)}
    for method, label in _METHODS.items():
        for d, rec in runs.items():
            agg = rec["methods"].get(method, {}).get("aggregate")
            if agg is None:
                continue
            metrics = list(_METRICS) + (["mAP"] if rec["protocol"] == "multi_shot" else [])
            for m in metrics:
                a = agg[m]
                rows.append({"method": label, "source": "reproduced", "dataset": d, "metric": m, "value": 100 * a["mean"],
                             "std": 100 * a["std"], "num_splits": len(a["values"])})
    long = pd.DataFrame(rows)
    long["paper"] = [ours_paper.get((d, m)) if meth == _METHODS["pshrnet"] else None  # Δ only for PS-HRNet itself
                     for meth, d, m in zip(long.method, long.dataset, long.metric)]
    long["delta"] = [v - p if p is not None and v is not None else None for v, p in zip(long.value, long.paper)]

    def metrics_of(ds: str) -> tuple[str, ...]:
        return _METRICS + (("mAP",) if runs.get(ds, {}).get("protocol") == "multi_shot" else ())

    metric_cols = [(ds, m) for _, ds, _ in columns for m in metrics_of(ds)]
    head = "| Method | " + " | ".join(f"{lbl} {_LABEL[m]}" for _, ds, lbl in columns for m in metrics_of(ds)) + " |"
    lines = [head, "|" + "---|" * (len(metric_cols) + 1)]
    idx = {(r.method, r.source, r.dataset, r.metric): r for r in long.itertuples()}

    def row(method: str, source: str, bold: bool = False) -> str:
        cells = []
        for ds, m in metric_cols:
            r = idx.get((method, source, ds, m))
            cells.append("—" if r is None else _cell(r.value, r.std, r.num_splits))
        name = f"**{method}**" if bold else method
        return f"| {name} | " + " | ".join(cells) + " |"

    for method in paper.method.unique():
        lines.append(row(method, "paper", bold=method.startswith("PS-HRNet")))
    for label in _METHODS.values():
        if any(k[0] == label for k in idx):
            lines.append(row(label, "reproduced", bold=label.startswith("PS-HRNet")))
    dl = []
    for ds, m in metric_cols:
        r = idx.get((_METHODS["pshrnet"], "reproduced", ds, m))
        dl.append("—" if r is None or r.delta is None or pd.isna(r.delta) else f"{r.delta:+.1f}")
    lines.append("| Δ (reproduced − paper) | " + " | ".join(dl) + " |")

    missing = [lbl for k, ds, lbl in columns if k and ds not in runs]
    notes = [f"# Table I — {info['caption']}", "",
             f"Profile **`{profile}`**. Paper rows: the registry (`lib/registry/paper_results.yaml`); reproduced rows: "
             "runs of this profile (`metrics/<dataset>_pshrnet.json`), mean ± sample std over identity splits, in %.",
             "Protocol: query = LR images, gallery = HR images; single-shot datasets (VIPeR, CUHK03, CAVIAR): the "
             "gallery holds one random image per identity, redrawn and averaged; multi-shot (Market, Duke, synthetic): "
             "same-identity same-camera gallery images removed, mAP non-interpolated.", ""]
    for d, rec in runs.items():
        red = "; ".join(rec.get("reductions") or []) or "none — the paper setting"
        notes.append(f"- **{d}**: manifest `{rec['manifest']}` (content sha256 {rec['manifest_sha256'][:12]}…), MLR seed "
                     f"{rec['mlr_seed']}, training seed {rec['seed']}, splits {rec['splits']}, {rec['protocol']}. "
                     f"Differences from the paper: {red}.")
    if missing:
        notes.append(f"- **Missing** (no run in this profile): {', '.join(missing)}.")
    if extra:
        notes.append(f"- Not in the paper: {', '.join(extra)} (reproduced only).")
    return long, "\n".join(notes + [""] + lines) + "\n"


def write_table(long: pd.DataFrame, markdown: str, out_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write ``tables/<name>.csv`` and ``tables/<name>.md`` atomically."""
    folder = Path(out_dir) / "tables"
    csv = atomic_write_text(folder / f"{name}.csv", long.to_csv(index=False, float_format="%.4f"))
    md = atomic_write_text(folder / f"{name}.md", markdown)
    return csv, md
