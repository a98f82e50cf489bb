"""Identity splits from torchreid's split files (lib.data.readers.torchreid_splits): VIPeR's splits.json, CUHK03's
splits_classic_*.json; what the manifest records of them; that nothing changes without one."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lib.data import MLRConfig, MLRDataset, build_mlr, get_dataset
from lib.data.mlr_store import manifest_fingerprint
from lib.data.readers.torchreid_splits import read_test_identities, read_torchreid_splits, torchreid_split_file
from lib.workflow import DATA_DEFAULTS, dataset_root, manifest_path, prepare_dataset, split_file_param

from .conftest import write_image


def torchreid_viper_splits(folder: Path, num_halvings: int, seed: int) -> list[dict]:
    """The splits.json torchreid's VIPeR writes, re-made from its documented format: per random halving of the
    identities, two entries (camera A as query, then camera B) sharing one train list; absolute image paths; pids
    relabelled 0..N-1 on the train side and again 0..M-1 on the test side."""
    a = sorted(str(p.resolve()) for p in (folder / "cam_a").iterdir())
    b = sorted(str(p.resolve()) for p in (folder / "cam_b").iterdir())
    n = len(a)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_halvings):
        order = rng.permutation(n)
        tr, te = order[: n // 2], order[n // 2:]
        train = [x for pid, i in enumerate(tr) for x in ([a[i], pid, 0], [b[i], pid, 1])]
        test_a = [[a[i], pid, 0] for pid, i in enumerate(te)]
        test_b = [[b[i], pid, 1] for pid, i in enumerate(te)]
        counts = {"num_train_pids": len(tr), "num_query_pids": len(te), "num_gallery_pids": len(te)}
        out += [{"train": train, "query": test_a, "gallery": test_b, **counts},
                {"train": train, "query": test_b, "gallery": test_a, **counts}]
    return out


@pytest.fixture
def torchreid_viper(fake_viper, tmp_path) -> tuple[Path, list[dict]]:
    """``(reid-data root, the splits)``: the 12-identity VIPeR in torchreid's layout, <root>/viper/VIPeR, with
    <root>/viper/splits.json (3 halvings, 6 entries)."""
    root = tmp_path / "reid-data"
    (root / "viper").mkdir(parents=True)
    folder = Path(shutil.move(str(fake_viper), str(root / "viper" / "VIPeR")))
    splits = torchreid_viper_splits(folder, 3, seed=7)
    (root / "viper" / "splits.json").write_text(json.dumps(splits, indent=4))
    return root, splits


def _file_partitions(splits: list[dict]) -> list[tuple[list[int], list[int]]]:
    """The (train, test) identities of each entry, by VIPeR's own person ids (the file name's NNN)."""
    pid = lambda item: int(Path(item[0]).name.split("_")[0])  # noqa: E731
    return [(sorted({pid(x) for x in e["train"]}), sorted({pid(x) for x in e["query"] + e["gallery"]})) for e in splits]


def _params(tmp_path: Path, root: Path, **kw) -> dict:
    return {"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path / "out"), "DATASET": "viper", "DATA_ROOT": str(root), **kw}


def test_viper_identity_splits_are_torchreids(torchreid_viper, tmp_path):
    root, splits = torchreid_viper
    path = root / "viper" / "splits.json"
    manifest = prepare_dataset(_params(tmp_path, root, SPLIT_FILE="torchreid"), progress=False)
    assert manifest == tmp_path / "out" / "t" / "mlr" / "viper-seed0" / "manifest.json"
    ds = MLRDataset.load(manifest)
    want = _file_partitions(splits)
    assert want[0] == want[1] and want[2] == want[3] and want[0] != want[2]  # the A→B / B→A pairs
    assert ds.num_splits == 3
    for k in range(3):
        sp = ds.split(k)
        got = (sorted({im.pid for im in sp.train}), sorted({im.pid for im in sp.query + sp.gallery}))
        assert got == want[2 * k]
        assert {im.camid for im in sp.query} == {0}  # the workbook's protocol: cam_a is LR, whatever the entry said
    m = ds.manifest
    assert m["split_file"]["path"] == str(path) and m["config"]["split_file"] == str(path)
    assert m["split_file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert m["split_file"]["num_entries"] == 6 and m["split_file"]["entries"] == [[0, 1], [2, 3], [4, 5]]
    assert "3 identity splits from the torchreid split file" in m["split_method"]
    with pytest.raises(ValueError, match="NUM_SPLITS 0"):  # random splits and a split file: one or the other
        prepare_dataset(_params(tmp_path, root, SPLIT_FILE="torchreid", NUM_SPLITS=2), progress=False)


def test_without_a_split_file_nothing_changes(torchreid_viper, tmp_path):
    """splits.json beside the data is not read unless asked for: the same seeded MLR dataset (fingerprint, so the
    same runs) as the release layout gives, in the same folder; no split_file record."""
    root, _ = torchreid_viper
    release = tmp_path / "release"
    shutil.copytree(root / "viper" / "VIPeR", release)
    params = _params(tmp_path, root)
    assert split_file_param(DATA_DEFAULTS["SPLIT_FILE"], get_dataset("viper"), root) is None
    cfg = MLRConfig("viper", num_splits=2, num_train_ids=6, num_test_ids=6)  # notebook 01's, at this dataset's size
    a = MLRDataset.load(build_mlr(dataset_root(root, "viper"), manifest_path(params).parent, cfg, progress=False))
    b = MLRDataset.load(build_mlr(release, tmp_path / "b", cfg, progress=False))
    assert a.manifest_path.parent == tmp_path / "out" / "t" / "mlr" / "viper-seed0"
    assert a.fingerprint == b.fingerprint and "split_file" not in a.manifest and a.num_splits == 2
    assert a.manifest["config"]["split_file"] is None


def test_a_split_file_for_another_copy_is_refused(torchreid_viper, tmp_path):
    root, splits = torchreid_viper
    ds = get_dataset("viper").read(root / "viper" / "VIPeR")
    bad = tmp_path / "bad.json"

    def refused(entries, match):
        bad.write_text(json.dumps(entries))
        with pytest.raises(ValueError, match=match):
            read_torchreid_splits(bad, ds)

    gone = json.loads(json.dumps(splits[:1]))
    gone[0]["gallery"][0][0] = "/elsewhere/viper/VIPeR/cam_b/999_90.bmp"
    refused(gone, r"entry 0: gallery names /elsewhere/viper/VIPeR/cam_b/999_90.bmp, which is not an image of")
    short = json.loads(json.dumps(splits[:1]))
    short[0]["train"] = short[0]["train"][2:]  # one person dropped
    refused(short, r"entry 0: 1 of the 12 identities of .* are in none of its lists")
    mixed = json.loads(json.dumps(splits[:1]))
    mixed[0]["train"][1][1] = 1  # person of train pid 0's camera-B image relabelled as train pid 1
    refused(mixed, r"entry 0: train gives torchreid pid 1 to .*: the file was not written for this dataset")
    unhashable = json.loads(json.dumps(splits[:1]))
    unhashable[0]["query"][0][1] = [0]
    refused(unhashable, r"entry 0: query holds \[.*, \[0\], 0\], expected \[img_path, pid, camid\] with a str path and an int \(or str\) pid")
    refused({"train": []}, r"expected a non-empty JSON list of splits")
    refused([{"train": [], "query": []}], r"entry 0: expected a dict with train, query and gallery lists")


def test_split_file_parameter(torchreid_viper, fake_caviar, tmp_path):
    root, _ = torchreid_viper
    viper, caviar = get_dataset("viper"), get_dataset("caviar")
    folder = root / "viper" / "VIPeR"
    assert split_file_param("", viper, folder) is None
    assert split_file_param("torchreid", viper, folder) == str(root / "viper" / "splits.json")
    assert split_file_param({"viper": "torchreid"}, viper, folder) == str(root / "viper" / "splits.json")
    assert split_file_param({"viper": "torchreid"}, caviar, fake_caviar) is None
    assert split_file_param("torchreid", caviar, fake_caviar) is None  # torchreid writes none for CAVIAR: said, not used
    with pytest.raises(ValueError, match="is set for caviar, but only cuhk03 and viper read a split file"):
        split_file_param(str(root / "viper" / "splits.json"), caviar, fake_caviar)
    with pytest.raises(ValueError, match=r"\['caviar'\] read no split file"):
        split_file_param({"caviar": "x.json"}, caviar, fake_caviar)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        split_file_param(str(tmp_path / "none.json"), viper, folder)
    with pytest.raises(FileNotFoundError, match=rf"no viper split file beside {tmp_path}/VIPeR: tried "
                                                rf"{tmp_path}/VIPeR/splits.json, {tmp_path}/splits.json"):
        torchreid_split_file("viper", tmp_path / "VIPeR")


def test_cuhk03_split_file_is_recorded_outside_the_fingerprint(tmp_path):
    """CUHK03's torchreid file (splits_classic_labeled.json in its folder) gives the test identities as before; the
    manifest now records the file and its hash, which leaves the fingerprint (and the runs) as they were."""
    root = tmp_path / "cuhk03"
    for pair in (1, 2):
        for person in (1, 2, 3):
            for view, i in ((1, 1), (2, 6)):
                write_image(root / "images_labeled" / f"{pair}_{person:03d}_{view}_{i:02d}.png", seed=pair * 10 + person)
    test = [[f"/x/cuhk03/images_labeled/{n}", 0, v] for n, v in (("2_003_1_01.png", 0), ("2_003_2_06.png", 1))]
    (root / "splits_classic_labeled.json").write_text(json.dumps([{"train": [], "query": test, "gallery": test}]))
    path = torchreid_split_file("cuhk03", root)
    m = json.loads(build_mlr(root, tmp_path / "o", MLRConfig("cuhk03", split_file=str(path)), progress=False).read_text())
    assert m["split_file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and m["split_file"]["entries"] == [[0]]
    assert m["split_method"] == f"test identities from {path}"
    assert manifest_fingerprint(m) == manifest_fingerprint({k: v for k, v in m.items() if k != "split_file"})
    ds = MLRDataset.load(tmp_path / "o")
    assert {im.pid for im in ds.split(0).query + ds.split(0).gallery} == {2003}
    source = get_dataset("cuhk03").read(root)
    for bad, match in (([{"train": [], "query": [], "gallery": test}], r"split 0 in .*: its query list is empty"),
                       ([{"query": test, "gallery": [7]}], r"split 0 in .* holds 7, expected \[img_path, pid, camid\]"),
                       ([{"query": test, "gallery": {"a": 1}}], r"split 0 in .* has no 'query'/'gallery' lists")):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            read_test_identities(tmp_path / "bad.json", source)


@pytest.mark.realdata
def test_real_viper_with_torchreids_splits(tmp_path):
    """The shared VIPeR linked into torchreid's layout with a 20-entry splits.json: 10 splits of 316/316 identities,
    each the file's."""
    from .conftest import SHARED_DATA

    if not (SHARED_DATA / "VIPeR" / "cam_a").is_dir():
        pytest.skip(f"real VIPeR not available at {SHARED_DATA / 'VIPeR'} (research-only data)")
    (tmp_path / "viper").mkdir()
    (tmp_path / "viper" / "VIPeR").symlink_to(SHARED_DATA / "VIPeR")
    splits = torchreid_viper_splits(tmp_path / "viper" / "VIPeR", 10, seed=0)
    (tmp_path / "viper" / "splits.json").write_text(json.dumps(splits))
    ds = MLRDataset.load(prepare_dataset(_params(tmp_path, tmp_path, SPLIT_FILE="torchreid"), progress=False))
    want = _file_partitions(splits)
    assert ds.num_splits == 10 and ds.manifest["split_file"]["entries"] == [[2 * k, 2 * k + 1] for k in range(10)]
    for k in (0, 9):
        sp = ds.split(k)
        assert (sorted({im.pid for im in sp.train}), sorted({im.pid for im in sp.query})) == want[2 * k]
        assert len({im.pid for im in sp.train}) == len({im.pid for im in sp.gallery}) == 316


def test_command_line_finds_torchreids_folder_and_file(torchreid_viper, tmp_path, capsys):
    from lib.data.mlr_build import main as mlr_main

    root, splits = torchreid_viper
    assert mlr_main(["viper", str(root), str(tmp_path / "o"), "--split-file", "torchreid", "--quiet"]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["source"]["root"] == str((root / "viper" / "VIPeR").resolve())
    assert m["split_file"]["path"] == str(root / "viper" / "splits.json") and len(m["splits"]) == 3
    assert mlr_main(["viper", str(tmp_path / "none"), str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "note: no viper dataset" in err and "viper/VIPeR" in err and "error: viper:" in err
