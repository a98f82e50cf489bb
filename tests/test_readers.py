"""Readers for the original release layouts, and their errors on bad input."""

from __future__ import annotations

import json

import pytest

from lib.data import DatasetLayoutError, get_dataset
from lib.data.readers import (
    read_caviar,
    read_csv_manifest,
    read_cuhk03,
    read_cuhk03_split_file,
    read_dukemtmc,
    read_market1501,
    read_viper,
    two_camera_identities,
)

from .conftest import write_image


def test_market_reads_subsets_and_drops_junk(fake_market):
    ds = read_market1501(fake_market)
    subsets = ds.summary()["subsets"]
    assert subsets == {"gallery": 12, "query": 3, "train": 9}
    assert ds.extra["junk_dropped"] == 1
    assert all(r.pid != -1 for r in ds.records)
    assert 0 in {r.pid for r in ds.records if r.subset == "gallery"}  # distractors kept
    assert ds.camids == [0, 1, 2]  # c1..c3 → 0..2


def test_market_missing_folder_names_expected_and_found(fake_market):
    import shutil

    shutil.rmtree(fake_market / "query")
    with pytest.raises(DatasetLayoutError) as e:
        read_market1501(fake_market)
    msg = str(e.value)
    assert "expected" in msg and "missing query/" in msg and "bounding_box_train/" in msg and str(fake_market) in msg


def test_market_bad_name_is_reported(fake_market):
    write_image(fake_market / "query" / "person.jpg")
    with pytest.raises(DatasetLayoutError, match=r"query/person\.jpg"):
        read_market1501(fake_market)


def test_duke_name_pattern(tmp_path):
    root = tmp_path / "duke"
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        write_image(root / folder / "0005_c8_f0046182.jpg")
    ds = read_dukemtmc(root)
    assert {r.camid for r in ds.records} == {7} and {r.pid for r in ds.records} == {5}


def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        read_viper(tmp_path / "nope")


def test_viper_fake(fake_viper):
    ds = read_viper(fake_viper)
    assert ds.num_images == 24 and len(ds.pids) == 12 and ds.camids == [0, 1]


def test_viper_unpaired_identity(fake_viper):
    (fake_viper / "cam_b" / "011_90.bmp").unlink()
    with pytest.raises(DatasetLayoutError, match="only in cam_a: \\[11\\]"):
        read_viper(fake_viper)


def test_caviar_fake_cameras(fake_caviar):
    ds = read_caviar(fake_caviar)
    assert ds.num_images == 6 * 4 + 2 * 2
    assert two_camera_identities(ds) == [1, 2, 3, 4, 5, 6]
    assert {r.camid for r in ds.records if r.path.endswith("011.jpg")} == {1}


def test_cuhk03_layout_and_split_file(tmp_path):
    root = tmp_path / "cuhk03"
    for pair in (1, 2):
        for person in (1, 2, 3):
            for view, imgs in ((1, (1, 2)), (2, (6, 7))):
                for i in imgs:
                    write_image(root / "images_labeled" / f"{pair}_{person:03d}_{view}_{i:02d}.png")
    ds = read_cuhk03(root)
    assert len(ds.pids) == 6 and ds.camids == [0, 1, 2, 3]
    assert {r.camid for r in ds.records if r.path.startswith("images_labeled/2_")} == {2, 3}
    split = [{"train": [], "query": [["/x/images_labeled/2_003_1_01.png", 0, 0]], "gallery": [["2_003_2_06.png", 0, 1]]}]
    (root / "splits.json").write_text(json.dumps(split))
    assert read_cuhk03_split_file(root / "splits.json", ds) == [[2003]]
    with pytest.raises(DatasetLayoutError, match="images_detected/"):
        read_cuhk03(root, variant="detected")


def test_csv_reader_and_errors(fake_csv, tmp_path):
    ds = read_csv_manifest(fake_csv)
    assert ds.num_images == 48 and {r.subset for r in ds.records} == {"train", "test"}
    bad = tmp_path / "bad.csv"
    bad.write_text("path,pid\nx.png,1\n")
    with pytest.raises(ValueError, match="missing \\['camid'\\]"):
        read_csv_manifest(bad)
    bad.write_text("path,pid,camid\nx.png,one,0\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2: pid and camid must be integers"):
        read_csv_manifest(bad)
    bad.write_text("path,pid,camid\nx.png,1,0\n")
    with pytest.raises(FileNotFoundError, match=r"bad\.csv:2: image .*x\.png does not exist"):
        read_csv_manifest(bad)
    write_image(tmp_path / "x.png")
    bad.write_text("path,pid,camid,split\nx.png,1,0,val\n")
    with pytest.raises(ValueError, match="split must be one of"):
        read_csv_manifest(bad)


def test_registry_lookup():
    assert get_dataset("Market-1501").name == "market1501"
    assert get_dataset("DukeMTMC-reID").name == "dukemtmc"
    with pytest.raises(KeyError, match="known: caviar"):
        get_dataset("mars")


@pytest.mark.realdata
def test_real_viper_counts(real_viper):
    ds = read_viper(real_viper)
    assert ds.num_images == 1264 and len(ds.pids) == 632


@pytest.mark.realdata
def test_real_caviar_counts(real_caviar):
    ds = read_caviar(real_caviar)
    assert ds.num_images == 1220 and len(ds.pids) == 72
    assert len(two_camera_identities(ds)) == 50
