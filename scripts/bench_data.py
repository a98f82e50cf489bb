"""Data-only throughput of phase 2's pairs on a real dataset: decoding the files against the decoded-image cache
(issue #22 §1), and the PIL data path against the tensor path with their pixel difference (§1, §3).

    python scripts/bench_data.py outputs/cpu/mlr/viper-seed0 [--items 400] [--height 256 --width 128] [--device cpu]

Copies the dataset's MLR folder to a temporary folder (the cache is built next to the manifest; the original folder
is not touched), then fetches ``--items`` :class:`lib.data.datasets.PairDataset` items of split 0's training set
(fresh ×2–4 pairs, flip + pad/crop, random erasing 0.5, normalisation; no model) with the files decoded, builds the
cache, and fetches them again from it — with the PIL path one item at a time, with the tensor path gathered and
finished in batches of ``--batch`` on ``--device`` (as the trainer does). Prints pairs/s each way, the cache's build
time and size, and how far the tensor path's pixels are from the PIL path's (8-bit levels, every pair mode).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

from lib.data import MLRDataset
from lib.data import image_cache as ic
from lib.data.datasets import PairDataset
from lib.data.transforms import PairedAugment


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mlr_folder", type=Path, help="an MLR dataset folder (holding manifest.json)")
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=24, help="pairs per batch of the tensor path (P × K 4 × 6)")
    p.add_argument("--device", default="cpu", help="where the tensor path finishes its batches")
    a = p.parse_args(argv)
    if not (a.mlr_folder / "manifest.json").is_file():
        p.error(f"{a.mlr_folder}: expected an MLR dataset folder with manifest.json (notebook 01 builds one)")
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        copy = Path(tmp) / a.mlr_folder.name
        shutil.copytree(a.mlr_folder, copy, symlinks=True, ignore=shutil.ignore_patterns("cache"))
        ds = MLRDataset.load(copy / "manifest.json")
        train = ds.split(0).train

        size = (a.height, a.width)

        def pairs(pipeline: str, mode: str = "fresh") -> PairDataset:
            d = PairDataset(train, size=size, pair_mode=mode, augment=PairedAugment(erase_prob=0.5), seed=0,
                            pipeline=pipeline)
            d.set_epoch(1)
            return d

        def rate(pipeline: str) -> float:
            d = pairs(pipeline)
            t = time.perf_counter()
            if pipeline == "pil":
                for i in range(a.items):
                    d[i % len(d)]
            else:
                for s0 in range(0, a.items, a.batch):
                    out = d.render(d.collate_fn([d[i % len(d)] for i in range(s0, min(a.items, s0 + a.batch))]),
                                   a.device)
                if torch.device(a.device).type == "cuda":
                    torch.cuda.synchronize()
                del out
            return a.items / (time.perf_counter() - t)

        files = {pipe: rate(pipe) for pipe in ("pil", "tensor")}
        t = time.perf_counter()
        cache = ic.build_cache(ds)
        built = time.perf_counter() - t
        ic.activate(cache)
        try:
            cached = {pipe: rate(pipe) for pipe in ("pil", "tensor")}
            diffs = {}
            for mode in ("fresh", "mlr", "stored"):
                pil, ten = pairs("pil", mode), pairs("tensor", mode)
                idx = range(0, len(pil), max(1, len(pil) // 96))
                x = default_collate([pil[i] for i in idx])
                y = ten.render(ten.collate_fn([ten[i] for i in idx]), "cpu")
                std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
                diffs[mode] = {k: (x[k] - y[k]).abs().mul(std).mul(255) for k in ("lr", "hr")}
        finally:
            ic.deactivate(cache)
    print(f"{ds.name} at {a.height}×{a.width}, pairs/s (PIL one item at a time; tensor in batches of {a.batch} on "
          f"{a.device}):")
    for pipe in ("pil", "tensor"):
        print(f"  {pipe:<6} decoding the files {files[pipe]:8.1f}   from the cache {cached[pipe]:8.1f} "
              f"({cached[pipe] / files[pipe]:.2f}×)")
    print(f"  tensor / pil from the cache: {cached['tensor'] / cached['pil']:.2f}×; cache built in {built:.1f} s, "
          f"{cache.num_images} images, {cache.index['bytes'] / 1e6:.1f} MB")
    print("  tensor path's pixels against PIL's (8-bit levels; same flips, crops, erasing):")
    for mode, d in diffs.items():
        for k, v in d.items():
            print(f"    {mode:<6} {k}: max {float(v.max()):.0f}, mean {float(v.mean()):.3f}, "
                  f"{float((v > 0.5).float().mean()):.1%} of values off by ≥ 1, "
                  f"{float((v > 1.5).float().mean()):.3%} by ≥ 2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
