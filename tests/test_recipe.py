"""The training-recipe options of issue #6: optimisers and schedules, random erasing, test features,
natively LR training images in phase 2, validation identities, and the per-split Rank-1 figure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.data import MLRConfig, MLRDataset, PairDataset, PairedAugment, ValidationView, build_mlr
from lib.engine import OptimConfig, lr_factor
from lib.engine.trainer import make_optimizer
from lib.losses import LossConfig, TotalLoss
from lib.models import HRNetReID, ReIDEmbedder
from lib.pshrnet import PSHRNetConfig, phase_config
from lib.workflow import pshrnet_config


@pytest.fixture
def csv_ds(fake_csv, tmp_path):
    return MLRDataset.load(build_mlr(fake_csv, tmp_path / "mlr", MLRConfig("csv", lr_cameras=(0,)), progress=False))


def test_linear_warmup_and_milestones():
    cfg = OptimConfig(epochs=30, lr=7e-4, warmup_epochs=5, warmup_lr=7e-5, warmup_mode="linear", milestones=(20,))
    f = [lr_factor(e, cfg) for e in range(30)]
    assert f[0] == pytest.approx(0.1) and f[4] == pytest.approx(0.1 + 0.9 * 4 / 5) and f[5] == 1.0
    assert all(a < b for a, b in zip(f[:5], f[1:6]))  # rising during warm-up
    assert f[19] == 1.0 and f[20] == pytest.approx(0.1) and f[29] == pytest.approx(0.1)
    two = OptimConfig(epochs=120, milestones=(40, 70), gamma=0.2)
    assert lr_factor(39, two) == 1.0 and lr_factor(40, two) == pytest.approx(0.2) and lr_factor(70, two) == pytest.approx(0.04)
    for bad in ({"optimizer": "lamb"}, {"warmup_mode": "cosine"}, {"milestones": (40, 20)}):
        with pytest.raises(ValueError, match="OptimConfig"):
            OptimConfig(**bad)


def test_optimizer_by_name_keeps_group_rates():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    groups = [{"name": "reid", "params": list(a.parameters()), "lr": 7e-4},
              {"name": "sr", "params": list(b.parameters()), "lr": 1e-4}]
    opt = make_optimizer(groups, OptimConfig(optimizer="adam", lr=7e-4))
    assert isinstance(opt, torch.optim.Adam) and [g["base_lr"] for g in opt.param_groups] == [7e-4, 1e-4]
    assert isinstance(make_optimizer([{"params": list(a.parameters()), "lr": 0.1}], OptimConfig()), torch.optim.SGD)


def test_random_erasing_same_box_in_every_image():
    aug = PairedAugment(flip_prob=0.0, pad=0, erase_prob=1.0)
    x, y = torch.rand(3, 32, 16), torch.rand(3, 32, 16)
    ex, ey = aug([x.clone(), y.clone()], np.random.default_rng(3))
    mx, my = (ex != x).any(0), (ey != y).any(0)
    assert mx.any() and torch.equal(mx, my)
    assert PairedAugment(erase_prob=0.0)([x.clone()], np.random.default_rng(3))[0].shape == x.shape
    with pytest.raises(ValueError, match="probabilities"):
        PairedAugment(erase_prob=1.5)


def test_test_features():
    model = HRNetReID("mobilenet_v2", num_classes=3).eval()
    x = torch.rand(2, 3, 64, 32)
    dims = {f: ReIDEmbedder(model, feature=f)(x).shape[1] for f in ("concat", "feat", "seq5", "concat_norm")}
    assert dims["feat"] == 512 and dims["concat"] == dims["seq5"] + 512 == dims["concat_norm"]
    with pytest.raises(ValueError, match="feature"):
        ReIDEmbedder(model, feature="logits")
    with pytest.raises(ValueError, match="test_feature"):
        PSHRNetConfig(test_feature="x")
    # an evaluation setting: it never changes what a phase trains
    assert phase_config(PSHRNetConfig(test_feature="feat"), "phase1") == phase_config(PSHRNetConfig(), "phase1")


def test_native_lr_images_train_with_id_loss_only(csv_ds):
    train = csv_ds.split(0).train
    native = [replace(im, res="lr", lr_path=None) if im.camid == 0 else im for im in train]
    with_native = PairDataset(native, (64, 32))
    without = PairDataset(native, (64, 32), native_lr=False)
    n0 = sum(im.camid == 0 for im in train)
    assert len(with_native) == len(train) and with_native.num_native_lr == n0 and len(without) == len(train) - n0
    items = [with_native[i] for i in range(len(with_native))]
    assert {bool(it["has_hr"]) for it in items} == {True, False}
    assert all(not it["hr"].any() for it in items if not it["has_hr"])
    # the loss: L_ID on every sample, L_SR / L_PS on those with an HR original only
    model = HRNetReID("mobilenet_v2", num_classes=4).eval()
    batch = torch.utils.data.default_collate(items[:8])
    mask = batch["has_hr"]
    out = model(batch["lr"])
    loss = TotalLoss(LossConfig())
    with torch.no_grad():
        t_out = model(batch["hr"][mask])
    total, parts = loss(out, batch["label"], restored=batch["lr"], hr=batch["hr"][mask], teacher_out=t_out, hr_mask=mask)
    sub = type(out)(*[[t[mask] for t in f] if isinstance(f, list) else f[mask] for f in out])
    _, ref = loss(sub, batch["label"][mask], restored=batch["lr"][mask], hr=batch["hr"][mask], teacher_out=t_out)
    assert parts["sr"] == pytest.approx(ref["sr"]) and parts["ps"] == pytest.approx(ref["ps"])
    _, id_all = loss(out, batch["label"])
    assert parts["id"] == pytest.approx(id_all["id"])


def test_phase2_step_masks_natively_lr_samples(csv_ds):
    import copy

    from lib.engine import resolve_precision
    from lib.pshrnet import _Phase2Step
    from lib.models import VDSRCA

    train = [replace(im, res="lr", lr_path=None) if im.camid == 0 else im for im in csv_ds.split(0).train]
    pairs = PairDataset(train, (64, 32))
    student = HRNetReID("mobilenet_v2", num_classes=pairs.num_classes)
    teacher = copy.deepcopy(student).eval()
    step = _Phase2Step(teacher, VDSRCA(depth=3, width=8), student, TotalLoss(LossConfig()),
                       resolve_precision(torch.device("cpu"), "fp32", False))
    seen = []
    teacher.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    items = [pairs[i] for i in range(len(pairs))]
    mixed = torch.utils.data.default_collate([it for it in items if it["has_hr"]][:4] + [it for it in items if not it["has_hr"]][:4])
    total, parts, n = step(mixed)
    assert n == 8 and seen == [4] and {"sr", "ps", "id"} <= set(parts) and torch.isfinite(total)
    native_only = torch.utils.data.default_collate([it for it in items if not it["has_hr"]][:4])
    total, parts, n = step(native_only)
    assert seen == [4] and "sr" not in parts and "ps" not in parts and parts["id"] > 0  # no teacher call, L_ID only


def test_validation_view_holds_out_training_identities_only(csv_ds):
    view = ValidationView(csv_ds, 2, seed=0)
    full, val = csv_ds.split(0), view.split(0)
    test_ids = {im.pid for im in full.query + full.gallery}
    val_ids = {im.pid for im in val.query + val.gallery}
    train_ids = {im.pid for im in full.train}
    assert val_ids == set(view.validation_ids(0)) and len(val_ids) == 2 and val_ids <= train_ids
    assert not val_ids & test_ids and not val_ids & {im.pid for im in val.train}
    assert {im.pid for im in val.train} | val_ids == train_ids
    assert all(im.res == "lr" for im in val.query) and all(im.res == "hr" for im in val.gallery)
    assert view.fingerprint != csv_ds.fingerprint and view.provenance()["validation"]["num_ids"] == 2
    assert view.name == csv_ds.name and view.eval_protocol == csv_ds.eval_protocol
    with pytest.raises(ValueError, match="training identities"):
        ValidationView(csv_ds, 4).split(0)


def test_profile_keys_for_the_recipe():
    cfg = pshrnet_config({"OPTIMIZER": "adam", "PHASE1_LR": 7e-4, "PHASE1_EPOCHS": 30, "PHASE2_EPOCHS": 8,
                          "WARMUP_EPOCHS": 5, "PHASE2_WARMUP_EPOCHS": 0, "MILESTONES": [20], "RANDOM_ERASING": 0.5,
                          "TEST_FEATURE": "feat", "NATIVE_LR": False, "PHASE2_LR": 3.5e-4})
    assert cfg.phase1.optimizer == cfg.phase2.optimizer == cfg.baseline.optimizer == "adam"
    assert cfg.phase1.warmup_epochs == 5 and cfg.phase2.warmup_epochs == 0 and cfg.baseline.warmup_epochs == 5
    assert cfg.phase1.milestones == (20,) and cfg.random_erasing == 0.5 and not cfg.native_lr
    assert cfg.baseline.epochs == 38 and cfg.baseline.lr == 7e-4  # phase 1's rate, both phases' epochs
    assert pshrnet_config({"PHASE2_WARMUP_EPOCHS": -1, "WARMUP_EPOCHS": 3}).phase2.warmup_epochs == 3


def test_rank1_per_split_figure():
    from lib.viz import rank1_per_split

    agg = lambda v: {"rank1": {"mean": float(np.mean(v)), "std": 0.0, "values": v}}  # noqa: E731
    fig = rank1_per_split({"viper": {"splits": [0, 1, 2], "methods": {"pshrnet": {"aggregate": agg([0.2, 0.3, 0.25])},
                                                                        "baseline": {"aggregate": agg([0.1, 0.2, 0.15])}}}})
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and all(len(c.get_offsets()) == 3 for c in ax.collections)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pshrnet", "baseline"]


def test_tune_script_on_validation_ids(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("tune", Path(__file__).resolve().parents[1] / "scripts" / "tune.py")
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    args = ["--profile", "tiny", "--dataset", "synthetic", "--val-ids", "4", "--quiet", "--stages", "phase1"]
    assert tune.main([*args, "--name", "t1", "--set", "PHASE1_EPOCHS=1", "MAX_STEPS_PER_EPOCH=1",
                      f"OUTPUT_ROOT={tmp_path}"]) == 0
    rows = (tmp_path / "tiny" / "tuning" / "synthetic" / "t1.csv").read_text().splitlines()
    assert rows[0].startswith("name,stage,split,val_ids") and rows[1].startswith("t1,phase1,0,4,")
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        tune.main([*args, "--name", "t2", "--set", "lower=1"])
