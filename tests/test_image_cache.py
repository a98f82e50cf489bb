"""The decoded-image cache (issue #22 §1): the same pixels as decoding the files, so the same items and the same
runs; a cache per manifest; a truncated cache refused with its file named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lib.data import MLRConfig, MLRDataset, build_mlr
from lib.data import image_cache as ic
from lib.data.datasets import ImageDataset, PairDataset
from lib.data.mlr_build import load_rgb
from lib.data.synthetic import SyntheticConfig, generate_synthetic
from lib.data.transforms import PairedAugment


@pytest.fixture
def fresh(tiny, tmp_path):
    """The tiny MLR build with no cache active and none left behind."""
    _, ds = tiny
    ic.deactivate()
    yield ds
    ic.deactivate()
    for p in ic.cache_paths(ds):
        p.unlink(missing_ok=True)


def test_the_cache_holds_the_decoded_pixels_of_every_image(fresh):
    ds = fresh
    cache = ic.build_cache(ds)
    files = {str(p) for im in ds.images for p in (im.hr_path, im.lr_path) if p is not None}
    assert cache.num_images == len(files) and set(cache.index["images"]) == files
    for path in sorted(files)[:: max(1, len(files) // 10)]:
        want = np.asarray(load_rgb(path))  # not active yet: the file itself
        off, h, w = cache.index["images"][path]
        assert np.array_equal(cache.array(off, h, w), want), path
    assert ic.build_cache(ds).index == cache.index  # built once: the second call opens it


def test_items_are_identical_with_the_cache_and_no_file_is_opened(fresh, monkeypatch):
    ds = fresh
    split = ds.split(0)

    def items():
        pairs = PairDataset(split.train, size=(32, 16), augment=PairedAugment(pad=4), seed=1)
        pairs.set_epoch(2)
        singles = ImageDataset(split.query, size=(32, 16))
        return [pairs[i] for i in range(len(pairs))] + [singles[i] for i in range(len(singles))]

    plain = items()
    ic.activate(ic.build_cache(ds))
    import PIL.Image

    def no_open(*a, **k):
        raise AssertionError(f"decoded a file although it is cached: {a[0]}")

    monkeypatch.setattr(PIL.Image, "open", no_open)
    cached = items()
    for a, b in zip(plain, cached):
        for k, v in a.items():
            assert torch.equal(v, b[k]) if torch.is_tensor(v) else v == b[k], k


def test_a_truncated_cache_is_refused_and_another_manifest_gets_its_own(fresh, tmp_path):
    ds = fresh
    cache = ic.build_cache(ds)
    pixels, index = ic.cache_paths(ds)
    with open(pixels, "r+b") as f:
        f.truncate(cache.index["bytes"] - 7)
    with pytest.raises(ic.CacheError, match=rf"{pixels.name}: truncated or altered image cache: its index "
                                            rf"{index.name} says {cache.index['bytes']} bytes, the file has "
                                            rf"{cache.index['bytes'] - 7}; delete both to rebuild it"):
        ic.open_cache(ds)
    pixels.unlink()
    with pytest.raises(ic.CacheError, match="the file has none"):
        ic.open_cache(ds)
    index.write_text(json.dumps({"format": "other", "manifest_sha256": ds.fingerprint}))
    with pytest.raises(ic.CacheError, match="expected format 'workbook-image-cache/1'"):
        ic.open_cache(ds)
    # another seed: another manifest, another cache file
    csv = generate_synthetic(tmp_path / "data", SyntheticConfig(num_identities=12, num_cameras=3, images_per_camera=2,
                                                               height=64, width=32, seed=0), progress=False)
    other = MLRDataset.load(build_mlr(csv, tmp_path / "mlr", MLRConfig("synthetic", seed=1), progress=False))
    assert other.fingerprint != ds.fingerprint and ic.cache_paths(other)[0] != pixels
    assert ic.open_cache(other) is None and ic.build_cache(other).num_images > 0


@pytest.mark.slow
def test_a_run_with_the_cache_is_the_run_without_it(tiny, tmp_path):
    """``runtime.image_cache`` is not part of the identity and changes no number: the same key, the same metrics."""
    from lib.methods import METHODS, load_config, run_variant

    _, ds = tiny
    small = {"data.height": 64, "data.width": 32, "data.num_identities": 3, "data.num_instances": 2,
             "runtime.device": "cpu", "runtime.precision": "fp32", "test.num_repeats": 2, "phase1.epochs": 1}
    runs = {}
    try:
        for flag in (False, True):
            cfg = load_config("configs/pshrnet/tiny.yaml", {**small, "runtime.image_cache": flag})
            _, r = run_variant(METHODS.get("pshrnet"), cfg, ds=ds, split=0, root=tmp_path / str(flag),
                               outputs=["teacher_lr"], progress=False)
            runs[flag] = r["phase1"]
        assert ic.open_cache(ds) is not None  # the second run built it
        assert runs[True].key == runs[False].key and runs[True].metrics == runs[False].metrics
    finally:
        ic.deactivate()
        for p in ic.cache_paths(ds):
            p.unlink(missing_ok=True)


@pytest.mark.slow
def test_a_cache_that_cannot_be_written_is_said_and_the_run_decodes_the_files(tiny, tmp_path, monkeypatch, capsys):
    from lib.methods import METHODS, load_config, run_variant

    _, ds = tiny

    def refuse(ds, progress=False):
        raise PermissionError(13, "Permission denied", str(ic.cache_paths(ds)[0].parent))

    monkeypatch.setattr(ic, "build_cache", refuse)
    cfg = load_config("configs/pshrnet/tiny.yaml", {"data.height": 64, "data.width": 32, "runtime.device": "cpu",
                                                    "runtime.precision": "fp32", "phase1.epochs": 1,
                                                    "runtime.image_cache": True, "test.num_repeats": 2})
    _, runs = run_variant(METHODS.get("pshrnet"), cfg, ds=ds, split=0, root=tmp_path, outputs=["teacher_lr"],
                          progress=False)
    assert (runs["phase1"].run_dir / "metrics.json").is_file()
    err = capsys.readouterr().err
    assert "the decoded-image cache could not be written" in err and "Permission denied" in err
    assert ic.lookup(ds.images[0].hr_path) is None
