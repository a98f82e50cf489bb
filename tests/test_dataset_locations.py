"""Where a dataset lies under a DATA_ROOT (lib.data.locations): the release layout, torchreid's nested one
(``viper/VIPeR``, ``market1501/Market-1501-v15.09.15`` …), fast-reid's (``VIPeR``, ``CAVIARa`` …), or DATA_ROOT itself;
the first folder its reader reads wins, and a miss names every folder tried."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lib.data import MLRConfig, MLRDataset, build_mlr, get_dataset
from lib.data.locations import DatasetNotFoundError, candidate_folders, dataset_folder, find_datasets
from lib.workflow import dataset_root

from .conftest import SHARED_DATA, write_image


def _move(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dest))
    return dest


def _duke(root: Path) -> Path:
    """DukeMTMC-reID's layout: 3 ids × 2 cameras in train, query and gallery."""
    k = 0
    for folder, pids in (("bounding_box_train", (1, 2, 3)), ("bounding_box_test", (4, 5, 6)), ("query", (4, 5, 6))):
        for pid in pids:
            for cam in (1, 2):
                k += 1
                write_image(root / folder / f"{pid:04d}_c{cam}_f{k:07d}.jpg", (32, 16), seed=k)
    return root


def _cuhk03(root: Path) -> Path:
    """CUHK03 as torchreid extracts it: images_labeled/ (2 pairs × 3 persons × 2 views)."""
    for pair in (1, 2):
        for person in (1, 2, 3):
            for view, i in ((1, 1), (2, 6)):
                write_image(root / "images_labeled" / f"{pair}_{person:03d}_{view}_{i:02d}.png", seed=pair * 10 + person)
    return root


def test_torchreid_nested_layout(fake_market, fake_viper, fake_caviar, tmp_path):
    """torchreid's <root>/<dataset_dir>/<release folder>: every Table I dataset found where torchreid puts it."""
    root = tmp_path / "reid-data"
    want = {
        "market1501": _move(fake_market, root / "market1501" / "Market-1501-v15.09.15"),
        "dukemtmc": _duke(root / "dukemtmc-reid" / "DukeMTMC-reID"),
        "cuhk03": _cuhk03(root / "cuhk03"),
        "viper": _move(fake_viper, root / "viper" / "VIPeR"),
        "caviar": _move(fake_caviar, root / "CAVIAR4REID"),  # torchreid has no CAVIAR: the release layout
    }
    (root / "cuhk03" / "cuhk03_release").mkdir()  # where torchreid keeps cuhk-03.mat
    found, missing = find_datasets(root)
    assert found == want and missing == {}
    assert dataset_root(root, "viper") == want["viper"] and dataset_root(root / "viper", "viper") == want["viper"]


def test_fastreid_layout_and_a_dataset_folder_as_root(fake_market, fake_viper, fake_caviar, tmp_path):
    """fast-reid's <root>/Market-1501-v15.09.15, DukeMTMC-reID, cuhk03, VIPeR, CAVIARa; CAVIAR is read from <root> so
    its image paths (CAVIARa/…) are those of the release layout, and its MLR dataset is the same."""
    root = tmp_path / "datasets"
    _move(fake_market, root / "Market-1501-v15.09.15")
    _duke(root / "DukeMTMC-reID")
    _cuhk03(root / "cuhk03")
    _move(fake_viper, root / "VIPeR")
    release = tmp_path / "release"
    shutil.copytree(fake_caviar, release)
    _move(fake_caviar / "CAVIARa", root / "CAVIARa")
    found, missing = find_datasets(root)
    assert missing == {} and found["caviar"] == root and found["viper"] == root / "VIPeR"
    assert found["market1501"] == root / "Market-1501-v15.09.15" and found["dukemtmc"] == root / "DukeMTMC-reID"
    a = MLRDataset.load(build_mlr(found["caviar"], tmp_path / "a", MLRConfig("caviar", num_train_ids=3, num_test_ids=3), progress=False))
    b = MLRDataset.load(build_mlr(release, tmp_path / "b", MLRConfig("caviar", num_train_ids=3, num_test_ids=3), progress=False))
    assert a.fingerprint == b.fingerprint  # the same images, the same dataset, whatever the layout
    # DATA_ROOT may be the dataset's own folder
    assert find_datasets(root / "VIPeR")[0] == {"viper": root / "VIPeR"}


def test_the_first_folder_the_reader_reads_wins(fake_viper, tmp_path):
    """A half-copied VIPeR/ beside torchreid's viper/VIPeR/: the one that reads is used."""
    root = tmp_path / "data"
    _move(fake_viper, root / "viper" / "VIPeR")
    (root / "VIPeR" / "cam_a").mkdir(parents=True)  # empty: not readable
    assert dataset_folder("viper", root) == root / "viper" / "VIPeR"
    assert find_datasets(root)[0]["viper"] == root / "viper" / "VIPeR"


def test_a_miss_names_every_folder_tried(tmp_path):
    (tmp_path / "VIPeR" / "cam_a").mkdir(parents=True)
    (tmp_path / "viper" / "VIPeR").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as e:
        dataset_folder("viper", tmp_path)
    msg = str(e.value)
    tried = candidate_folders("viper")
    assert tried[:5] == (".", "VIPeR", "viper", "VIPeR.v1.0", "viper/VIPeR")
    absent = [f for f in tried if not (tmp_path / f).is_dir()]
    assert f"none of {', '.join(absent)} under {tmp_path}" in msg
    for present in (tmp_path, tmp_path / "VIPeR", tmp_path / "viper", tmp_path / "viper" / "VIPeR"):
        assert f"{present} is not readable as viper:" in msg
    assert "missing cam_b/" in msg and get_dataset("viper").layout in msg
    found, missing = find_datasets(tmp_path)
    assert "viper" not in found and missing["viper"] == msg.split(": ", 2)[2]
    with pytest.raises(FileNotFoundError, match="viper/VIPeR is not readable as viper"):
        dataset_root(tmp_path, "viper")


@pytest.mark.realdata
def test_real_data_in_torchreid_and_fastreid_layouts(tmp_path):
    """The shared VIPeR and CAVIAR4REID, linked into torchreid's (viper/VIPeR) and fast-reid's (CAVIARa) layouts, are
    found and read in full."""
    viper, caviar = SHARED_DATA / "VIPeR", SHARED_DATA / "CAVIAR4REID" / "CAVIARa"
    if not (viper / "cam_a").is_dir() or not caviar.is_dir():
        pytest.skip(f"real VIPeR / CAVIAR4REID not available under {SHARED_DATA} (research-only data)")
    (tmp_path / "viper").mkdir()
    (tmp_path / "viper" / "VIPeR").symlink_to(viper)
    (tmp_path / "CAVIARa").symlink_to(caviar)
    found, missing = find_datasets(tmp_path)
    assert found == {"viper": tmp_path / "viper" / "VIPeR", "caviar": tmp_path} and set(missing) == {
        "market1501", "cuhk03", "dukemtmc"}
    v, c = get_dataset("viper").read(found["viper"]), get_dataset("caviar").read(found["caviar"])
    assert (v.num_images, len(v.pids), c.num_images, len(c.pids)) == (1264, 632, 1220, 72)
    assert get_dataset("caviar").read(SHARED_DATA / "CAVIAR4REID").records == c.records


def test_a_market_folder_as_data_root_is_not_taken_for_duke(fake_market, tmp_path):
    """Market-1501's files also read with Duke's reader (cameras 1..6 fit 1..8): a folder both read is the one it is
    named after (aliases and symlinks included); under a neutral name, neither; asked for by name, it is read."""
    found, missing = find_datasets(fake_market)
    assert found == {"market1501": fake_market}
    assert "reads as each of market1501, dukemtmc and is named after market1501" in missing["dukemtmc"]
    neutral = _duke(tmp_path / "reid")
    found, missing = find_datasets(neutral)
    assert "market1501" not in found and "dukemtmc" not in found
    for name in ("market1501", "dukemtmc"):
        assert "its name is none of theirs" in missing[name] and "Market-1501-v15.09.15 or DukeMTMC-reID" in missing[name]
    # named by the user, the folder is read as that dataset whatever its name
    assert dataset_folder("dukemtmc", neutral) == neutral and dataset_folder("market1501", neutral) == neutral
    # an alias (duke) or a symlink of the dataset's name counts as its name
    assert find_datasets(_move(neutral, tmp_path / "x" / "duke"))[0] == {"dukemtmc": tmp_path / "x" / "duke"}
    (tmp_path / "DukeMTMC-reID").symlink_to(tmp_path / "x" / "duke", target_is_directory=True)
    (tmp_path / "x" / "duke").rename(tmp_path / "x" / "plain")
    (tmp_path / "DukeMTMC-reID").unlink()
    (tmp_path / "DukeMTMC-reID").symlink_to(tmp_path / "x" / "plain", target_is_directory=True)
    assert find_datasets(tmp_path / "DukeMTMC-reID")[0] == {"dukemtmc": tmp_path / "DukeMTMC-reID"}


def test_one_folder_is_never_two_datasets(fake_viper, tmp_path, monkeypatch):
    """Should two datasets' searches end in one folder named after neither, neither is taken."""
    from lib.data import locations

    real, neutral = locations._search, tmp_path / "neutral"
    neutral.mkdir()
    monkeypatch.setattr(locations, "_search", lambda name, root: (neutral, [], []) if name in ("market1501", "dukemtmc")
                        else real(name, root))
    found, missing = find_datasets(tmp_path)
    assert "market1501" not in found and "dukemtmc" not in found and found["viper"] == fake_viper
    assert "taken for none" in missing["market1501"] and "taken for none" in missing["dukemtmc"]
