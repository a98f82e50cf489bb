"""CSV datasets by name (lib.data.registry.register_csv_dataset, lib.data.locations): each is named by the user (or
its folder), and the name is its MLR folder, its runs and summaries folder and its table column; two never share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.data import MLRDataset, get_dataset
from lib.data.locations import find_csv_datasets, select_datasets
from lib.data.synthetic import SyntheticConfig, generate_synthetic
from lib.workflow import locate_dataset, make_table, manifest_path, prepare_dataset, run_table


@pytest.fixture
def two_csv(tmp_path) -> Path:
    """A DATA_ROOT holding two CSV datasets drawn by the synthetic generator: shop/manifest.csv and lab/manifest.csv
    (12 identities each, other seeds), and a VIPeR/ that is not one."""
    root = tmp_path / "data"
    for name, seed in (("shop", 0), ("lab", 1)):
        generate_synthetic(root / name, SyntheticConfig(num_identities=12, num_cameras=3, images_per_camera=2,
                                                        height=64, width=32, seed=seed), progress=False)
    (root / "VIPeR").mkdir()
    return root


def _params(tmp_path: Path, root: Path, **kw) -> dict:
    return {"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path / "out"), "DATA_ROOT": str(root), "SEED": 0, **kw}


def test_each_csv_dataset_has_its_own_name_and_folders(two_csv, tmp_path):
    found, clash = find_csv_datasets(two_csv)
    assert found == {"lab": two_csv / "lab" / "manifest.csv", "shop": two_csv / "shop" / "manifest.csv"} and clash == {}
    assert get_dataset("shop").csv and get_dataset("lab").layout == get_dataset("csv").layout
    with pytest.raises(KeyError, match=r"known: caviar, csv, cuhk03, .*; CSV datasets named so far: .*lab.*shop"):
        get_dataset("mars")
    made = {}
    for name in ("shop", "lab"):
        path = locate_dataset(_params(tmp_path, two_csv, DATASET=name), progress=False)
        assert path == tmp_path / "out" / "t" / "mlr" / f"{name}-seed0" / "manifest.json"
        made[name] = MLRDataset.load(path)
        assert made[name].name == made[name].manifest["config"]["dataset"] == name
        assert made[name].manifest["source"]["root"] == str((two_csv / name).resolve())
    assert made["shop"].fingerprint != made["lab"].fingerprint
    # DATA_ROOT may be the manifest itself, under a name the user gives: its own folder
    other = locate_dataset(_params(tmp_path, two_csv / "lab" / "manifest.csv", DATASET="lab2"), progress=False)
    assert other.parent.name == "lab2-seed0" and MLRDataset.load(other).name == "lab2"
    # the unnamed `csv` of earlier versions keeps its folder (and so its runs)
    assert manifest_path(_params(tmp_path, two_csv, DATASET="csv")).parent.name == "csv-seed0"


def test_two_csv_datasets_never_share_a_folder(two_csv, tmp_path):
    prepare_dataset(_params(tmp_path, two_csv, DATASET="shop"), progress=False)
    with pytest.raises(ValueError, match=r"mlr/shop-seed0 holds the CSV dataset built from .*/shop, not .*/lab; two "
                                         r"CSV datasets need two names"):
        prepare_dataset(_params(tmp_path, two_csv / "lab" / "manifest.csv", DATASET="shop"), progress=False)
    with pytest.raises(ValueError, match="'shop' is named twice"):
        select_datasets(two_csv, ["shop", f"shop={two_csv / 'lab'}"])
    (two_csv / "viper").mkdir()
    (two_csv / "viper" / "manifest.csv").write_text((two_csv / "shop" / "manifest.csv").read_text())
    found, clash = find_csv_datasets(two_csv)
    assert "viper" not in found and "the workbook's own dataset 'viper'" in clash["viper"]


def test_datasets_selection_beside_table1_names(two_csv, fake_viper, tmp_path):
    """`make reproduce DATASETS=…`: Table I names, CSV datasets under DATA_ROOT by name, name=path anywhere."""
    found, missing = select_datasets(tmp_path, ["viper", "shop", f"lab={two_csv / 'lab'}"])
    assert found == {"viper": fake_viper, "lab": two_csv / "lab" / "manifest.csv"}
    assert "tried " in missing["shop"] and str(tmp_path / "shop" / "manifest.csv") in missing["shop"]
    found, missing = select_datasets(two_csv, ["shop", "caviar"])
    assert found == {"shop": two_csv / "shop" / "manifest.csv"} and "none of CAVIAR4REID" in missing["caviar"]
    bad = two_csv / "broken"
    bad.mkdir()
    (bad / "manifest.csv").write_text("path,pid\n")
    assert "expected columns path,pid,camid" in select_datasets(two_csv, ["broken"])[1]["broken"]


def test_summaries_of_two_csv_datasets_are_two_table_columns(two_csv, tmp_path):
    """The table of summaries written for both CSV datasets (no training): a column, and long-table rows, for each."""
    from lib.methods import load_config
    from lib.results import write_summary

    params = _params(tmp_path, two_csv)
    out = tmp_path / "out" / "t"
    for name, r1 in (("shop", 0.5), ("lab", 0.25)):
        ds = MLRDataset.load(locate_dataset({**params, "DATASET": name}, progress=False))
        write_summary(out, profile="t", method="pshrnet", variant="default", overrides={}, config_file="c.yaml",
                      cfg=load_config("configs/pshrnet/tiny.yaml"), ds=ds, splits=[0],
                      per_split={"teacher_hr": [{"rank1": r1, "rank5": 1.0, "rank10": 1.0, "rank20": 1.0, "mAP": r1,
                                                 "mINP": r1, "cmc": [r1] + [1.0] * 19}]}, runs={0: {}}, differences=[])
    long, md, _ = make_table(params, "table5")
    ours = long[(long.source == "reproduced") & (long.metric == "rank1")]
    assert dict(zip(ours.dataset, ours.value)) == {"shop": 50.0, "lab": 25.0}
    assert "| shop |" in md and "| lab |" in md


@pytest.mark.slow
def test_two_csv_datasets_are_two_table_columns(two_csv, tmp_path):
    """Table V's default row (phase 1 only: the cheapest table) trained on both CSV datasets of one profile: each has
    its runs and summary under its own name, and the table a column (and long-table rows) of each."""
    params = _params(tmp_path, two_csv, DATASETS=["shop", "lab"], SPLITS=[0], CONFIG="configs/pshrnet/tiny.yaml",
                     VARIANTS=["default"], OVERRIDES={"phase1.epochs": 1, "runtime.max_steps_per_epoch": 1,
                                                      "runtime.device": "cpu", "test.num_repeats": 1})
    exp, _, _ = run_table(params, "table5", progress=False)
    out = tmp_path / "out" / "t"
    assert set(exp.datasets) == {"shop", "lab"}
    for name in ("shop", "lab"):
        assert (out / "runs" / "pshrnet" / name / "variants" / "default" / "split0" / "phase1").is_dir()
        assert json.loads((out / "results" / "pshrnet" / name / "default.json").read_text())["dataset"] == name
    long, md, _ = make_table(params, "table5")
    ours = long[long.source == "reproduced"]
    assert sorted(set(ours.dataset)) == ["lab", "shop"] and set(ours[ours.metric == "rank1"].row) == {"AAP+AMP"}
    assert len(ours[(ours.metric == "rank1")]) == 2
    assert "| shop |" in md and "| lab |" in md
    # the plan of runs takes the same DATASETS (the tiny profile's own table V: the datasets built, its runs on them)
    from lib.scale.plan import make_plan

    plan = make_plan("tiny", ["5"], two_csv, device="cpu", output_root=str(tmp_path / "out"), datasets=["shop", "lab"])
    assert plan.datasets == {"shop": "found, not built", "lab": "found, not built"}
    assert {r.dataset for r in plan.runs} == {"shop", "lab"}


def test_a_misspelt_name_is_not_built_from_the_roots_manifest(two_csv):
    """DATA_ROOT holding shop/ and lab/ and a manifest.csv of its own: 'shpo' is missing (not the root's images under
    a typo's name) and does not stay a dataset name; the root's own name reads its manifest."""
    from lib.data import DATASETS

    (two_csv / "manifest.csv").write_text((two_csv / "shop" / "manifest.csv").read_text().replace("images/", "shop/images/"))
    found, missing = select_datasets(two_csv, ["shpo"])
    assert found == {} and f"not {two_csv / 'manifest.csv'}" in missing["shpo"] and "'data'" in missing["shpo"]
    assert "shpo" not in DATASETS
    # a name registered before (find_csv_datasets) stays registered when an entry spelt otherwise misses
    find_csv_datasets(two_csv)
    (two_csv / "lab" / "manifest.csv").write_text("path,pid\n")
    assert "expected columns path,pid,camid" in select_datasets(two_csv, ["Lab"])[1]["lab"]
    assert "lab" in DATASETS
    assert select_datasets(two_csv, ["data"])[0] == {"data": two_csv / "manifest.csv"}
    # named for it by the user, the root's manifest is read under any name
    assert select_datasets(two_csv, [f"mine={two_csv}"])[0] == {"mine": two_csv / "manifest.csv"}


def test_a_symlinked_folder_is_listed_under_its_own_name(two_csv, tmp_path):
    """DATA_ROOT/store -> elsewhere/shop: listed as 'store' (the name select_datasets finds), not as the target's."""
    store = tmp_path / "links"
    store.mkdir()
    (store / "store").symlink_to(two_csv / "shop", target_is_directory=True)
    found, _ = find_csv_datasets(store)
    assert found == {"store": store / "store" / "manifest.csv"}
    assert select_datasets(store, ["store"])[0] == found


def test_bad_datasets_entries_are_clear(two_csv):
    with pytest.raises(ValueError, match=r"DATASETS: the entry 'shop=' has no path after '='"):
        select_datasets(two_csv, ["shop="])
    with pytest.raises(ValueError, match=r"DATASETS: 'again' and 'shop' are one manifest, .*shop/manifest.csv"):
        select_datasets(two_csv, ["shop", f"again={two_csv / 'shop'}"])


def test_a_misspelt_dataset_is_refused_by_the_plan_and_reproduce_before_anything_runs(two_csv, tmp_path, monkeypatch):
    """`DATASETS=viperr`: not one of the workbook's and no CSV manifest of it, so an error naming it and the
    workbook's datasets (before: the plan priced it as an absent dataset of 0 samples, 0 device-hours). The
    workbook's own datasets that are absent stay planned as absent; the synthetic root takes no other name."""
    from lib.data.locations import DatasetNotFoundError
    from lib.scale.plan import make_plan
    from lib.workbook import reproduce

    out = str(tmp_path / "out")
    with pytest.raises(DatasetNotFoundError, match=r"DATASETS: 'viperr': dataset 'viperr' is not one of the workbook's "
                                                   r"\(caviar, cuhk03, .*viper\)"):
        make_plan("cpu", ["1"], two_csv, device="cpu", output_root=out, datasets=["viper", "viperr"])
    plan = make_plan("cpu", ["1"], two_csv, device="cpu", output_root=out, datasets=["market1501", "shop"])
    assert plan.datasets == {"market1501": "absent", "shop": "found, not built"}
    with pytest.raises(ValueError, match=r"DATASETS: \['viperr'\] with DATA_ROOT synthetic, whose only dataset"):
        make_plan("tiny", ["1"], "synthetic", device="cpu", output_root=out, datasets=["viperr"])
    with pytest.raises(DatasetNotFoundError, match=r"'synthetic': the embedded synthetic data .* give DATA_ROOT=synthetic"):
        make_plan("cpu", ["1"], two_csv, device="cpu", output_root=out, datasets=["synthetic"])  # not 0 samples, 0 h
    import lib.workbook

    ran = []
    monkeypatch.setattr(lib.workbook, "run_notebook", lambda *a, **k: ran.append(a))
    with pytest.raises(DatasetNotFoundError, match="'shpo'"):
        reproduce("tiny", two_csv, ["5"], datasets=["shop", "shpo"])
    assert ran == []  # not even notebook 01 for the dataset that exists


def test_a_notebook_given_an_unknown_dataset_without_data_root_says_it_is_not_one_of_the_workbooks(tmp_path):
    with pytest.raises(ValueError, match=r"DATASET 'viperr' is not one of the workbook's \(caviar, .*viper\); read "
                                         r"as a CSV dataset it needs DATA_ROOT"):
        prepare_dataset({"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path), "DATASET": "viperr"}, progress=False)
