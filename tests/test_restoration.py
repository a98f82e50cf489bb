"""Restoration quality (PSNR / SSIM of SR outputs against HR originals) and its figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from lib.data.mlr_build import downsample
from lib.data.mlr_dataset import MLRImage
from lib.engine.precision import Precision
from lib.metrics import image_quality, restoration_quality, restored_examples, to_uint8
from lib.data.transforms import normalize, to_tensor

SIZE = (64, 32)  # network (height, width) of the tests: the HR originals' own size
CPU = Precision(torch.device("cpu"), None, False)


def _smooth_image(rng: np.random.Generator, size=(64, 32)) -> Image.Image:
    """A smooth random RGB image: coarse noise up-sampled bicubically."""
    h, w = size
    coarse = rng.integers(20, 236, size=(h // 8, w // 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)


@pytest.fixture()
def records(tmp_path: Path) -> list[MLRImage]:
    """Stored LR at r = 2 and 4 (2 records), one HR-only record, one natively LR record."""
    rng = np.random.default_rng(0)
    out = []
    for k, r in enumerate((2, 4)):
        hr = _smooth_image(rng)
        hr.save(tmp_path / f"hr{k}.png")
        downsample(hr, r, "bicubic", True).save(tmp_path / f"lr{k}.png")
        out.append(MLRImage(index=k, hr_path=tmp_path / f"hr{k}.png", lr_path=tmp_path / f"lr{k}.png",
                            pid=k, camid=1, res="lr", r=r))
    _smooth_image(rng).save(tmp_path / "hr_only.png")
    out.append(MLRImage(index=2, hr_path=tmp_path / "hr_only.png", lr_path=None, pid=2, camid=2, res="hr", r=None))
    _smooth_image(rng, (24, 16)).save(tmp_path / "native_lr.png")
    out.append(MLRImage(index=3, hr_path=tmp_path / "native_lr.png", lr_path=None, pid=3, camid=1, res="lr", r=None))
    return out


class AddHalf(nn.Module):
    """A deliberately bad "SR" module: adds 0.5 to the normalised input."""

    input_interpolation = "bicubic"

    def forward(self, x):
        return x + 0.5


class Identity(nn.Module):
    """Returns its input; records the interpolation attribute default (no attribute → bilinear)."""

    def forward(self, x):
        return x


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


@pytest.mark.parametrize("space", ["rgb", "y"])
def test_numbers_match_scikit_image_on_saved_pngs(records, tmp_path, space):
    out_dir = tmp_path / f"saved_{space}"
    res = restoration_quality(AddHalf(), records, size=SIZE, precision=CPU, space=space, batch_size=2, save_dir=out_dir)
    restored = sorted(out_dir.glob("*_restored.png"))
    assert len(restored) == res["num_images"] == 5
    per_r: dict[int, list[tuple[float, float]]] = {}
    for p in restored:
        ref = p.with_name(p.name.replace("_restored", "_reference"))
        a, b = _read(ref), _read(p)
        assert a.shape == b.shape == (*SIZE, 3)
        if space == "y":
            a, b = rgb2ycbcr(a)[..., 0].astype(np.float64), rgb2ycbcr(b)[..., 0].astype(np.float64)
            kw = {}
        else:
            kw = {"channel_axis": -1}
        psnr = peak_signal_noise_ratio(a, b, data_range=255)
        ssim = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, **kw)
        r = int(p.name.split("_r")[1].split("_")[0])
        per_r.setdefault(r, []).append((psnr, ssim))
    allv = [v for vs in per_r.values() for v in vs]
    assert res["psnr"] == pytest.approx(np.mean([p for p, _ in allv]), abs=1e-9)
    assert res["ssim"] == pytest.approx(np.mean([s for _, s in allv]), abs=1e-9)
    for r, vs in per_r.items():
        assert res[f"psnr_r{r}"] == pytest.approx(np.mean([p for p, _ in vs]), abs=1e-9)
        assert res[f"ssim_r{r}"] == pytest.approx(np.mean([s for _, s in vs]), abs=1e-9)
    assert res["space"] == space
    # the reference is the HR original resized to the network size (here its own size: the original itself)
    assert np.array_equal(_read(out_dir / "00000_r2_reference.png"), _read(records[0].hr_path))


def test_per_rate_keys_hr_only_expansion_and_skipped(records, tmp_path):
    res = restoration_quality(None, records, size=SIZE, precision=CPU, rates=(2, 3, 4), save_dir=tmp_path / "s")
    assert {k for k in res if k.startswith("psnr_r")} == {"psnr_r2", "psnr_r3", "psnr_r4"}
    assert {k for k in res if k.startswith("ssim_r")} == {"ssim_r2", "ssim_r3", "ssim_r4"}
    # stored r=2 + HR-only at 2; HR-only at 3; stored r=4 + HR-only at 4
    assert (res["num_r2"], res["num_r3"], res["num_r4"]) == (2, 1, 2)
    assert res["num_images"] == 5 and res["num_skipped"] == 1
    hr_only = sorted(p.name for p in (tmp_path / "s").glob("00002_*_restored.png"))
    assert hr_only == ["00002_r2_restored.png", "00002_r3_restored.png", "00002_r4_restored.png"]
    assert not list((tmp_path / "s").glob("00003_*"))  # the natively LR record is not evaluated
    assert "stored LR queries" in res["source"] and "r ∈ {2, 3, 4}" in res["source"]
    # only stored LR images, only HR images: the source says which
    only_stored = restoration_quality(None, records[:2], size=SIZE, precision=CPU)
    assert only_stored["source"] == "stored LR queries" and only_stored["num_skipped"] == 0
    only_hr = restoration_quality(None, records[2:], size=SIZE, precision=CPU, rates=(3,))
    assert only_hr["source"] == "HR images down-sampled at r ∈ {3}"
    assert set(k for k in only_hr if k.startswith("psnr_r")) == {"psnr_r3"}
    assert only_hr["num_images"] == 1 and only_hr["num_skipped"] == 1
    with pytest.raises(ValueError, match="natively low-resolution"):
        restoration_quality(None, records[3:], size=SIZE, precision=CPU)


def test_bad_module_scores_lower_and_modes_are_restored(records):
    good = restoration_quality(None, records, size=SIZE, precision=CPU, space="rgb")
    ident = Identity().train()
    same = restoration_quality(ident, records, size=SIZE, precision=CPU, space="rgb")
    assert ident.training  # put back in train mode
    assert same["psnr"] == pytest.approx(good["psnr"], abs=1e-12)  # identity, bilinear by default = no SR
    bad = AddHalf().train()
    worse = restoration_quality(bad, records, size=SIZE, precision=CPU, space="rgb")
    assert bad.training
    assert worse["psnr"] < good["psnr"] - 3
    assert worse["ssim"] < good["ssim"]
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    spy = Spy().train()
    restoration_quality(spy, records, size=SIZE, precision=CPU)
    assert seen and not any(seen) and spy.training  # ran in eval mode


def test_image_quality_known_uniform_error():
    rng = np.random.default_rng(1)
    img = rng.integers(10, 246, size=(32, 24, 3), dtype=np.uint8)
    for err in (1, 3, 8):
        psnr, ssim = image_quality(img + np.uint8(err), img, space="rgb")
        assert psnr == pytest.approx(20 * math.log10(255 / err), abs=1e-9)
        assert ssim < 1
    psnr, ssim = image_quality(img, img, space="rgb")
    assert psnr == math.inf and ssim == pytest.approx(1.0)
    psnr_y, ssim_y = image_quality(img, img, space="y")
    assert psnr_y == math.inf and ssim_y == pytest.approx(1.0)
    # Y of a uniform RGB shift: ΔY = err × (65.481 + 128.553 + 24.966) / 255 (BT.601)
    psnr_y, _ = image_quality(img + np.uint8(4), img, space="y")
    assert psnr_y == pytest.approx(20 * math.log10(255 / (4 * 219 / 255)), abs=1e-6)


def test_unknown_space_is_rejected(records):
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="'y'.*'rgb'|'rgb'.*'y'"):
        image_quality(img, img, space="lab")
    with pytest.raises(ValueError, match="'y'.*'rgb'|'rgb'.*'y'"):
        restoration_quality(None, records, size=SIZE, precision=CPU, space="lab")


def test_to_uint8_round_trips_8bit_images():
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, size=(2, 16, 12, 3), dtype=np.uint8)
    x = torch.stack([normalize(to_tensor(Image.fromarray(a))) for a in arr])
    assert np.array_equal(to_uint8(x), arr)
    assert to_uint8(x.to(torch.bfloat16)).dtype == np.uint8


def test_figures_have_the_expected_axes(records):
    import matplotlib.pyplot as plt
    import pandas as pd

    from lib.viz import quality_vs_rate, restoration_grid

    ex = restored_examples({"bilinear": None, "bad": AddHalf()}, records, size=SIZE, precision=CPU,
                           rates=(2, 4), num_persons=2, seed=0)
    assert len(ex) == 4 and [e["r"] for e in ex] == [2, 4, 2, 4]
    assert len({e["pid"] for e in ex}) == 2 and 3 not in {e["pid"] for e in ex}  # natively LR never chosen
    assert ex[0]["lr"].shape == (32, 16, 3) and ex[1]["lr"].shape == (16, 8, 3)  # true LR size
    assert ex[0]["hr"].shape == ex[0]["restored"]["bad"].shape == (*SIZE, 3)
    assert ex[0]["psnr"]["bad"] < ex[0]["psnr"]["bilinear"]
    again = restored_examples({"bilinear": None}, records, size=SIZE, precision=CPU, rates=(2, 4), num_persons=2, seed=0)
    assert [e["pid"] for e in again] == [e["pid"] for e in ex]  # deterministic by seed

    fig = restoration_grid(ex)
    assert len(fig.axes) == 4 * 4
    lr_ax = fig.axes[1 * 4]  # row 2 (r = 4), LR column: drawn 4× smaller inside the network-size canvas
    assert lr_ax.get_images()[0].get_extent() == [0, 8, 16, 0]
    assert tuple(lr_ax.get_xlim()) == (0, 32) and tuple(lr_ax.get_ylim()) == (64, 0)
    assert "PSNR" in fig.axes[1].get_xlabel() and "dB" in fig.axes[1].get_xlabel()
    fig = restoration_grid(ex, names=["bad"])
    assert len(fig.axes) == 4 * 3

    frame = pd.DataFrame([
        {"variant": v, "dataset": d, "r": r, "psnr": 30 - r - i, "ssim": 0.9 - 0.05 * r, "psnr_std": 0.3, "ssim_std": 0.01}
        for i, v in enumerate(("bilinear", "G")) for d in ("A", "B") for r in (2, 3, 4)
    ])
    fig = quality_vs_rate(frame)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].get_legend().get_texts()) == 4  # variant × dataset
    fig = quality_vs_rate(frame[frame["dataset"] == "A"].drop(columns=["psnr_std", "ssim_std"]))
    assert len(fig.axes) == 2 and len(fig.axes[0].get_legend().get_texts()) == 2
    assert not plt.get_fignums()  # off-screen figures: pyplot's global state untouched


def test_the_restoration_figure_shows_table_iiis_psnr(tiny):
    """Issue #23 §3: notebook 03's figure computes PSNR as Table III does (Y channel, 8-bit), not its own way."""
    import re

    import numpy as np
    import torch

    from lib.data.mlr_build import load_rgb
    from lib.data.transforms import normalize, resize, to_tensor
    from lib.metrics.restoration import image_quality, to_uint8
    from lib.viz import restoration_examples

    _, ds = tiny
    sr = torch.nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        sr.weight.copy_(torch.eye(3).view(3, 3, 1, 1))  # G = identity: its output is its input
    im = next(im for im in ds.split(0).query if im.lr_path is not None)
    fig = restoration_examples(sr, [im], (64, 32), num=1)
    titles = [ax.get_title() for ax in fig.axes]
    got = [float(x) for t in titles for x in re.findall(r"([\d.]+) dB", t)]
    u8 = lambda img: to_uint8(normalize(to_tensor(resize(img, (64, 32))))[None])[0]  # noqa: E731
    want = image_quality(u8(load_rgb(im.path)), u8(load_rgb(im.hr_path)), "y")[0]
    assert len(got) == 2 and got[0] == got[1] == pytest.approx(round(want, 1), abs=0.05), (titles, want)
    assert np.isfinite(want)
