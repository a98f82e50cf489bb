"""Data-only throughput of phase 2's pairs, decoding the files against the decoded-image cache (issue #22 §1).

    python scripts/bench_data.py outputs/cpu/mlr/viper-seed0 [--items 400] [--height 256 --width 128]

Copies the dataset's MLR folder to a temporary folder (the cache is built next to the manifest; the original folder
is not touched), then fetches ``--items`` :class:`lib.data.datasets.PairDataset` items of split 0's training set
(fresh ×2–4 pairs, flip + pad/crop, normalisation; no model) with the files decoded, builds the cache, and fetches
them again from it. Prints pairs/s both ways and the cache's build time and size.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

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
    a = p.parse_args(argv)
    if not (a.mlr_folder / "manifest.json").is_file():
        p.error(f"{a.mlr_folder}: expected an MLR dataset folder with manifest.json (notebook 01 builds one)")
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        copy = Path(tmp) / a.mlr_folder.name
        shutil.copytree(a.mlr_folder, copy, symlinks=True, ignore=shutil.ignore_patterns("cache"))
        ds = MLRDataset.load(copy / "manifest.json")
        train = ds.split(0).train

        def rate() -> float:
            pairs = PairDataset(train, size=(a.height, a.width), augment=PairedAugment(), seed=0)
            pairs.set_epoch(1)
            t = time.perf_counter()
            for i in range(a.items):
                pairs[i % len(pairs)]
            return a.items / (time.perf_counter() - t)

        files = rate()
        t = time.perf_counter()
        cache = ic.build_cache(ds)
        built = time.perf_counter() - t
        ic.activate(cache)
        try:
            cached = rate()
        finally:
            ic.deactivate(cache)
    print(f"{ds.name}: decoding the files {files:.1f} pairs/s; from the cache {cached:.1f} pairs/s "
          f"({cached / files:.2f}×); cache built in {built:.1f} s, {cache.num_images} images, "
          f"{cache.index['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
