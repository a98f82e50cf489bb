"""Pair dataset (identical augmentation), image dataset, and the P × K identity sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from lib.data import ImageDataset, MLRConfig, MLRDataset, PairDataset, PairedAugment, RandomIdentitySampler, build_mlr
from lib.data.transforms import denormalize


@pytest.fixture
def split(fake_csv, tmp_path):
    ds = MLRDataset.load(build_mlr(fake_csv, tmp_path / "mlr", MLRConfig("csv", lr_cameras=(0,)), progress=False))
    return ds.split(0)


def test_paired_augment_identical_on_both():
    x = torch.rand(3, 32, 16)
    a, b = PairedAugment(flip_prob=0.5, pad=4)([x, x.clone()], np.random.default_rng(0))
    assert torch.equal(a, b)
    outs = {PairedAugment(pad=4)([x], np.random.default_rng(s))[0].sum().item() for s in range(10)}
    assert len(outs) > 1  # it does augment
    with pytest.raises(ValueError, match="same size"):
        PairedAugment()([x, torch.rand(3, 16, 8)], np.random.default_rng(0))


def test_pair_dataset_mlr_mode_hr_camera_pairs_are_identical(split):
    # In 'mlr' mode an HR-camera image is paired with itself: identical augmentation ⇒ identical tensors.
    ds = PairDataset(split.train, size=(32, 16), pair_mode="mlr", augment=PairedAugment(pad=4), seed=0)
    hr_cam = [i for i, im in enumerate(ds.images) if im.res == "hr"]
    lr_cam = [i for i, im in enumerate(ds.images) if im.res == "lr"]
    assert hr_cam and lr_cam
    for i in hr_cam[:4]:
        item = ds[i]
        assert item["r"] == 0 and torch.equal(item["lr"], item["hr"])
    item = ds[lr_cam[0]]
    assert item["r"] in (2, 3, 4) and item["lr"].shape == item["hr"].shape == (3, 32, 16)
    assert not torch.equal(item["lr"], item["hr"])


def test_pair_dataset_fresh_mode(split):
    ds = PairDataset(split.train, size=(32, 16), rates=(2, 4), seed=1)
    items = [ds[i] for i in range(len(ds))]
    assert {it["r"] for it in items} == {2, 4}
    assert all(it["lr"].shape == (3, 32, 16) for it in items)
    # fresh LR is a blurred version of the HR image: pixel-wise close but not equal
    it = items[0]
    diff = (denormalize(it["lr"]) - denormalize(it["hr"])).abs().mean().item()
    assert 0 < diff < 0.5
    # deterministic per (seed, epoch, index); changes with the epoch
    assert torch.equal(ds[3]["lr"], ds[3]["lr"])
    ds.set_epoch(1)
    assert any(not torch.equal(items[i]["lr"], ds[i]["lr"]) for i in range(len(ds)))
    assert ds.num_classes == 4 and sorted(set(it["label"] for it in items)) == [0, 1, 2, 3]


def test_pair_dataset_rejects_native_lr_only(split):
    from dataclasses import replace

    native = [replace(im, res="lr", lr_path=None) for im in split.train]
    with pytest.raises(ValueError, match="HR original"):
        PairDataset(native)
    with pytest.raises(ValueError, match="pair_mode"):
        PairDataset(split.train, pair_mode="x")


def test_image_dataset_query_is_lr_gallery_hr(split):
    q = ImageDataset(split.query, size=(32, 16))
    g = ImageDataset(split.gallery, size=(32, 16), use="hr")
    assert q[0]["img"].shape == g[0]["img"].shape == (3, 32, 16)
    assert all(im.res == "lr" for im in q.images)
    loader = torch.utils.data.DataLoader(g, batch_size=5)
    batch = next(iter(loader))
    assert batch["img"].shape == (5, 3, 32, 16) and batch["pid"].dtype == torch.int64


def test_sampler_pk_structure_and_determinism():
    pids = [0] * 6 + [1] * 4 + [2] * 2 + [3] * 1 + [4] * 8
    s = RandomIdentitySampler(pids, num_identities=2, num_instances=4, seed=0)
    idx = list(s)
    assert len(idx) == len(s) and len(idx) % 8 == 0
    for b in range(0, len(idx), 8):
        batch_pids = [pids[i] for i in idx[b : b + 8]]
        c = Counter(batch_pids)
        assert len(c) == 2 and set(c.values()) == {4}
    # identities with fewer than K images still appear (drawn with replacement)
    assert {pids[i] for i in idx} == {0, 1, 2, 3, 4}
    assert list(s) == idx  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != idx


def test_sampler_too_few_identities():
    with pytest.raises(ValueError, match="P=4 identities per batch requested, but the training set has only 2"):
        RandomIdentitySampler([0, 0, 1, 1], num_identities=4, num_instances=2)


def test_sampler_length_is_exact_in_every_epoch():
    pids = [0] * 4 + [1] * 2 + [2] * 2 + [3] * 6 + [4] * 2
    s = RandomIdentitySampler(pids, num_identities=2, num_instances=2, seed=0)
    lengths = set()
    for epoch in range(8):
        s.set_epoch(epoch)
        assert len(s) == len(list(s))
        lengths.add(len(s))
    assert len(lengths) > 1  # the count does vary, so a length frozen at epoch 0 would be wrong
