"""MLR synthesis (PROTOCOL §1): true sizes, seeding, manifests, protocols, and the real VIPeR / CAVIAR."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib.data import ImageReadError, MLRConfig, MLRDataset, build_mlr, downsample
from lib.data.mlr_build import main as mlr_main


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_downsample_true_size_and_modes():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 48, 3), dtype=np.uint8))
    assert downsample(img, 3).size == (16, 43)  # (W, H) = (round(48/3), round(128/3))
    assert downsample(img, 4, "bilinear", antialias=False).size == (12, 32)
    a = np.asarray(downsample(img, 4, "bicubic", True), dtype=float)
    b = np.asarray(downsample(img, 4, "bicubic", False), dtype=float)
    assert a.std() < b.std()  # the low-pass filter removes high-frequency noise before decimation


def test_viper_like_per_identity_rates(fake_viper, tmp_path):
    path = build_mlr(fake_viper, tmp_path / "mlr", MLRConfig("viper", seed=3, num_splits=4, num_train_ids=6, num_test_ids=6), progress=False)
    ds = MLRDataset.load(path)
    m = json.loads(path.read_text())
    lr = [im for im in ds.images if im.res == "lr"]
    assert {im.camid for im in lr} == {0} and len(lr) == 12  # cam_a is LR
    assert sorted(ds.rate_histogram().values()) == [4, 4, 4]  # equal thirds of identities
    for im, rec in zip(ds.images, m["images"]):
        if im.lr_path is not None:
            with Image.open(im.lr_path) as f:
                assert (f.height, f.width) == (round(48 / im.r), round(24 / im.r)) == tuple(rec["lr_size"])
    assert ds.num_splits == 4
    s = ds.split(0)
    assert {im.camid for im in s.query} == {0} and {im.camid for im in s.gallery} == {1}
    assert not ({im.pid for im in s.train} & {im.pid for im in s.query})
    assert m["config"]["seed"] == 3 and m["source"]["num_images"] == 24 and len(m["source"]["file_list_sha256"]) == 64


def test_same_seed_byte_identical_other_seed_differs(fake_csv, tmp_path):
    cfg = MLRConfig("csv", seed=1)
    build_mlr(fake_csv, tmp_path / "a", cfg, progress=False)
    build_mlr(fake_csv, tmp_path / "b", cfg, progress=False)
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")
    build_mlr(fake_csv, tmp_path / "c", MLRConfig("csv", seed=2), progress=False)
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())
    c = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert [im["r"] for im in a["images"]] != [im["r"] for im in c["images"]] or a["lr_cameras"] != c["lr_cameras"]


def test_existing_manifest_is_reused_and_force_rebuilds(fake_csv, tmp_path):
    cfg = MLRConfig("csv", seed=0)
    p = build_mlr(fake_csv, tmp_path / "o", cfg, progress=False)
    t0 = p.stat().st_mtime_ns
    build_mlr(fake_csv, tmp_path / "o", cfg, progress=False)
    assert p.stat().st_mtime_ns == t0
    build_mlr(fake_csv, tmp_path / "o", cfg, progress=False, force=True)
    assert p.stat().st_mtime_ns != t0
    build_mlr(fake_csv, tmp_path / "o", MLRConfig("csv", seed=0, rates=(2,)), progress=False)
    assert set(MLRDataset.load(p).rate_histogram()) == {2}


def test_csv_train_test_protocol(fake_csv, tmp_path):
    ds = MLRDataset.load(build_mlr(fake_csv, tmp_path / "o", MLRConfig("csv", lr_cameras=(2,)), progress=False))
    s = ds.split(0)
    assert ds.eval_protocol == "multi_shot" and ds.num_splits == 1
    assert {im.pid for im in s.train} == {0, 1, 2, 3} and {im.pid for im in s.query} == {4, 5, 6, 7}
    assert all(im.res == "lr" and im.camid == 2 for im in s.query)
    assert all(im.res == "hr" and im.camid != 2 for im in s.gallery)
    assert all(im.r in (2, 3, 4) for im in s.query)
    train_lr = [im for im in s.train if im.camid == 2]
    assert train_lr and all(im.lr_path is not None for im in train_lr)  # LR camera's training images too


def test_market_gallery_stays_hr(fake_market, tmp_path):
    ds = MLRDataset.load(build_mlr(fake_market, tmp_path / "o", MLRConfig("market1501", lr_cameras=(0,)), progress=False))
    s = ds.split(0)
    assert len(s.query) == 3 and all(im.res == "lr" for im in s.query)
    assert len(s.gallery) == 12 and all(im.res == "hr" and im.lr_path is None for im in s.gallery)
    assert any(im.camid == 0 for im in s.gallery)


def test_caviar_native_no_synthesis(fake_caviar, tmp_path):
    p = build_mlr(fake_caviar, tmp_path / "o", MLRConfig("caviar", num_splits=2, num_train_ids=3, num_test_ids=3),
                  progress=False)
    ds = MLRDataset.load(p)
    assert not (tmp_path / "o" / "lr").exists()
    assert ds.manifest["dropped_identities"] == [7, 8] and ds.manifest["num_identities"] == 6
    s = ds.split(1)
    assert all(im.camid == 1 and im.res == "lr" and im.lr_path is None for im in s.query)
    assert all(im.camid == 0 for im in s.gallery)


def test_split_too_large_is_clear(fake_viper, tmp_path):
    # fake VIPeR has 12 ids: the real protocol's 316/316 must fail with a message naming both numbers
    from lib.data.registry import DATASETS

    assert DATASETS["viper"].num_train_ids == 316
    with pytest.raises(ValueError, match="316 train \\+ 316 test identities requested, but the dataset has only 12"):
        build_mlr(fake_viper, tmp_path / "o", MLRConfig("viper"), progress=False)


def test_corrupt_image_names_file(fake_viper, tmp_path):
    (fake_viper / "cam_a" / "003_45.bmp").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="003_45.bmp"):
        build_mlr(fake_viper, tmp_path / "o", MLRConfig("viper", num_splits=1, num_train_ids=6, num_test_ids=6), progress=False)
    assert not (tmp_path / "o" / "manifest.json").exists()  # nothing looks complete


def test_bad_config_messages():
    with pytest.raises(ValueError, match="interpolation"):
        MLRConfig("viper", interpolation="cubic").validate()
    with pytest.raises(ValueError, match="rates"):
        MLRConfig("viper", rates=(0,)).validate()
    with pytest.raises(KeyError, match="unknown dataset"):
        MLRConfig("mars").validate()


def test_cli(fake_csv, tmp_path, capsys):
    assert mlr_main(["csv", str(fake_csv), str(tmp_path / "o"), "--seed", "5", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] == 5 and out["num_identities"] == 8
    assert mlr_main(["viper", str(tmp_path), str(tmp_path / "x"), "--quiet"]) == 2
    assert "expected: cam_a/ and cam_b/" in capsys.readouterr().err


@pytest.mark.realdata
def test_real_mlr_viper(real_viper, tmp_path):
    """Acceptance: 632 identities, cam_a LR with r ∈ {2,3,4} at true size, 10 seeded splits, byte-identical."""
    a = build_mlr(real_viper, tmp_path / "a", MLRConfig("viper", seed=0), progress=False)
    ds = MLRDataset.load(a)
    assert ds.manifest["num_identities"] == 632 and ds.num_splits == 10
    lr = [im for im in ds.images if im.res == "lr"]
    assert len(lr) == 632 and {im.camid for im in lr} == {0} and set(ds.rate_histogram()) == {2, 3, 4}
    for im in lr[:50]:
        with Image.open(im.lr_path) as f:
            assert f.size == (round(48 / im.r), round(128 / im.r))
    for k in range(10):
        s = ds.split(k)
        assert len({im.pid for im in s.train}) == 316 and len(s.query) == 316 and len(s.gallery) == 316
    build_mlr(real_viper, tmp_path / "b", MLRConfig("viper", seed=0), progress=False)
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")


@pytest.mark.realdata
def test_real_caviar(real_caviar, tmp_path):
    ds = MLRDataset.load(build_mlr(real_caviar, tmp_path / "o", MLRConfig("caviar"), progress=False))
    m = ds.manifest
    assert m["source"]["num_images"] == 1220 and m["source"]["num_identities"] == 72
    assert m["num_identities"] == 50 and len(m["dropped_identities"]) == 22 and ds.num_splits == 10
    s = ds.split(0)
    assert len({im.pid for im in s.query}) == 25 and all(im.camid == 1 for im in s.query)


def test_failed_rebuild_keeps_the_current_build(fake_viper, tmp_path):
    """A rebuild that dies half-way never leaves a manifest vouching for LR files it does not describe: the current
    build stays as it was, complete, and the failed build's files are gone."""
    out = tmp_path / "o"
    build_mlr(fake_viper, out, MLRConfig("viper", num_splits=1, num_train_ids=6, num_test_ids=6), progress=False)
    before = (out / "manifest.json").read_bytes()
    (fake_viper / "cam_a" / "011_45.bmp").write_bytes(b"broken")  # the last LR image: earlier ones are written first
    with pytest.raises(ImageReadError):
        build_mlr(fake_viper, out, MLRConfig("viper", rates=(4,), num_splits=1, num_train_ids=6, num_test_ids=6),
                  progress=False)
    assert (out / "manifest.json").read_bytes() == before
    ds = MLRDataset.load(out)
    assert ds.verify_split(0) > 0 and {im.r for im in ds.images} - {None} == {2, 3, 4}
    assert [p.name for p in (out / "builds").iterdir()] == [ds.fingerprint[:12]]


def test_split_file_only_for_cuhk03_and_viper(fake_market, fake_viper, tmp_path):
    with pytest.raises(ValueError, match="only cuhk03 and viper read a split file, found it set for 'market1501'"):
        build_mlr(fake_market, tmp_path / "o", MLRConfig("market1501", split_file="x.json"), progress=False)
    with pytest.raises(FileNotFoundError, match="viper: split file x.json does not exist"):
        build_mlr(fake_viper, tmp_path / "o", MLRConfig("viper", split_file="x.json"), progress=False)


def test_fingerprint_follows_content_not_location(fake_csv, tmp_path):
    import shutil

    a = MLRDataset.load(build_mlr(fake_csv, tmp_path / "a", MLRConfig("csv", seed=0), progress=False))
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    assert MLRDataset.load(tmp_path / "moved").fingerprint == a.fingerprint
    b = MLRDataset.load(build_mlr(fake_csv, tmp_path / "b", MLRConfig("csv", seed=0, rates=(2,)), progress=False))
    assert b.fingerprint != a.fingerprint


def test_a_dataset_name_is_registered_once():
    """Issue #23 §3: the dataset registry is the core Registry; a second dataset of one name is refused, not
    silently put in the first one's place."""
    from dataclasses import replace

    from lib.data.registry import get_dataset, register_dataset

    with pytest.raises(ValueError, match="dataset 'viper' is already registered"):
        register_dataset(replace(get_dataset("viper"), num_train_ids=1))
    assert get_dataset("viper").num_train_ids == 316
