"""Hostile data (issue #19): identities on both sides of a split, repeated rows, 16-bit images, folders named
like images. Each case is an error naming the file, line or identity, or is read correctly."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import write_image
from lib.data import MLRConfig, MLRDataset, build_mlr, load_rgb
from lib.data.mlr_build import _splits
from lib.data.readers import read_csv_manifest, read_cuhk03, read_market1501
from lib.data.records import DatasetLayoutError, ImageReadError, ImageRecord, SourceDataset
from lib.data.registry import get_dataset


def _append_rows(csv: Path, rows: list[str]) -> list[int]:
    """Append rows to a CSV manifest; return their line numbers (the header is line 1)."""
    text = csv.read_text()
    first = len(text.splitlines()) + 1
    csv.write_text(text + "".join(r + "\n" for r in rows))
    return list(range(first, first + len(rows)))


def _line_of(csv: Path, path: str) -> int:
    return next(n for n, line in enumerate(csv.read_text().splitlines(), start=1) if line.startswith(path + ","))


# ---------------------------------------------------------------- 1. an identity in both train and test
def test_csv_identity_in_train_and_test_names_the_identity_and_lines(fake_csv):
    # fake_csv: pids 0-3 train, 4-7 test; one row of test identity 5 marked train
    write_image(fake_csv.parent / "images" / "extra_5.png", (32, 16), seed=77)
    (line,) = _append_rows(fake_csv, ["images/extra_5.png,5,1,train"])
    test_line = _line_of(fake_csv, "images/0005_c0_00.png")
    with pytest.raises(ValueError, match="identity 5 is in both the training set") as e:
        read_csv_manifest(fake_csv)
    msg = str(e.value)
    assert str(fake_csv) in msg and f"line {line}" in msg and str(test_line) in msg, msg
    with pytest.raises(ValueError, match="identity 5"):
        build_mlr(fake_csv, fake_csv.parent / "out", MLRConfig("csv"), progress=False)


def test_csv_fixed_protocol_train_identity_in_query_or_gallery_is_refused(tmp_path):
    rows = ["path,pid,camid,split"]
    for pid, split in ((1, "train"), (2, "train"), (3, "query"), (4, "query")):
        for cam in (0, 1):
            rel = f"img/{pid}_{cam}.png"
            write_image(tmp_path / rel, seed=pid * 10 + cam)
            rows.append(f"{rel},{pid},{cam},{split if cam == 0 or split == 'train' else 'gallery'}")
    csv = tmp_path / "m.csv"
    csv.write_text("\n".join(rows) + "\n")
    assert len(read_csv_manifest(csv).records) == 8  # query and gallery sharing identities is the protocol
    write_image(tmp_path / "img" / "2_g.png", seed=99)
    (line,) = _append_rows(csv, ["img/2_g.png,2,1,gallery"])
    with pytest.raises(ValueError, match=r"identity 2 is in both the training set \(line 4, line 5\) and the test set \(line ") as e:
        read_csv_manifest(csv)
    assert f"line {line}" in str(e.value) and str(csv) in str(e.value)


def _records(spec: list[tuple[int, int, str | None]]) -> list[ImageRecord]:
    return [ImageRecord(f"img/{k:03d}_{pid}_{cam}.png", pid, cam, subset) for k, (pid, cam, subset) in enumerate(spec)]


@pytest.mark.parametrize("dataset, test_subsets", [("market1501", ("query", "gallery")), ("csv", ("test", "test"))])
def test_splits_refuse_an_identity_in_train_and_test_from_any_reader(tmp_path, dataset, test_subsets):
    """Records as any reader could give them, train/query/gallery or train/test: identity 7 on both sides."""
    spec = [(p, c, "train") for p in (1, 2, 7) for c in (0, 1)]
    spec += [(p, 0, test_subsets[0]) for p in (3, 4, 7)] + [(p, 1, test_subsets[1]) for p in (3, 4, 7)]
    records = _records(spec)
    src = SourceDataset(dataset, tmp_path, records)
    info = get_dataset(dataset)
    with pytest.raises(ValueError, match=r"split 0 of .*: identity 7 is in both the training set") as e:
        _splits(info, MLRConfig(dataset), src, records, lambda i: records[i].camid == 0)
    assert "img/004_7_0.png" in str(e.value) and ("img/010_7_0.png" in str(e.value) or "img/011_7_1.png" in str(e.value))
    clean = [r for r in records if r.pid != 7]
    splits, _ = _splits(info, MLRConfig(dataset), SourceDataset(dataset, tmp_path, clean), clean,
                        lambda i: clean[i].camid == 0)
    assert {clean[i].pid for i in splits[0]["train"]} == {1, 2}


def test_market_train_image_of_a_test_identity_is_refused(fake_market, tmp_path):
    write_image(fake_market / "bounding_box_train" / "0005_c2s1_000777_00.jpg", (32, 16), seed=5)
    with pytest.raises(ValueError, match=r"identity 5 is in both the training set \(bounding_box_train/0005_c2s1_000777"):
        build_mlr(fake_market, tmp_path / "out", MLRConfig("market1501", lr_cameras=(0,)), progress=False)


def test_market_distractors_and_junk_stay_valid(fake_market, tmp_path):
    """Market's distractor id 0 (gallery only) and junk -1 (dropped) are not a train/test overlap."""
    ds = MLRDataset.load(build_mlr(fake_market, tmp_path / "out", MLRConfig("market1501", lr_cameras=(0,)), progress=False))
    sp = ds.split(0)
    assert 0 in {im.pid for im in sp.gallery} and -1 not in {im.pid for im in ds.images}
    assert not {im.pid for im in sp.train} & {im.pid for im in sp.query + sp.gallery}


def test_cuhk03_split_file_splits_are_disjoint(tmp_path):
    root = tmp_path / "cuhk03"
    for pair in (1, 2):
        for person in (1, 2, 3):
            for view, imgs in ((1, (1, 2)), (2, (6, 7))):
                for i in imgs:
                    write_image(root / "images_labeled" / f"{pair}_{person:03d}_{view}_{i:02d}.png", seed=pair * 100 + person * 10 + i)
    split = [{"query": [["2_003_1_01.png", 0, 0]], "gallery": [["2_003_2_06.png", 0, 1], ["1_001_2_06.png", 0, 1]]}]
    (root / "splits.json").write_text(json.dumps(split))
    ds = MLRDataset.load(build_mlr(root, tmp_path / "out", MLRConfig("cuhk03", split_file=str(root / "splits.json")),
                                   progress=False))
    sp = ds.split(0)
    assert {im.pid for im in sp.query + sp.gallery} == {1001, 2003}
    assert {im.pid for im in sp.train} == set(read_cuhk03(root).pids) - {1001, 2003}


def test_hand_edited_manifest_with_a_train_identity_in_query_is_refused(fake_csv, tmp_path):
    manifest = build_mlr(fake_csv, tmp_path / "out", MLRConfig("csv"), progress=False)
    m = json.loads(manifest.read_text())
    q = m["splits"][0]["query"][0]
    pid = m["images"][q]["pid"]
    m["splits"][0]["train"].append(q)
    manifest.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=rf"split 0: identity {pid} is in both the training set \(image {q}\)") as e:
        MLRDataset.load(manifest)
    assert str(manifest) in str(e.value)


# ---------------------------------------------------------------- 2. the same image listed twice
@pytest.mark.parametrize("copy", ["identical", "conflicting"])
def test_csv_repeated_row_names_both_lines(fake_csv, copy):
    rel = "images/0005_c2_01.png"  # test identity 5, camera 2
    first = _line_of(fake_csv, rel)
    row = f"{rel},5,2,test" if copy == "identical" else f"./{rel},6,1,test"
    (line,) = _append_rows(fake_csv, [row])
    with pytest.raises(ValueError, match=rf"listed twice, on lines {first} and {line}") as e:
        read_csv_manifest(fake_csv)
    assert str(fake_csv) in str(e.value)
    assert ("identical" in str(e.value)) == (copy == "identical")


@pytest.mark.parametrize("lr_cam", [0, 2])
def test_csv_repeated_row_on_hr_or_lr_camera_fails_the_build_naming_the_lines(fake_csv, tmp_path, lr_cam):
    rel = "images/0006_c2_00.png"
    first = _line_of(fake_csv, rel)
    (line,) = _append_rows(fake_csv, [f"{rel},6,2,test"])
    with pytest.raises(ValueError, match=rf"{fake_csv.name}:{line}: .*lines {first} and {line}"):
        build_mlr(fake_csv, tmp_path / "out", MLRConfig("csv", lr_cameras=(lr_cam,)), progress=False)


def test_records_with_the_same_path_from_any_reader_are_refused(tmp_path):
    spec = [(p, c, "train" if p < 3 else "test") for p in range(1, 5) for c in (0, 1)]
    records = _records(spec)
    records.append(records[-1])  # the same image twice, as a buggy reader could return it
    src = SourceDataset("custom", tmp_path, records)
    with pytest.raises(ValueError, match=r"image img/007_4_1\.png is listed twice .*records 7 and 8"):
        _splits(get_dataset("csv"), MLRConfig("csv"), src, records, lambda i: records[i].camid == 0)


# ---------------------------------------------------------------- 3. high bit depths
def _png16(path: Path, arr: np.ndarray) -> Path:
    """A 16-bit-per-channel PNG (grey, grey+alpha, RGB or RGBA by the last axis), written byte by byte:
    Pillow cannot write 16-bit colour PNGs."""
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[1 if arr.ndim == 2 else arr.shape[2]]
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in arr)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def _gradient(h: int = 4, w: int = 256) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    grey = tmp_path / "grey16.png"
    Image.fromarray(np.full((8, 4), 128 * 257, np.uint16)).save(grey)
    assert Image.open(grey).mode == "I;16"
    out = np.asarray(load_rgb(grey)).astype(int)
    assert out.shape == (8, 4, 3) and np.abs(out - 128).max() <= 1, out[0, 0]
    g = _gradient()
    ramp = tmp_path / "ramp16.png"
    Image.fromarray(g).save(ramp)
    got = np.asarray(load_rgb(ramp))[0, :, 0].astype(int)
    assert np.all(np.diff(got) >= 0) and got[0] == 0 and got[-1] == 255
    assert np.abs(got - g[0] / 257).max() <= 0.5 + 1e-9  # value / 257, rounded


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16bit_tiffs_of_either_byte_order_are_scaled(tmp_path, mode):
    g = _gradient()
    path = tmp_path / "ramp.tif"
    Image.frombytes(mode, (g.shape[1], g.shape[0]), g.astype(">u2" if mode == "I;16B" else "<u2").tobytes()).save(path)
    assert Image.open(path).mode == mode
    got = np.asarray(load_rgb(path))[0, :, 0].astype(int)
    assert got[0] == 0 and got[-1] == 255 and np.all(np.diff(got) >= 0) and np.abs(got - g[0] / 257).max() <= 0.5 + 1e-9


def test_restoration_and_explorer_conversions_scale_16bit_images():
    from lib.explorer import _uint8
    from lib.metrics.restoration import _image_to_uint8

    img = Image.fromarray(np.full((6, 4), 128 * 257, np.uint16))
    for convert in (_uint8, _image_to_uint8):
        out = convert(img).astype(int)
        assert out.shape == (6, 4, 3) and np.abs(out - 128).max() <= 1, (convert.__name__, out[0, 0])


@pytest.mark.parametrize("channels", [3, 4, 2])
def test_16bit_colour_pngs_come_out_scaled(tmp_path, channels):
    grey = _png16(tmp_path / "grey.png", np.full((8, 4, channels), 128 * 257, np.uint16))
    out = np.asarray(load_rgb(grey)).astype(int)
    assert out.shape == (8, 4, 3) and np.abs(out - 128).max() <= 1, out[0, 0]
    g = _gradient()
    arr = np.stack([g, g[:, ::-1], g] + [np.full_like(g, 65535)] * (channels - 3), axis=2) if channels >= 3 else \
        np.stack([g, np.full_like(g, 65535)], axis=2)
    got = np.asarray(load_rgb(_png16(tmp_path / "ramp.png", arr))).astype(int)
    assert np.all(np.diff(got[0, :, 0]) >= 0) and got[0, 0, 0] == 0 and got[0, -1, 0] == 255
    assert np.abs(got[0, :, 0] - g[0] / 257).max() <= 1  # Pillow keeps the high byte: within 1 of value / 257
    if channels >= 3:
        assert np.all(np.diff(got[0, :, 1]) <= 0)  # the reversed channel stays reversed


@pytest.mark.parametrize("mode, value", [("I", 40000), ("F", 0.5)])
def test_32bit_integer_and_float_images_are_refused_naming_file_and_mode(tmp_path, mode, value):
    path = tmp_path / f"deep_{mode}.tif"
    Image.new(mode, (4, 8), value).save(path)
    assert Image.open(path).mode == mode
    with pytest.raises(ImageReadError, match=rf"deep_{mode}\.tif: mode '{mode}'"):
        load_rgb(path)


def test_mlr_synthesis_of_16bit_sources_keeps_their_grey_level(tmp_path):
    rows = ["path,pid,camid,split"]
    for pid in range(4):
        for cam in (0, 1):
            rel = f"img/{pid}_{cam}.png"
            (tmp_path / "img").mkdir(exist_ok=True)
            Image.fromarray(np.full((32, 16), (64 + 32 * pid) * 257, np.uint16)).save(tmp_path / rel)
            rows.append(f"{rel},{pid},{cam},{'train' if pid < 2 else 'test'}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    ds = MLRDataset.load(build_mlr(tmp_path / "manifest.csv", tmp_path / "out", MLRConfig("csv", lr_cameras=(0,)),
                                   progress=False))
    lr = [im for im in ds.images if im.lr_path is not None]
    assert lr
    for im in lr:
        assert np.abs(np.asarray(Image.open(im.lr_path)).astype(int) - (64 + 32 * im.pid)).max() <= 1, im.lr_path
    # a build of these sources made before they were scaled (its manifest lacks the note): rebuilt, never reused
    assert ds.manifest["high_bit_depth"].startswith("16-bit sources scaled")
    old = json.loads((tmp_path / "out" / "manifest.json").read_text())
    del old["high_bit_depth"]
    (tmp_path / "out" / "manifest.json").unlink()  # the switch symlink: replaced by an old-layout real manifest
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(old))
    shutil.copytree(ds.root / "lr", tmp_path / "out" / "lr")  # its LR files: only the missing note differs
    ds.close()
    again = MLRDataset.load(build_mlr(tmp_path / "manifest.csv", tmp_path / "out", MLRConfig("csv", lr_cameras=(0,)),
                                      progress=False))
    assert "high_bit_depth" in again.manifest and (tmp_path / "out" / "manifest.json").is_symlink()


# ---------------------------------------------------------------- 4. a folder named like an image
def test_csv_row_naming_a_folder_says_it_is_a_folder(fake_csv):
    (fake_csv.parent / "images" / "x.png").mkdir()
    (line,) = _append_rows(fake_csv, ["images/x.png,6,1,test"])
    with pytest.raises(OSError, match=rf"{fake_csv.name}:{line}: .*x\.png is a folder, not an image file"):
        read_csv_manifest(fake_csv)


def test_load_rgb_of_a_folder_says_it_is_a_folder(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ImageReadError, match=r"x\.png is a folder, not an image file"):
        load_rgb(tmp_path / "x.png")


def test_reader_finding_a_folder_named_like_an_image_says_so(fake_market):
    (fake_market / "bounding_box_test" / "0004_c2s1_000123_00.jpg").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"bounding_box_test/0004_c2s1_000123_00\.jpg is a folder, not an image"):
        read_market1501(fake_market)
