"""The paper-number registry (PROTOCOL §8): structure, spot checks, a full re-parse of every table
from the seed texts, the loader API and the validator's error messages."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from lib.paper_numbers import (
    DATASET_LABELS,
    METRIC_LABELS,
    load_paper_results,
    paper_table,
    paper_table_info,
    paper_value,
    validate_registry,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEEDS = SHARED / "seeds"

# printed table → number of printed data rows
EXPECTED_ROWS = {
    ("ps_hrnet", "table1"): 25,  # 24 compared methods + "Ours"
    ("ps_hrnet", "table2"): 3,
    ("ps_hrnet", "table3"): 7,
    ("ps_hrnet", "table4"): 5,
    ("ps_hrnet", "table5"): 3,
    ("ps_hrnet", "table6"): 7,
    ("ps_hrnet", "table7"): 3,
    ("ftwa", "table1"): 6,
    ("ftwa", "table2"): 4,
}
ALL_TABLES = sorted(EXPECTED_ROWS)

# (paper, table, dataset, metric, row id or None for the 'ours' row, printed value)
SPOT_CHECKS = [
    ("ps_hrnet", "table1", "mlr_market1501", "rank1", "pcb", 76.9),
    ("ps_hrnet", "table1", "caviar", "rank10", None, 96.3),
    ("ps_hrnet", "table1", "mlr_cuhk03", "rank1", None, 92.6),
    ("ps_hrnet", "table1", "mlr_viper", "rank5", "sld2l", 44.0),
    ("ps_hrnet", "table1", "mlr_dukemtmc", "rank5", "pyrnet_pri", 91.1),
    ("ps_hrnet", "table1", "mlr_market1501", "rank10", "densenet121", None),
    ("ps_hrnet", "table2", "mlr_market1501", "rank1", "id", 84.7),
    ("ps_hrnet", "table2", "mlr_market1501", "rank5", "sr_id", 95.1),
    ("ps_hrnet", "table2", "mlr_market1501", "rank10", None, 97.9),
    ("ps_hrnet", "table3", "mlr_cuhk03", "ssim", "cyclegan", 0.55),
    ("ps_hrnet", "table3", "mlr_cuhk03", "psnr", "solo_sr", 27.9),
    ("ps_hrnet", "table3", "mlr_cuhk03", "rank1", "solo_sr", 0.04),
    ("ps_hrnet", "table3", "mlr_cuhk03", "rank1", None, 92.6),
    ("ps_hrnet", "table4", "mlr_market1501", "rank1", "bicubic", 64.7),
    ("ps_hrnet", "table4", "mlr_market1501", "rank5", "rcan", 89.6),
    ("ps_hrnet", "table4", "mlr_market1501", "rank10", "vdsr_ca", 92.0),
    ("ps_hrnet", "table5", "market1501", "map", "aap", 83.8),
    ("ps_hrnet", "table5", "dukemtmc", "map", "amp", 74.0),
    ("ps_hrnet", "table5", "dukemtmc", "rank10", "aap_amp", 96.0),
    ("ps_hrnet", "table6", "market1501", "rank1", "dpfl", 88.9),
    ("ps_hrnet", "table6", "dukemtmc", "map", "densenet121", 46.2),
    ("ps_hrnet", "table6", "market1501", "map", None, 84.1),
    ("ps_hrnet", "table7", "mlr_market1501", "rank1", "seq5_lc", 90.5),
    ("ps_hrnet", "table7", "mlr_market1501", "rank10", "all", 97.5),
    ("ps_hrnet", "table7", "mlr_market1501", "rank5", "seq1_seq4_seq5_lc", 96.7),
    ("ftwa", "table1", "mlr_cuhk03", "rank1", None, 83.2),
    ("ftwa", "table1", "caviar", "rank5", "rain", 77.3),
    ("ftwa", "table1", "mlr_market1501", "rank1", "rain", None),
    ("ftwa", "table1", "mlr_viper", "rank5", "sing", 57.0),
    ("ftwa", "table2", "mlr_cuhk03", "rank1", "baseline", 46.3),
    ("ftwa", "table2", "mlr_cuhk03", "rank5", "ftwa_b", 78.7),
    ("ftwa", "table2", "mlr_cuhk03", "rank1", "ftwa_r", 82.3),
]


# --------------------------------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------------------------------
def test_registry_loads_and_covers_all_printed_tables():
    reg = load_paper_results()
    assert set(reg) == {"ps_hrnet", "ftwa"}
    assert sorted((p, t) for p in reg for t in reg[p]["tables"]) == ALL_TABLES
    for p in reg:
        assert reg[p]["citation"] and reg[p]["source"].startswith("seeds/")


@pytest.mark.parametrize("paper,table", ALL_TABLES)
def test_table_structure(paper, table):
    t = load_paper_results()[paper]["tables"][table]
    assert len(t["rows"]) == EXPECTED_ROWS[(paper, table)]
    assert all(d in DATASET_LABELS for d in t["datasets"]) and all(m in METRIC_LABELS for m in t["metrics"])
    ids = [r["id"] for r in t["rows"]]
    assert len(set(ids)) == len(ids)
    assert sum(r["ours"] for r in t["rows"]) == 1  # every printed table has the proposed method's row
    for r in t["rows"]:  # the full grid, in the table's order
        assert list(r["results"]) == t["datasets"]
        assert all(list(cells) == t["metrics"] for cells in r["results"].values())


def test_table1_shape():
    t = load_paper_results()["ps_hrnet"]["tables"]["table1"]
    assert t["datasets"] == ["mlr_market1501", "mlr_cuhk03", "mlr_viper", "mlr_dukemtmc", "caviar"]
    assert t["metrics"] == ["rank1", "rank5", "rank10"]
    assert len(t["rows"]) == 25 and t["rows"][-1]["id"] == "ps_hrnet" and t["rows"][-1]["method"] == "PS-HRNet (Ours)"
    df = paper_table("ps_hrnet", "table1", include_missing=True)
    wide = df.pivot_table(index="id", columns=["dataset", "metric"], values="value", dropna=False, sort=False)
    assert wide.shape == (25, 15)


def test_ablation_row_ids():
    reg = load_paper_results()["ps_hrnet"]["tables"]
    ids = {t: [r["id"] for r in reg[t]["rows"]] for t in reg}
    assert ids["table2"] == ["id", "sr_id", "sr_id_ps"]
    assert ids["table4"] == ["bicubic", "srcnn", "vdsr", "rcan", "vdsr_ca"]
    assert ids["table5"] == ["aap", "amp", "aap_amp"]
    assert ids["table7"] == ["seq5_lc", "all", "seq1_seq4_seq5_lc"]
    assert [r["backbone"] for r in reg["table6"]["rows"]][-2:] == ["HRNetV2-W32", "HRNetV2-W32"]


@pytest.mark.parametrize("paper,table,dataset,metric,method_id,expected", SPOT_CHECKS)
def test_spot_checks(paper, table, dataset, metric, method_id, expected):
    assert paper_value(paper, table, dataset, metric, method_id) == expected


def test_solo_sr_rank1_is_as_printed_and_annotated():
    row = next(r for r in load_paper_results()["ps_hrnet"]["tables"]["table3"]["rows"] if r["id"] == "solo_sr")
    assert row["results"]["mlr_cuhk03"]["rank1"] == 0.04 and "0.04" in row["note"]
    assert paper_table_info("ps_hrnet", "table3")["units"] == {"ssim": "ratio", "psnr": "dB", "rank1": "percent"}


def test_cross_table_consistency_and_prose_claims():
    v = paper_value
    # the full model appears in several PS-HRNet tables with the same numbers
    for m in ("rank1", "rank5", "rank10"):
        assert v("ps_hrnet", "table2", "mlr_market1501", m) == v("ps_hrnet", "table1", "mlr_market1501", m)
        assert v("ps_hrnet", "table7", "mlr_market1501", m) == v("ps_hrnet", "table1", "mlr_market1501", m)
    assert v("ps_hrnet", "table3", "mlr_cuhk03", "rank1") == v("ps_hrnet", "table1", "mlr_cuhk03", "rank1")
    for d in ("market1501", "dukemtmc"):  # HRNet-ReID (Table VI) = AAP+AMP (Table V)
        for m in ("rank1", "map"):
            assert v("ps_hrnet", "table6", d, m) == v("ps_hrnet", "table5", d, m)
    for m in ("rank1", "rank5"):
        assert v("ftwa", "table2", "mlr_cuhk03", m) == v("ftwa", "table1", "mlr_cuhk03", m)
    # PS-HRNet text: "+2.9%" with SR loss, "+3.9%" with PS loss (Table II), "+6.1%" Rank-1 on MLR-CUHK03 (Table I)
    t2 = lambda i: v("ps_hrnet", "table2", "mlr_market1501", "rank1", i)  # noqa: E731
    assert round(t2("sr_id") - t2("id"), 1) == 2.9 and round(t2("sr_id_ps") - t2("sr_id"), 1) == 3.9
    t1 = paper_table("ps_hrnet", "table1").query("dataset == 'mlr_cuhk03' and metric == 'rank1'")
    best_other = t1.loc[~t1["ours"], "value"].max()
    assert round(v("ps_hrnet", "table1", "mlr_cuhk03", "rank1") - best_other, 1) == 6.1


# --------------------------------------------------------------------------------------------------
# re-parse the printed tables from the seed texts
# --------------------------------------------------------------------------------------------------
HEADER_DATASETS = {
    "MLR-Market-1501": "mlr_market1501", "MLR-CUHK03": "mlr_cuhk03", "MLR-VIPeR": "mlr_viper",
    "MLR-DukeMTMC-reID": "mlr_dukemtmc", "CAVIAR": "caviar", "Market-1501": "market1501",
    "DukeMTMC": "dukemtmc", "DukeMTMC-reID": "dukemtmc", "MLR-C": "mlr_cuhk03", "MLR-V": "mlr_viper",
    "MLR-M": "mlr_market1501",
}
HEADER_METRICS = {"Rank1": "rank1", "Rank5": "rank5", "Rank10": "rank10", "R1": "rank1", "R5": "rank5",
                  "mAP": "map", "SSIM": "ssim", "PSNR": "psnr"}
MARKUP = re.compile(r"^<(u|b)>(.*)</\1>$")


def _printed_table(lines: list[str], label: str) -> tuple[str, list[list[str]]]:
    """(caption, tab-separated lines) of the table whose label line is ``label``."""
    starts = [i for i, line in enumerate(lines) if line.strip() == label or line.startswith(f"**{label}.**")]
    assert len(starts) == 1, f"label {label!r} found {len(starts)} times"
    i = starts[0]
    caption = lines[i].split("**", 2)[2].strip() if lines[i].startswith("**") else ""
    j = i + 1
    while "\t" not in lines[j]:
        if lines[j].strip():
            caption = f"{caption} {lines[j].strip()}".strip()
        j += 1
    block = []
    while j < len(lines) and "\t" in lines[j]:
        block.append(lines[j].split("\t"))
        j += 1
    return caption, block


def _columns(header: list[list[str]], datasets: list[str]) -> dict[int, tuple[str, str] | str]:
    """Column index → (dataset, metric) for number columns, or the header text for other columns."""
    cols: dict[int, tuple[str, str] | str] = {}
    if len(header) == 1:  # a single dataset, named only in the caption
        assert len(datasets) == 1
        for k, h in enumerate(header[0][1:], start=1):
            cols[k] = (datasets[0], HEADER_METRICS[h]) if h in HEADER_METRICS else h
        return cols
    groups, metrics = header
    current = None
    for k in range(1, len(metrics)):
        if k < len(groups) and groups[k]:
            current = groups[k]
        if metrics[k]:
            cols[k] = (HEADER_DATASETS[current], HEADER_METRICS[metrics[k]])
        elif groups[k]:
            cols[k] = groups[k]  # e.g. "Backbone"
    return cols


def _parse_cell(text: str) -> tuple[float | None, str | None]:
    mark = None
    m = MARKUP.match(text)
    if m:
        mark, text = {"u": "underline", "b": "bold"}[m.group(1)], m.group(2)
    return (None if text == "-" else float(text)), mark


@pytest.mark.parametrize("paper,table", ALL_TABLES)
def test_every_number_matches_the_printed_table(paper, table):
    reg = load_paper_results()[paper]
    seed = SHARED / reg["source"]
    if not seed.is_file():
        pytest.skip(f"seed text {seed} not present (../shared/seeds is only in the project workspace)")
    t = reg["tables"][table]
    caption, block = _printed_table(seed.read_text(encoding="utf-8").splitlines(), t["label"])
    assert caption == t["caption"]
    n_header = 2 if len(block) > 1 and block[1][0] == "" else 1
    cols = _columns(block[:n_header], t["datasets"])
    grid = [c for c in cols.values() if isinstance(c, tuple)]
    assert grid == [(d, m) for d in t["datasets"] for m in t["metrics"]], "column order differs from the printed header"
    data = block[n_header:]
    assert len(data) == len(t["rows"]) == EXPECTED_ROWS[(paper, table)]
    checked = 0
    for cells, row in zip(data, t["rows"]):
        default = f"{row['method']} [{row['ref']}]" if "ref" in row else row["method"]
        assert cells[0] == row.get("printed", default), f"row {row['id']}: first cell {cells[0]!r}"
        marks: dict[str, list[str]] = {}
        for k, col in cols.items():
            if isinstance(col, str):  # a text column
                assert cells[k] == row[col.lower()], f"row {row['id']}: {col}"
                continue
            d, m = col
            printed, mark = _parse_cell(cells[k])
            assert row["results"][d][m] == printed, f"{paper}.{table} row {row['id']} {d}.{m}: printed {cells[k]!r}"
            if mark:
                marks.setdefault(mark, []).append(f"{d}.{m}")
            checked += 1
        for mark in ("bold", "underline"):
            assert row.get(mark, []) == marks.get(mark, []), f"row {row['id']}: {mark} marks"
    assert checked == len(t["rows"]) * len(t["datasets"]) * len(t["metrics"])


# --------------------------------------------------------------------------------------------------
# loader API
# --------------------------------------------------------------------------------------------------
def test_paper_table_long_format():
    df = paper_table("ps_hrnet", "table5")
    assert list(df.columns) == ["method", "id", "ours", "dataset", "metric", "value", "unit"]
    assert len(df) == 3 * 2 * 4 and df["value"].dtype == float and df["ours"].dtype == bool
    assert df.iloc[0].to_dict() == {"method": "AAP", "id": "aap", "ours": False, "dataset": "market1501",
                                    "metric": "rank1", "value": 94.0, "unit": "percent"}
    assert set(df.loc[df["ours"], "id"]) == {"aap_amp"}
    full = paper_table("ps_hrnet", "table1", include_missing=True)
    reported = paper_table("ps_hrnet", "table1")
    assert len(full) == 25 * 15 and len(reported) == full["value"].notna().sum() and reported["value"].notna().all()
    t3 = paper_table("ps_hrnet", "table3")
    assert dict(zip(t3["metric"], t3["unit"])) == {"ssim": "ratio", "psnr": "dB", "rank1": "percent"}


def test_paper_value_errors_list_known_keys():
    with pytest.raises(KeyError, match="unknown paper 'nope'.*ps_hrnet"):
        paper_value("nope", "table1", "mlr_cuhk03", "rank1")
    with pytest.raises(KeyError, match="unknown table 'table8' in ps_hrnet.*table7"):
        paper_value("ps_hrnet", "table8", "mlr_cuhk03", "rank1")
    with pytest.raises(KeyError, match="unknown dataset 'market1501' in ps_hrnet.table1.*mlr_market1501"):
        paper_value("ps_hrnet", "table1", "market1501", "rank1")
    with pytest.raises(KeyError, match="unknown metric 'map' in ps_hrnet.table1.*rank10"):
        paper_value("ps_hrnet", "table1", "mlr_cuhk03", "map")
    with pytest.raises(KeyError, match="unknown method_id 'pcbb' in ps_hrnet.table1.*pcb"):
        paper_value("ps_hrnet", "table1", "mlr_cuhk03", "rank1", "pcbb")
    with pytest.raises(KeyError):
        paper_table("ftwa", "table3")


def test_labels_and_copy_semantics():
    assert DATASET_LABELS["mlr_market1501"] == "MLR-Market-1501" and METRIC_LABELS["rank1"] == "Rank-1"
    assert METRIC_LABELS["map"] == "mAP" and DATASET_LABELS["mlr_dukemtmc"] == "MLR-DukeMTMC-reID"
    a = load_paper_results()
    a["ps_hrnet"]["tables"]["table1"]["rows"][0]["results"]["caviar"]["rank1"] = -1
    assert paper_value("ps_hrnet", "table1", "caviar", "rank1", "pcb") == 35.9  # the cache is not mutated


def test_registry_is_package_data():
    import importlib.resources

    assert importlib.resources.files("lib.paper_numbers").joinpath("paper_results.yaml").is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'lib = ["paper_numbers/*.yaml"]' in pyproject


# --------------------------------------------------------------------------------------------------
# validation errors
# --------------------------------------------------------------------------------------------------
def _minimal() -> dict:
    return {"p": {"citation": "X", "tables": {"t1": {
        "label": "TABLE I", "caption": "C", "unit": "percent",
        "datasets": ["mlr_cuhk03"], "metrics": ["rank1", "rank5"],
        "rows": [
            {"id": "a", "method": "A", "ref": 3, "results": {"mlr_cuhk03": {"rank1": 50, "rank5": None}}},
            {"id": "ours", "method": "Ours", "ours": True, "underline": ["mlr_cuhk03.rank1"],
             "results": {"mlr_cuhk03": {"rank1": 60.5, "rank5": 80.0}}},
        ]}}}}


def test_validator_accepts_and_normalises_minimal():
    out = validate_registry(_minimal())
    row = out["p"]["tables"]["t1"]["rows"][0]
    assert row["results"]["mlr_cuhk03"] == {"rank1": 50.0, "rank5": None} and isinstance(row["results"]["mlr_cuhk03"]["rank1"], float)
    assert row["ours"] is False and out["p"]["tables"]["t1"]["units"] == {"rank1": "percent", "rank5": "percent"}


def _break(path: list, value=None, delete: bool = False) -> dict:
    d = _minimal()
    node = d
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


T1 = ["p", "tables", "t1"]
R0 = T1 + ["rows", 0]


@pytest.mark.parametrize("data,pattern", [
    ([], r"<top>: expected a non-empty mapping"),
    (_break(["p", "citation"], delete=True), r"p: missing key\(s\) \['citation'\]"),
    (_break(T1 + ["caption"], delete=True), r"p\.tables\.t1: missing key\(s\) \['caption'\]"),
    (_break(T1 + ["colour"], "red"), r"p\.tables\.t1: unknown key\(s\) \['colour'\]"),
    (_break(T1 + ["datasets"], ["mlr_cuhk3"]), r"p\.tables\.t1\.datasets: unknown dataset key 'mlr_cuhk3'"),
    (_break(T1 + ["metrics"], ["rank1", "Rank5"]), r"p\.tables\.t1\.metrics: unknown metric key 'Rank5'"),
    (_break(T1 + ["unit"], "%"), r"p\.tables\.t1\.unit: unknown unit '%'"),
    (_break(T1 + ["unit"], {"rank1": "percent"}), r"p\.tables\.t1\.unit: a per-metric unit mapping"),
    (_break(R0 + ["results", "mlr_cuhk03", "rank1"], "50.0"),
     r"p\.tables\.t1\.rows\[0\] \(id='a'\)\.results\.mlr_cuhk03\.rank1: expected a number or null, got '50\.0'"),
    (_break(R0 + ["results", "mlr_cuhk03", "rank1"], 150), r"rows\[0\] \(id='a'\)\.results\.mlr_cuhk03\.rank1: 150\.0 is outside"),
    (_break(R0 + ["results", "mlr_cuhk03", "rank5"], delete=True),
     r"rows\[0\] \(id='a'\)\.results\.mlr_cuhk03: metrics .*\(missing \['rank5'\]\).*write null"),
    (_break(R0 + ["results", "caviar"], {"rank1": 1, "rank5": 2}), r"rows\[0\] \(id='a'\)\.results: datasets .*\(extra \['caviar'\]\)"),
    (_break(R0 + ["id"], "ours"), r"p\.tables\.t1\.rows\[1\] \(id='ours'\): duplicate row id 'ours'"),
    (_break(R0 + ["id"], "Bad Id"), r"rows\[0\] \(id='Bad Id'\)\.id: 'Bad Id' is not a machine-readable key"),
    (_break(R0 + ["ours"], True), r"p\.tables\.t1: more than one row has ours: true \(\['a', 'ours'\]\)"),
    (_break(R0 + ["ours"], "yes"), r"rows\[0\] \(id='a'\)\.ours: expected true/false"),
    (_break(R0 + ["ref"], "51"), r"rows\[0\] \(id='a'\)\.ref: expected a positive integer"),
    (_break(R0 + ["method"], ""), r"rows\[0\] \(id='a'\)\.method: expected a non-empty string"),
    (_break(R0 + ["score"], 1), r"rows\[0\] \(id='a'\): unknown key\(s\) \['score'\]"),
    (_break(R0 + ["bold"], ["mlr_cuhk03.rank5"]), r"rows\[0\] \(id='a'\)\.bold: 'mlr_cuhk03\.rank5' marks a cell that is null"),
    (_break(T1 + ["rows", 1, "underline"], ["caviar.rank1"]), r"rows\[1\] \(id='ours'\)\.underline: 'caviar\.rank1' is not"),
    (_break(T1 + ["rows"], []), r"p\.tables\.t1\.rows: expected a non-empty list"),
])
def test_validator_errors_name_the_location(data, pattern):
    with pytest.raises(ValueError, match=pattern) as exc:
        validate_registry(data)
    assert str(exc.value).startswith("paper_results.yaml: ")


def test_validator_rejects_a_corrupted_copy_of_the_real_registry():
    reg = copy.deepcopy(load_paper_results())
    for p in reg.values():  # undo the loader's normalisation, then corrupt one real cell
        for t in p["tables"].values():
            del t["units"]
    reg["ps_hrnet"]["tables"]["table6"]["rows"][2]["results"]["dukemtmc"]["map"] = math.nan
    with pytest.raises(ValueError, match=r"ps_hrnet\.tables\.table6\.rows\[2\] \(id='fd_gan'\)\.results\.dukemtmc\.map"):
        validate_registry(reg)
    assert isinstance(paper_table("ps_hrnet", "table6"), pd.DataFrame)
