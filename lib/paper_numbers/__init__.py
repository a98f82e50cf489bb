"""The single registry of paper numbers (PROTOCOL.md §8).

Paper numbers live in one data file, ``lib/paper_numbers/paper_results.yaml`` (shipped as package data);
reproduced numbers come only from runs. This module loads and validates that file and gives the
notebooks three views of it:

* :func:`load_paper_results` – the whole validated registry as a nested ``dict`` (a copy);
* :func:`paper_table` – one table in long format (``method, id, ours, dataset, metric, value, unit``),
  ready to be merged with reproduced numbers into a *paper | reproduced | Δ* table;
* :func:`paper_value` – one number (the proposed method's row unless ``method_id`` is given).

Data layout (see the header of the YAML file for the full conventions)::

    <paper>:                      # ps_hrnet, ftwa
      citation, title, source
      tables:
        <table>:                  # table1, table2, ...
          label, caption, unit, datasets, metrics, [notes]
          rows:
            - id, method, [ref, ours, printed, backbone, note, bold, underline]
              results: {<dataset>: {<metric>: number | null}}   # the full grid; null = '-' (not reported)

Every ``results`` mapping holds exactly the table's ``datasets`` × ``metrics`` grid; a cell the paper
prints as ``-`` is ``null`` (returned as ``None`` by :func:`paper_value`, dropped by
:func:`paper_table` unless ``include_missing=True``).
"""

from __future__ import annotations

import copy
import functools
import math
import re
from importlib import resources
from typing import Any, Mapping

import pandas as pd
import yaml

__all__ = [
    "DATASET_LABELS",
    "METRIC_LABELS",
    "UNITS",
    "REGISTRY_FILE",
    "load_paper_results",
    "validate_registry",
    "paper_table",
    "paper_table_info",
    "paper_value",
]

#: Canonical dataset keys → display labels.
DATASET_LABELS: dict[str, str] = {
    "mlr_market1501": "MLR-Market-1501",
    "mlr_cuhk03": "MLR-CUHK03",
    "mlr_viper": "MLR-VIPeR",
    "mlr_dukemtmc": "MLR-DukeMTMC-reID",
    "caviar": "CAVIAR",
    "market1501": "Market-1501",
    "dukemtmc": "DukeMTMC-reID",
}

#: Canonical metric keys → display labels.
METRIC_LABELS: dict[str, str] = {
    "rank1": "Rank-1",
    "rank5": "Rank-5",
    "rank10": "Rank-10",
    "rank20": "Rank-20",
    "map": "mAP",
    "ssim": "SSIM",
    "psnr": "PSNR",
}

#: Allowed units and the closed range a value in that unit must lie in (``None`` = unbounded).
UNITS: dict[str, tuple[float | None, float | None]] = {
    "percent": (0.0, 100.0),
    "ratio": (0.0, 1.0),
    "dB": (0.0, None),
}

#: File name of the registry inside this package.
REGISTRY_FILE = "paper_results.yaml"

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PAPER_REQUIRED = {"citation", "tables"}
_PAPER_OPTIONAL = {"title", "source", "notes"}
_TABLE_REQUIRED = {"label", "caption", "unit", "datasets", "metrics", "rows"}
_TABLE_OPTIONAL = {"notes"}
_ROW_REQUIRED = {"id", "method", "results"}
_ROW_OPTIONAL = {"ref", "ours", "printed", "backbone", "note", "bold", "underline"}


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------
def _fail(where: str, msg: str) -> None:
    raise ValueError(f"{REGISTRY_FILE}: {where}: {msg}")


def _check_keys(where: str, obj: Any, required: set[str], optional: set[str]) -> None:
    if not isinstance(obj, Mapping):
        _fail(where, f"expected a mapping, got {type(obj).__name__}")
    missing = sorted(required - set(obj))
    if missing:
        _fail(where, f"missing key(s) {missing}")
    unknown = sorted(set(obj) - required - optional)
    if unknown:
        _fail(where, f"unknown key(s) {unknown}; allowed: {sorted(required | optional)}")


def _check_str(where: str, value: Any, *, key_like: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"expected a non-empty string, got {value!r}")
    if key_like and not _KEY_RE.match(value):
        _fail(where, f"{value!r} is not a machine-readable key (lower case, digits, '_')")
    return value


def _check_str_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        _fail(where, f"expected a list of non-empty strings, got {value!r}")
    return list(value)


def _check_key_list(where: str, value: Any, known: Mapping[str, str], what: str) -> list[str]:
    if not isinstance(value, list) or not value:
        _fail(where, f"expected a non-empty list of {what} keys, got {value!r}")
    for v in value:
        if v not in known:
            _fail(where, f"unknown {what} key {v!r}; known: {sorted(known)}")
    if len(set(value)) != len(value):
        _fail(where, f"duplicate {what} keys in {value!r}")
    return list(value)


def _grid_msg(what: str, got: list, expected: list[str]) -> str:
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    parts = ([f"missing {missing}"] if missing else []) + ([f"extra {extra}"] if extra else [])
    return (f"{what} {got} do not match the table's {what} {expected} ({', '.join(parts)}); "
            "every row holds the full grid, write null for a value the paper does not report ('-')")


def _validate_table(where: str, table: Any) -> dict:
    _check_keys(where, table, _TABLE_REQUIRED, _TABLE_OPTIONAL)
    out: dict[str, Any] = {
        "label": _check_str(f"{where}.label", table["label"]),
        "caption": _check_str(f"{where}.caption", table["caption"]),
    }
    datasets = _check_key_list(f"{where}.datasets", table["datasets"], DATASET_LABELS, "dataset")
    metrics = _check_key_list(f"{where}.metrics", table["metrics"], METRIC_LABELS, "metric")
    unit = table["unit"]
    if isinstance(unit, str):
        if unit not in UNITS:
            _fail(f"{where}.unit", f"unknown unit {unit!r}; known: {sorted(UNITS)}")
        units = {m: unit for m in metrics}
    elif isinstance(unit, Mapping):
        if set(unit) != set(metrics):
            _fail(f"{where}.unit", f"a per-metric unit mapping must have exactly the keys {metrics}, got {sorted(unit)}")
        for m, u in unit.items():
            if u not in UNITS:
                _fail(f"{where}.unit.{m}", f"unknown unit {u!r}; known: {sorted(UNITS)}")
        units = {m: unit[m] for m in metrics}
    else:
        _fail(f"{where}.unit", f"expected a unit name or a metric -> unit mapping, got {unit!r}")
    out.update(unit=copy.deepcopy(unit), units=units, datasets=datasets, metrics=metrics)
    if "notes" in table:
        out["notes"] = _check_str_list(f"{where}.notes", table["notes"])

    rows = table["rows"]
    if not isinstance(rows, list) or not rows:
        _fail(f"{where}.rows", f"expected a non-empty list of rows, got {rows!r}")
    seen: set[str] = set()
    ours = []
    out_rows = []
    for i, row in enumerate(rows):
        rwhere = f"{where}.rows[{i}]"
        if isinstance(row, Mapping) and isinstance(row.get("id"), str):
            rwhere += f" (id={row['id']!r})"
        _check_keys(rwhere, row, _ROW_REQUIRED, _ROW_OPTIONAL)
        rid = _check_str(f"{rwhere}.id", row["id"], key_like=True)
        if rid in seen:
            _fail(rwhere, f"duplicate row id {rid!r}")
        seen.add(rid)
        orow: dict[str, Any] = {"id": rid, "method": _check_str(f"{rwhere}.method", row["method"])}
        if "ref" in row:
            if isinstance(row["ref"], bool) or not isinstance(row["ref"], int) or row["ref"] < 1:
                _fail(f"{rwhere}.ref", f"expected a positive integer (bibliography number), got {row['ref']!r}")
            orow["ref"] = row["ref"]
        if "ours" in row and not isinstance(row["ours"], bool):
            _fail(f"{rwhere}.ours", f"expected true/false, got {row['ours']!r}")
        orow["ours"] = bool(row.get("ours", False))
        if orow["ours"]:
            ours.append(rid)
        for key in ("printed", "backbone", "note"):
            if key in row:
                orow[key] = _check_str(f"{rwhere}.{key}", row[key])

        results = row["results"]
        if not isinstance(results, Mapping):
            _fail(f"{rwhere}.results", f"expected a mapping dataset -> {{metric: value}}, got {results!r}")
        if set(results) != set(datasets):
            _fail(f"{rwhere}.results", _grid_msg("datasets", list(results), datasets))
        ores: dict[str, dict[str, float | None]] = {}
        for d in datasets:
            cells = results[d]
            if not isinstance(cells, Mapping):
                _fail(f"{rwhere}.results.{d}", f"expected a mapping metric -> value, got {cells!r}")
            if set(cells) != set(metrics):
                _fail(f"{rwhere}.results.{d}", _grid_msg("metrics", list(cells), metrics))
            ores[d] = {}
            for m in metrics:
                v = cells[m]
                cwhere = f"{rwhere}.results.{d}.{m}"
                if v is None:
                    ores[d][m] = None
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    _fail(cwhere, f"expected a number or null, got {v!r}")
                v = float(v)
                lo, hi = UNITS[units[m]]
                if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
                    _fail(cwhere, f"{v!r} is outside the range of unit {units[m]!r} [{lo}, {hi}]")
                ores[d][m] = v
        orow["results"] = ores
        for mark in ("bold", "underline"):
            if mark in row:
                cells = _check_str_list(f"{rwhere}.{mark}", row[mark])
                for c in cells:
                    d, _, m = c.partition(".")
                    if d not in ores or m not in ores[d]:
                        _fail(f"{rwhere}.{mark}", f"{c!r} is not a 'dataset.metric' cell of this table")
                    if ores[d][m] is None:
                        _fail(f"{rwhere}.{mark}", f"{c!r} marks a cell that is null")
                orow[mark] = cells
        out_rows.append(orow)
    if len(ours) > 1:
        _fail(where, f"more than one row has ours: true ({ours})")
    out["rows"] = out_rows
    return out


def validate_registry(data: Any) -> dict:
    """Validate a registry structure and return a normalised copy.

    Checks every paper, table and row (required and allowed keys, canonical dataset/metric keys,
    units, the complete dataset × metric grid per row, unique row ids, at most one ``ours`` row per
    table, value ranges per unit, ``bold``/``underline`` cells). Numbers are returned as ``float``;
    each table gains ``units`` (metric → unit) and each row an explicit ``ours`` flag.

    Raises:
        ValueError: naming the offending location, e.g.
            ``paper_results.yaml: ps_hrnet.tables.table1.rows[3] (id='se_resnet50').results.caviar.rank1: ...``.
    """
    if not isinstance(data, Mapping) or not data:
        _fail("<top>", f"expected a non-empty mapping paper -> {{citation, tables}}, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for paper, pdata in data.items():
        where = str(paper)
        _check_str(f"{where} (paper key)", paper, key_like=True)
        _check_keys(where, pdata, _PAPER_REQUIRED, _PAPER_OPTIONAL)
        opaper: dict[str, Any] = {"citation": _check_str(f"{where}.citation", pdata["citation"])}
        for key in ("title", "source"):
            if key in pdata:
                opaper[key] = _check_str(f"{where}.{key}", pdata[key])
        if "notes" in pdata:
            opaper["notes"] = _check_str_list(f"{where}.notes", pdata["notes"])
        tables = pdata["tables"]
        if not isinstance(tables, Mapping) or not tables:
            _fail(f"{where}.tables", f"expected a non-empty mapping table -> spec, got {tables!r}")
        opaper["tables"] = {}
        for tkey, table in tables.items():
            _check_str(f"{where}.tables.{tkey} (table key)", tkey, key_like=True)
            opaper["tables"][tkey] = _validate_table(f"{where}.tables.{tkey}", table)
        out[paper] = opaper
    return out


# --------------------------------------------------------------------------------------------------
# loading and queries
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _registry() -> dict:
    text = resources.files(__name__).joinpath(REGISTRY_FILE).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there
    return validate_registry(yaml.load(text, Loader=loader))


def load_paper_results() -> dict:
    """The whole validated registry: ``{paper: {citation, title, source, tables: {...}}}``.

    The file is read and validated once per process (cached); each call returns a deep copy, so the
    caller may modify it freely.

    Raises:
        ValueError: when the data file is malformed (see :func:`validate_registry`).
    """
    return copy.deepcopy(_registry())


def _lookup(mapping: Mapping[str, Any], key: str, what: str, where: str = "") -> Any:
    if key not in mapping:
        at = f" in {where}" if where else ""
        raise KeyError(f"unknown {what} {key!r}{at}; known: {', '.join(map(str, mapping))}")
    return mapping[key]


def _table(paper: str, table: str) -> dict:
    reg = _registry()
    p = _lookup(reg, paper, "paper")
    return _lookup(p["tables"], table, "table", paper)


def paper_table_info(paper: str, table: str) -> dict:
    """Metadata of one table (``label, caption, unit, units, datasets, metrics, notes``), without rows.

    Raises:
        KeyError: unknown paper or table (the message lists the known keys).
    """
    t = _table(paper, table)
    return copy.deepcopy({k: v for k, v in t.items() if k != "rows"})


def paper_table(paper: str, table: str, *, include_missing: bool = False) -> pd.DataFrame:
    """One paper table in long format.

    Columns: ``method`` (display label), ``id`` (row id), ``ours`` (bool), ``dataset``, ``metric``
    (canonical keys), ``value`` (float, as printed), ``unit``. Rows follow the printed order (row,
    then dataset, then metric). Cells the paper does not report ('-') are dropped unless
    ``include_missing`` is true, in which case their ``value`` is NaN.

    Raises:
        KeyError: unknown paper or table (the message lists the known keys).
    """
    t = _table(paper, table)
    records = []
    for row in t["rows"]:
        for d in t["datasets"]:
            for m in t["metrics"]:
                v = row["results"][d][m]
                if v is None and not include_missing:
                    continue
                records.append({
                    "method": row["method"], "id": row["id"], "ours": row["ours"], "dataset": d, "metric": m,
                    "value": math.nan if v is None else v, "unit": t["units"][m],
                })
    cols = ["method", "id", "ours", "dataset", "metric", "value", "unit"]
    df = pd.DataFrame.from_records(records, columns=cols)
    return df.astype({"ours": bool, "value": float})


def paper_value(paper: str, table: str, dataset: str, metric: str, method_id: str | None = None) -> float | None:
    """One printed number, e.g. ``paper_value("ps_hrnet", "table1", "mlr_cuhk03", "rank1") == 92.6``.

    Args:
        paper: paper key (``ps_hrnet``, ``ftwa``).
        table: table key (``table1`` …).
        dataset: canonical dataset key of that table.
        metric: canonical metric key of that table.
        method_id: row ``id``; by default the table's ``ours: true`` row.

    Returns:
        The value as printed (float), or ``None`` when the paper prints '-' (not reported).

    Raises:
        KeyError: unknown paper, table, dataset, metric or row id, or no ``ours`` row in the table
            and no ``method_id`` given; the message lists the known keys.
    """
    t = _table(paper, table)
    where = f"{paper}.{table}"
    _lookup(dict.fromkeys(t["datasets"]), dataset, "dataset", where)
    _lookup(dict.fromkeys(t["metrics"]), metric, "metric", where)
    rows = {r["id"]: r for r in t["rows"]}
    if method_id is None:
        ours = [r for r in t["rows"] if r["ours"]]
        if not ours:
            raise KeyError(f"{where} has no 'ours' row; pass method_id, one of: {', '.join(rows)}")
        row = ours[0]
    else:
        row = _lookup(rows, method_id, "method_id", where)
    return row["results"][dataset][metric]
