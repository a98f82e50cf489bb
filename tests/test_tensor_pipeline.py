"""The tensor data path (issue #22 §1, ``data.pipeline: tensor``): the same random draws as the PIL path, pixels
within the stated tolerance of PIL's, batches the generic trainer and the evaluation finish on the device, and an
identity of its own (``pil`` runs keep theirs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from lib.data import MLRConfig, MLRDataset, build_mlr
from lib.data import tensor_pipeline as tp
from lib.data.datasets import ImageDataset, PairDataset
from lib.data.transforms import IMAGENET_STD, PairedAugment

#: The tolerance docs/performance.md states, in 8-bit levels of the un-normalised image: PIL filters in 8-bit fixed
#: point and rounds between its two passes, torch in float32.
MAX_LEVELS = 8.0
MEAN_LEVELS = 0.5
SIZE = (64, 32)


def levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a − b| of two normalised batches in 8-bit levels."""
    return (a - b).abs() * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255


def both(images, cls, n=None, size=SIZE, **kw):
    """The first ``n`` items of a PIL-path and a tensor-path dataset, batched (the tensor one rendered)."""
    a, b = cls(images, size, **kw), cls(images, size, pipeline="tensor", **kw)
    for d in (a, b):
        d.set_epoch(3)
    idx = range(min(n or len(a), len(a)))
    return default_collate([a[i] for i in idx]), b.render(b.collate_fn([b[i] for i in idx]), "cpu")


@pytest.fixture(scope="module")
def caviar_like(tmp_path_factory):
    """A CAVIAR4REID-layout MLR set: images of several sizes, natively LR images of camera 2."""
    from tests.conftest import write_image

    root = tmp_path_factory.mktemp("cav") / "CAVIAR4REID"
    for pid in range(1, 9):
        for i in [1, 2] + ([11, 12] if pid <= 6 else []):
            size = (40 + 3 * (i % 3), 20 + i % 2) if i <= 10 else (20, 10)
            write_image(root / "CAVIARa" / f"{pid:04d}{i:03d}.jpg", size, seed=pid * 100 + i)
    p = build_mlr(root, root.parent / "mlr", MLRConfig("caviar", num_splits=1, num_train_ids=4, num_test_ids=2),
                  progress=False)
    return MLRDataset.load(p)


@pytest.mark.parametrize("mode,size,interp", [("fresh", SIZE, "bilinear"), ("mlr", SIZE, "bilinear"),
                                              ("stored", SIZE, "bilinear"),
                                              pytest.param("fresh", (160, 80), "bicubic", marks=pytest.mark.slow),
                                              ("stored", (48, 24), "bicubic"), ("fresh", (48, 40), "bilinear")])
def test_pairs_match_the_pil_path_with_the_same_draws(tiny, mode, size, interp):
    """Every pair mode; enlarging and shrinking (both sides, or one of each), bilinear and bicubic (PIL clips a
    bicubic overshoot between its two passes)."""
    _, ds = tiny
    aug = PairedAugment(pad=4, erase_prob=0.5)
    a, b = both(ds.split(0).train, PairDataset, size=size, pair_mode=mode, augment=aug, seed=5,
                resize_interpolation=interp, hr_interpolation=interp)
    for k in ("label", "pid", "camid", "r", "has_hr", "lr_input", "index"):
        assert torch.equal(a[k], b[k]), k
    for k in ("lr", "hr"):
        assert a[k].shape == b[k].shape and b[k].dtype == torch.float32
        d = levels(a[k], b[k])
        # a flip, a crop offset or an erased box drawn differently would differ by far more, on far more pixels
        assert float(d.max()) <= MAX_LEVELS and float(d.mean()) <= MEAN_LEVELS, (k, float(d.max()), float(d.mean()))
    assert a["r"].gt(0).any()  # fresh pairs were made on the device


def test_native_lr_images_and_several_sizes_in_one_batch(caviar_like):
    train = caviar_like.split(0).train
    a, b = both(train, PairDataset, augment=PairedAugment(pad=4), seed=1)
    assert (~a["has_hr"]).any() and a["has_hr"].any()  # both kinds in the batch
    raw = PairDataset(train, SIZE, pipeline="tensor")
    sizes = raw.collate_fn([raw[i] for i in range(len(raw))])["hr_u8_hw"]
    assert len({tuple(x) for x in sizes.tolist() if x[0]}) > 1  # HR originals of several sizes, padded into one
    assert torch.equal(a["has_hr"], b["has_hr"])
    assert torch.equal(b["hr"][~b["has_hr"]], torch.zeros_like(b["hr"][~b["has_hr"]]))  # the placeholder
    for k in ("lr", "hr"):
        d = levels(a[k], b[k])
        assert float(d.max()) <= MAX_LEVELS and float(d.mean()) <= MEAN_LEVELS, (k, float(d.max()))


def test_single_images_augmented_and_down_sampled_match(tiny):
    _, ds = tiny
    s = ds.split(0)
    a, b = both(s.train, ImageDataset, use="hr", augment=PairedAugment(pad=4, erase_prob=0.5), seed=2)
    assert float(levels(a["img"], b["img"]).max()) <= MAX_LEVELS
    a, b = both(s.gallery, ImageDataset, use="hr", downsample_rate=3)  # FTWA's LR version of a gallery image
    assert float(levels(a["img"], b["img"]).max()) <= MAX_LEVELS
    a, b = both(s.query, ImageDataset, size=(160, 80), resize_interpolation="bicubic")  # the bicubic baseline's test
    assert float(levels(a["img"], b["img"]).max()) <= MAX_LEVELS


def test_a_wrong_draw_would_be_caught(tiny):
    """The tolerance is tight enough to see a crop one pixel off (the test above could fail)."""
    _, ds = tiny
    images = ds.split(0).train
    a = PairDataset(images, SIZE, augment=PairedAugment(pad=4, flip_prob=0.0), seed=5, pipeline="tensor")
    a.set_epoch(1)
    batch = a.collate_fn([a[i] for i in range(8)])
    ok = a.render(batch, "cpu")["hr"]
    batch["left"] = (batch["left"] + 1).clamp(max=8)
    batch["left"][batch["left"] == 8] = 7
    moved = a.render(batch, "cpu")["hr"]
    assert float(levels(ok, moved).max()) > MAX_LEVELS


def test_the_augmentation_draws_equal_those_of_a_call():
    aug = PairedAugment(pad=10, erase_prob=0.7)
    for seed in range(20):
        x = torch.rand(3, 64, 32)
        want = aug([x.clone()], np.random.default_rng(seed))[0]
        d = aug.draw(64, 32, np.random.default_rng(seed))
        batch = default_collate([tp.draw_fields(d)])
        got = tp.augment_batch(x[None].clone(), batch, aug.pad)[0]
        assert torch.allclose(want, got), seed


def test_evaluation_embeds_the_same_through_either_path(tiny):
    from lib.engine.evaluate import embed_images
    from lib.engine.precision import resolve_precision

    _, ds = tiny
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    prec = resolve_precision(torch.device("cpu"), "fp32", False)
    q = ds.split(0).query
    fa, pa, ca = embed_images(net, q, size=SIZE, precision=prec, batch_size=5)
    fb, pb, cb = embed_images(net, q, size=SIZE, precision=prec, batch_size=5, pipeline="tensor")
    assert np.array_equal(pa, pb) and np.array_equal(ca, cb)
    assert float((fa * fb).sum(1).min()) > 0.999  # unit vectors: cosine of the two embeddings


def test_bad_settings_are_refused_by_name(tiny):
    from lib.data.config import DataConfig

    _, ds = tiny
    with pytest.raises(ValueError, match="pipeline: expected one of .*'pil', 'tensor'.*found 'gpu'"):
        DataConfig(pipeline="gpu")
    with pytest.raises(ValueError, match="found 'lanczos'.*use data.pipeline: pil"):
        PairDataset(ds.split(0).train, SIZE, interpolation="lanczos", pipeline="tensor")
    with pytest.raises(ValueError, match="found 'nearest'.*use data.pipeline: pil"):
        ImageDataset(ds.split(0).query, SIZE, resize_interpolation="nearest", pipeline="tensor")


def test_the_pipeline_enters_the_identity_only_when_tensor(tiny):
    from lib.core.runs import build_stage
    from lib.methods import METHODS, load_config
    from lib.models.weights import pretrained_weights_skipped

    _, ds = tiny
    method = METHODS.get("pshrnet")
    keys = {}
    for pipe in ("pil", "tensor"):
        cfg = load_config("configs/pshrnet/tiny.yaml", {"data.pipeline": pipe})
        with pretrained_weights_skipped():
            plan, ident = build_stage(method.stages["phase1"], method="pshrnet", cfg=cfg, ds=ds, split=0, deps={},
                                      progress=False)
        keys[pipe] = ident
        assert plan.dataset.pipeline == pipe
    flat = {pipe: str(v) for pipe, v in keys.items()}
    assert "pipeline" not in flat["pil"] and "'data.pipeline': 'tensor'" in flat["tensor"]


@pytest.mark.slow
def test_a_stage_trains_on_the_tensor_path(tiny, tmp_path):
    from lib.methods import METHODS, load_config, run_variant

    _, ds = tiny
    cfg = load_config("configs/pshrnet/tiny.yaml", {"data.pipeline": "tensor", "runtime.max_steps_per_epoch": 2,
                                                     "phase1.epochs": 1, "phase2.epochs": 1})
    metrics, runs = run_variant(METHODS.get("pshrnet"), cfg, ds=ds, split=0, root=tmp_path / "runs", progress=False,
                                outputs=["pshrnet"])
    assert set(runs) == {"phase1", "phase2"} and 0.0 <= metrics["pshrnet"]["rank1"] <= 1.0
    for run in runs.values():
        rec = run.history[-1]
        assert np.isfinite(rec["loss_total"]) and "render_frac" in rec, rec


@pytest.mark.slow
def test_workers_gather_the_same_raw_batches(tiny, tmp_path):
    """DataLoader workers (persistent) hand the trainer the raw batches the main process would make."""
    from lib.data import RandomIdentitySampler
    from lib.engine import OptimConfig, Trainer
    from lib.engine.precision import resolve_precision

    _, ds = tiny

    def rendered(workers: int) -> torch.Tensor:
        d = PairDataset(ds.split(0).train, SIZE, augment=PairedAugment(pad=4), seed=3, pipeline="tensor")
        t = Trainer(step_fn=lambda b: (None, {}, 0), trainable={"m": torch.nn.Linear(1, 1)}, dataset=d,
                    sampler=RandomIdentitySampler(d.pids, 3, 2, seed=0), optim=OptimConfig(epochs=2),
                    precision=resolve_precision(torch.device("cpu"), "fp32"), run_dir=tmp_path, run_config={},
                    progress=False, num_workers=workers)
        out = []
        for epoch in range(2):
            out += [d.render(b, "cpu")["lr"] for b in t._loader(epoch)]
        t.close()
        return torch.cat(out)

    assert torch.equal(rendered(0), rendered(2))


@pytest.mark.slow
def test_ftwa_trains_and_evaluates_on_the_tensor_path(tiny, tmp_path):
    from lib.methods import METHODS, load_config, run_variant

    _, ds = tiny
    cfg = load_config("configs/ftwa/tiny.yaml", {"data.pipeline": "tensor", "runtime.max_steps_per_epoch": 2,
                                                  "train.epochs": 1})
    metrics, runs = run_variant(METHODS.get("ftwa"), cfg, ds=ds, split=0, root=tmp_path / "runs", progress=False)
    (run,) = runs.values()
    assert "render_frac" in run.history[-1] and "'data.pipeline': 'tensor'" in str(run.identity)
    assert all(0.0 <= m["rank1"] <= 1.0 for m in metrics.values())


def test_fresh_pairs_without_anti_aliasing_match(tiny):
    """``antialias=False``: the tensor path makes the LR image with the plain call the PIL path's downsample makes."""
    _, ds = tiny
    a, b = both(ds.split(0).train, PairDataset, size=(96, 48), antialias=False, augment=PairedAugment(pad=4), seed=2)
    for k in ("lr", "hr"):
        d = levels(a[k], b[k])
        assert float(d.max()) <= MAX_LEVELS and float(d.mean()) <= MEAN_LEVELS, (k, float(d.max()))
