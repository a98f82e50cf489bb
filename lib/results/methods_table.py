"""Beyond both papers: the methods side by side on the same data, splits, backbone and epoch budget.

Each registered method lists its rows (:attr:`lib.methods.Method.methods_rows`: PS-HRNet's student and the bicubic
+ ID baseline, FTWA …) and ``configs/methods_table.yaml`` gives the title, notes and reference row. Each row comes
from the configuration of the same profile (``configs/<method>/<profile>.yaml``, where ``<profile>``
is the stem of the notebook's ``CONFIG``: the profiles are written to match — backbone, input size, P × K, epochs),
and the paper number each is compared with (its own paper's Table I / Table 1). Columns: Rank-1 / Rank-5 per
dataset (mean ± std over the splits) with the paper's Rank-1 and Δ, the number of parameters (all trained; and
those one LR query passes through at test time) and the test-time cost in ms per query (the query's feature, one
forward pass without the flip, measured on this machine). ``tables/methods.{csv,md}``.

This module is handed finished experiments (:func:`methods_table`); :func:`lib.workflow.run_methods_table` runs
or reuses them first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..core.config import ConfigError, from_dict, load_config_file
from ..methods.contract import MethodsRow
from ..metrics.intervals import DEFAULT_B, Interval, interval_columns
from ..utils.io import atomic_write_text
from ..utils.paths import repo_root
from .effects import row_interval
from .tables import INTERVAL_METHOD, PAPER_DATASETS, dataset_label, cell, not_learning_splits

__all__ = ["MethodRow", "MethodsSpec", "load_methods_spec", "methods_table", "query_cost", "SPEC_FILE"]

SPEC_FILE = "configs/methods_table.yaml"


@dataclass(frozen=True)
class MethodRow(MethodsRow):
    """One row: a method's :class:`~lib.methods.MethodsRow` (``output`` of its ``variant``, the paper-numbers row it
    is compared with) and the ``method`` it belongs to."""

    method: str = ""


@dataclass(frozen=True)
class MethodsSpec:
    """``rows``: every registered method's rows, in registration order (filled by :func:`load_methods_spec`);
    ``reference``: the label of the row every other row's Rank-1 is compared with, each effect with its interval
    (:mod:`lib.metrics.intervals`; ``None``: no effects); ``datasets_of``: ``(paper, table)`` of the paper-numbers
    table whose datasets ``make reproduce TABLES=methods`` runs on."""

    title: str
    rows: tuple[MethodRow, ...] = ()
    notes: tuple[str, ...] = ()
    reference: str | None = None
    datasets_of: tuple[str, ...] = ("ftwa", "table1")

    def __post_init__(self) -> None:
        if self.reference is not None and self.rows and self.reference not in {r.label for r in self.rows}:
            raise ValueError(f"reference {self.reference!r} is not a row label ({', '.join(r.label for r in self.rows)})")
        if len(self.datasets_of) != 2:
            raise ValueError(f"datasets_of: expected [paper, table], found {list(self.datasets_of)}")


def method_rows() -> tuple[MethodRow, ...]:
    """Every registered method's methods-table rows (:attr:`lib.methods.Method.methods_rows`), in registration
    order."""
    from ..methods import METHODS

    return tuple(MethodRow(**{f: getattr(r, f) for f in MethodsRow.__dataclass_fields__}, method=m.name)
                 for m in METHODS.in_order() for r in m.methods_rows)


def load_methods_spec(path: str | Path = SPEC_FILE) -> MethodsSpec:
    """The methods table's spec: title, notes, reference and ``datasets_of`` from ``path``, rows from the
    registered methods.

    Raises:
        ConfigError: a bad file, naming it and the key — a ``rows`` key included: rows come from each method's
            ``methods_rows``, not from this file.
    """
    p = repo_root() / path
    data = load_config_file(p)
    if "rows" in data:
        raise ConfigError(f"{p}: 'rows' is not read from this file: each method lists its rows in its Method "
                          "(methods_rows, lib/methods/<method>/__init__.py)", key="rows")
    try:
        spec = from_dict(MethodsSpec, data, where=str(p))
        return replace(spec, rows=method_rows())
    except ValueError as e:
        raise ConfigError(f"{p}: {e}") if not isinstance(e, ConfigError) else e from None


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def _used_params(module: nn.Module, x: torch.Tensor) -> int:
    """Parameters of the submodules one forward pass of ``x`` runs through (forward hooks on every module)."""
    seen: dict[int, nn.Parameter] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o: seen.update({id(p): p for p in mod.parameters(recurse=False)}))
             for m in module.modules()]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for h in hooks:
            h.remove()
    return sum(p.numel() for p in seen.values())


def query_cost(module: nn.Module, images, *, size, interpolation: str, precision, batch_size: int = 64,
               repeats: int = 3) -> dict[str, float]:
    """``{'ms_per_query', 'query_params', 'batch'}``: the median over ``repeats`` of one forward pass of a batch of LR
    query images (after one warm-up pass), divided by the batch size; the parameters that pass uses."""
    from ..data.datasets import ImageDataset

    ds = ImageDataset(images[:batch_size], size, use="stored", resize_interpolation=interpolation)
    x = torch.stack([ds[i]["img"] for i in range(len(ds))]).to(precision.device)
    module.eval()
    times = []
    with torch.inference_mode(), precision.autocast():
        for i in range(repeats + 1):
            if precision.device.type == "cuda":
                torch.cuda.synchronize(precision.device)
            t0 = time.perf_counter()
            module(x)
            if precision.device.type == "cuda":
                torch.cuda.synchronize(precision.device)
            if i:
                times.append(time.perf_counter() - t0)
    return {"ms_per_query": 1000 * sorted(times)[len(times) // 2] / len(x), "query_params": _used_params(module, x),
            "batch": len(x)}


def methods_table(spec: MethodsSpec, exps: Mapping[str, Any], configs: Mapping[str, str], params: Mapping[str, Any],
                  out: Path):
    """The methods table of finished experiments ``exps`` (``{method: Experiment}``, each holding its rows'
    variants on the same datasets and splits; ``configs``: ``{method: configuration file}``): each row's test-time
    cost measured on the first dataset's first split, its Rank-1 / Rank-5, the paper's, and its effect against the
    reference row; writes ``out/tables/methods.{csv,md}``. Returns ``(frame, markdown, paths)``. Trains nothing."""
    from ..methods import METHODS
    from ..paper_numbers import paper_table

    records, costs, stuck = [], {}, {}
    for r in spec.rows:
        exp = exps[r.method]
        if not exp.runs:
            continue
        stuck[r.label] = not_learning_splits({(r.method, v, d): rec for (v, d), rec in exp.summaries.items()},
                                             r.method, r.variant, r.output)
        variant, ds, k = next(key for key in exp.runs if key[0] == r.variant)
        cfg = exp.configs[r.variant]
        module, interp = METHODS.get(r.method).query_path(r.output, exp.runs[(variant, ds, k)], cfg)
        prec = cfg.runtime.precision_for()
        cost = query_cost(module, exp.datasets[ds].split(k).query, size=cfg.data.size, interpolation=interp,
                          precision=prec, batch_size=cfg.test.batch_size)
        runs = exp.runs[(variant, ds, k)]  # the stages this output needs (PS-HRNet: the teacher too)
        trained = sum(_param_count(mod) for s in METHODS.get(r.method).stages_for([r.output]) for mod in runs[s].modules.values())
        costs[r.label] = cost | {"params": trained, "device": str(prec.device), "measured_on": f"{ds} split {k}"}
        paper = paper_table(r.paper, r.paper_table) if r.paper else None
        for (v, dsn), rec in exp.summaries.items():
            if v != r.variant:
                continue
            agg = rec["outputs"].get(r.output, {}).get("aggregate", {})
            for m in ("rank1", "rank5"):
                if m not in agg:
                    continue
                p = None
                if paper is not None:
                    hit = paper[(paper.id == r.paper_row) & (paper.dataset.map(PAPER_DATASETS) == dsn) & (paper.metric == m)]
                    p = float(hit.value.iloc[0]) if len(hit) and pd.notna(hit.value.iloc[0]) else None
                v100 = 100 * agg[m]["mean"]
                records.append({"row": r.label, "method": r.method, "config": configs[r.method], "dataset": dsn,
                                "metric": m, "value": v100, "std": 100 * agg[m]["std"], "num_splits": agg["num_splits"],
                                "paper": p, "delta": None if p is None else v100 - p, **costs[r.label]})
    effects = _effects(spec, exps, out, int(params.get("BOOTSTRAP", DEFAULT_B)))
    for rec in records:  # the CSV keeps each Rank-1 effect's bounds beside the row's Rank-1
        iv = effects.get((rec["row"], rec["dataset"]))
        if rec["metric"] == "rank1" and isinstance(iv, Interval):
            rec |= {"reference": spec.reference, **interval_columns(iv)}
    frame = pd.DataFrame(records)
    text = _markdown(spec, frame, costs, configs, params, stuck, effects)
    folder = out / "tables"
    paths = [atomic_write_text(folder / "methods.csv", frame.to_csv(index=False, float_format="%.4f")),
             atomic_write_text(folder / "methods.md", text)]
    return frame, text, paths


def _effects(spec: MethodsSpec, exps: dict, out: Path, bootstrap: int) -> dict[tuple[str, str], Interval | str]:
    """``(row label, dataset) -> interval`` of each row's Rank-1 minus the reference row's (the reason where none)."""
    if spec.reference is None:
        return {}
    ref = next(r for r in spec.rows if r.label == spec.reference)
    out_effects: dict[tuple[str, str], Interval | str] = {}
    for r in spec.rows:
        if r.label == ref.label:
            continue
        for (v, ds), rec in exps[r.method].summaries.items():
            base = exps[ref.method].summaries.get((ref.variant, ds))
            if v != r.variant or base is None:
                continue
            iv, why = row_interval(out, rec, r.output, base, ref.output, B=bootstrap)
            out_effects[(r.label, ds)] = iv if iv is not None else why
    return out_effects


def _markdown(spec: MethodsSpec, frame: pd.DataFrame, costs: dict, configs: dict, params: Mapping[str, Any],
              stuck: Mapping[str, dict] | None = None, effects: Mapping[tuple[str, str], Any] | None = None) -> str:
    profile = params.get("PROFILE", "tiny")
    datasets = list(dict.fromkeys(frame.dataset)) if len(frame) else []
    head = [f"# {spec.title}", "", f"Profile **`{profile}`**. Configurations: "
            + ", ".join(f"`{c}`" for c in configs.values())
            + f"; rows: each method's `methods_rows`, title and reference `{SPEC_FILE}`. Reproduced numbers: mean ± sample std over identity splits (%); paper: each "
            "method's own paper (registry), Δ = ours − paper. Protocol: LR query vs HR gallery (single-shot VIPeR / "
            "CUHK03 / CAVIAR; multi-shot Market / Duke / synthetic). Parameters: every trained module of the run "
            "(M); 'query' counts those one LR query's feature passes through. ms / query: one forward pass of a "
            "batch of LR queries divided by its size (no flip), median of 3, on the device named below.", ""]
    head += [f"- {n}" for n in spec.notes]
    if costs:
        c = next(iter(costs.values()))
        head.append(f"- Cost measured on `{c['device']}`, {c['measured_on']}, batch {c['batch']}; timings on a shared "
                    "machine vary by tens of per cent — compare rows of one table, not tables.")
    for label, bad in (stuck or {}).items():
        for d, splits in bad.items():
            head.append(f"- ⚠ **Not learning**: row **{label}** on {dataset_label(d)}, "
                        + "; ".join(f"split {k}: {why}" for k, why in splits) + ".")
    cols = ["Method", "Params (M)", "Query params (M)", "ms / query"]
    for d in datasets:
        cols += [f"{dataset_label(d)} R1", f"{dataset_label(d)} R5", f"{dataset_label(d)} paper R1", f"{dataset_label(d)} Δ R1"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for label, c in costs.items():
        shown = f"{label} ⚠ not learning" if (stuck or {}).get(label) else label
        cells = [shown, f"{c['params'] / 1e6:.2f}", f"{c['query_params'] / 1e6:.2f}", f"{c['ms_per_query']:.2f}"]
        for d in datasets:
            sub = frame[(frame.row == label) & (frame.dataset == d)]
            get = lambda m: sub[sub.metric == m].iloc[0] if (sub.metric == m).any() else None  # noqa: E731
            r1, r5 = get("rank1"), get("rank5")
            # r["std"], not r.std: a row is a Series, whose .std is its method (so every field by key)
            cells += ["—" if r1 is None else cell(r1["value"], r1["std"], r1["num_splits"]),
                      "—" if r5 is None else cell(r5["value"], r5["std"], r5["num_splits"]),
                      "—" if r1 is None or pd.isna(r1["paper"]) else f"{r1['paper']:.1f}",
                      "—" if r1 is None or pd.isna(r1["delta"]) else f"{r1['delta']:+.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if not costs:
        lines.append("| (no run yet) |" + " — |" * (len(cols) - 1))
    if effects:
        lines += ["", f"Rank-1 change against **{spec.reference}** (points; 95 % interval, {INTERVAL_METHOD}; "
                  "**bold** and * = the interval excludes 0):", "",
                  "| Method | " + " | ".join(f"{dataset_label(d)}" for d in datasets) + " |",
                  "|" + "---|" * (len(datasets) + 1)]
        for label in dict.fromkeys(k[0] for k in effects):
            cells = []
            for d in datasets:
                iv = effects.get((label, d))
                cells.append("—" if iv is None else f"no interval ({iv})" if isinstance(iv, str)
                             else f"**{iv.text()}**" if iv.excludes_zero else iv.text())
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(head + [""] + lines) + "\n"
