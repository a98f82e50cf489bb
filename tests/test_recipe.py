"""The training-recipe options of issue #6: optimisers and schedules, random erasing, test features,
natively LR training images in phase 2, validation identities, and the per-split Rank-1 figure."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.core import ConfigError
from lib.data import MLRConfig, MLRDataset, PairDataset, PairedAugment, ValidationView, build_mlr
from lib.engine import OptimConfig, lr_factor
from lib.engine.optim import make_optimizer, module_param_groups
from lib.losses import LossComposer
from lib.methods import load_config
from lib.methods.pshrnet import PSHRNetConfig
from lib.methods.pshrnet import config as pshrnet_config
from lib.methods.pshrnet.losses import PSHRNetLossConfig, PSHRNetLossInputs
from lib.models import HRNetReID, ReIDEmbedder
from lib.workflow import experiment_config

#: L_TOTAL of the paper's phase 2 (Eq. (12)).
PHASE2_LOSSES = {"ce": 1.15, "triplet": 0.2, "sr": 0.5, "ps": 0.5}


@pytest.fixture
def csv_ds(fake_csv, tmp_path):
    return MLRDataset.load(build_mlr(fake_csv, tmp_path / "mlr", MLRConfig("csv", lr_cameras=(0,)), progress=False))


def test_linear_warmup_and_milestones():
    cfg = OptimConfig(epochs=30, lr=7e-4, warmup_epochs=5, warmup_lr=7e-5, warmup_mode="linear", schedule="multistep",
                      milestones=(20,))
    f = [lr_factor(e, cfg) for e in range(30)]
    assert f[0] == pytest.approx(0.1) and f[4] == pytest.approx(0.1 + 0.9 * 4 / 5) and f[5] == 1.0
    assert all(a < b for a, b in zip(f[:5], f[1:6]))  # rising during warm-up
    assert f[19] == 1.0 and f[20] == pytest.approx(0.1) and f[29] == pytest.approx(0.1)
    two = OptimConfig(epochs=120, schedule="multistep", milestones=(40, 70), gamma=0.2)
    assert lr_factor(39, two) == 1.0 and lr_factor(40, two) == pytest.approx(0.2) and lr_factor(70, two) == pytest.approx(0.04)
    for bad, needle in (({"optimizer": "lamb"}, "unknown optimizer 'lamb'; registered: adam, sgd"),
                        ({"schedule": "cosine"}, "unknown learning-rate schedule 'cosine'; registered: multistep, step"),
                        ({"warmup_mode": "cosine"}, "warmup_mode: expected 'constant' or 'linear', found 'cosine'"),
                        ({"schedule": "multistep", "milestones": (40, 20)}, r"milestones: expected increasing epochs ≥ 1"),
                        ({"schedule": "multistep"}, "schedule 'multistep' needs milestones"),
                        ({"module_lr": {"sr": 0.0}}, "module_lr: every rate must be > 0")):
        with pytest.raises(ValueError, match=needle):  # unknown names: UnknownNameError, a KeyError and ValueError
            OptimConfig(**bad)
    with pytest.raises(KeyError):
        OptimConfig(optimizer="lamb")
    # from a YAML mapping, a mistake names the key
    with pytest.raises(ConfigError, match=r"phase1: warmup_mode: expected"):
        load_config("configs/pshrnet/tiny.yaml", {"phase1.warmup_mode": "cosine"})


def test_optimizer_by_name_keeps_group_rates():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    groups = [{"name": "reid", "params": list(a.parameters()), "lr": 7e-4},
              {"name": "sr", "params": list(b.parameters()), "lr": 1e-4}]
    opt = make_optimizer(groups, OptimConfig(optimizer="adam", lr=7e-4))
    assert isinstance(opt, torch.optim.Adam) and [g["base_lr"] for g in opt.param_groups] == [7e-4, 1e-4]
    assert isinstance(make_optimizer([{"params": list(a.parameters()), "lr": 0.1}], OptimConfig()), torch.optim.SGD)
    # one group per trained module, at module_lr[name] or lr (paper: VDSR-CA at 8.5e-4, the re-ID net at 8.5e-3)
    cfg = OptimConfig(optimizer="adam", lr=8.5e-3, module_lr={"sr": 8.5e-4})
    groups = module_param_groups({"student": a, "sr": b}, cfg)
    assert [(g["name"], g["lr"]) for g in groups] == [("student", 8.5e-3), ("sr", 8.5e-4)]
    assert groups[1]["params"] == list(b.parameters())
    opt = make_optimizer(groups, cfg)
    assert isinstance(opt, torch.optim.Adam) and [g["base_lr"] for g in opt.param_groups] == [8.5e-3, 8.5e-4]
    # the authors' code trained VDSR-CA at the HRNet rate: leave sr out of module_lr
    assert [g["lr"] for g in module_param_groups({"student": a, "sr": b}, OptimConfig(lr=8.5e-3))] == [8.5e-3, 8.5e-3]
    with pytest.raises(ValueError, match=r"\['vdsr'\] are not trained"):
        module_param_groups({"student": a, "sr": b}, OptimConfig(module_lr={"vdsr": 1e-4}))
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)  # frozen parameters never reach the optimiser
    assert module_param_groups({"m": frozen}, OptimConfig())[0]["params"] == []


def test_random_erasing_same_box_in_every_image():
    aug = PairedAugment(flip_prob=0.0, pad=0, erase_prob=1.0)
    x, y = torch.rand(3, 32, 16), torch.rand(3, 32, 16)
    ex, ey = aug([x.clone(), y.clone()], np.random.default_rng(3))
    mx, my = (ex != x).any(0), (ey != y).any(0)
    assert mx.any() and torch.equal(mx, my)
    assert PairedAugment(erase_prob=0.0)([x.clone()], np.random.default_rng(3))[0].shape == x.shape
    with pytest.raises(ValueError, match="probabilities"):
        PairedAugment(erase_prob=1.5)


@pytest.mark.slow
def test_test_features(csv_ds, tmp_path):
    from lib.core.runs import run_stage
    from lib.core.tracking import ConfigReader
    from lib.methods import METHODS

    model = HRNetReID("mobilenet_v2", num_classes=3).eval()
    x = torch.rand(2, 3, 64, 32)
    dims = {f: ReIDEmbedder(model, feature=f)(x).shape[1] for f in ("concat", "feat", "seq5", "concat_norm")}
    assert dims["feat"] == 512 and dims["concat"] == dims["seq5"] + 512 == dims["concat_norm"]
    with pytest.raises(ValueError, match="feature"):
        ReIDEmbedder(model, feature="logits")
    with pytest.raises(ValueError, match="feature: expected one of"):
        pshrnet_config.TestConfig(feature="x")
    with pytest.raises(ConfigError, match=r"test: feature: expected one of .*'x'"):
        load_config("configs/pshrnet/tiny.yaml", {"test.feature": "x"})
    # an evaluation setting: a stage cannot even read it through its tracked configuration ...
    with pytest.raises(AttributeError, match="not part of a stage's identity"):
        ConfigReader(PSHRNetConfig(), hidden=("test", "runtime")).test
    # ... so it never changes what a phase trains: the same phase-1 run, re-evaluated with ℓ_f
    small = {"data.num_identities": 2, "data.num_instances": 2, "runtime.device": "cpu", "runtime.precision": "fp32",
             "runtime.max_steps_per_epoch": 1, "phase1.epochs": 1, "test.num_repeats": 1}
    pshrnet = METHODS.get("pshrnet")
    runs = {}
    for feature in ("concat", "feat"):
        cfg = load_config("configs/pshrnet/tiny.yaml", {**small, "test.feature": feature})
        runs[feature] = run_stage(pshrnet.stages["phase1"], method="pshrnet", cfg=cfg, ds=csv_ds, split=0, root=tmp_path,
                                  progress=False)
    a, b = runs["concat"], runs["feat"]
    assert a.identity == b.identity and a.run_dir == b.run_dir and len(a.history) == 1 and b.history == []
    assert a.run_dir.name.startswith("phase1-") and not any("feature" in k for k in a.identity["config"])
    assert json.loads((a.run_dir / "metrics.json").read_text())["eval"]["feature"] == "feat"


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
    assert 0 < int(mask.sum()) < 8
    out = model(batch["lr"])
    loss = LossComposer(PHASE2_LOSSES, PSHRNetLossConfig())
    with torch.no_grad():
        t_out = model(batch["hr"][mask])
    total, parts = loss(PSHRNetLossInputs(out, batch["label"], restored=batch["lr"], hr=batch["hr"][mask],
                                          teacher_out=t_out, hr_mask=mask))
    sub = type(out)(*[[t[mask] for t in f] if isinstance(f, list) else f[mask] for f in out])
    _, ref = loss(PSHRNetLossInputs(sub, batch["label"][mask], restored=batch["lr"][mask], hr=batch["hr"][mask],
                                    teacher_out=t_out))
    assert float(parts["sr"]) == pytest.approx(float(ref["sr"])) and float(parts["ps"]) == pytest.approx(float(ref["ps"]))
    _, id_all = LossComposer({"ce": 1.15, "triplet": 0.2}, PSHRNetLossConfig())(PSHRNetLossInputs(out, batch["label"]))
    assert float(parts["ce"]) == pytest.approx(float(id_all["ce"])) and float(parts["bh"]) == pytest.approx(float(id_all["bh"]))
    assert float(parts["ce"]) != pytest.approx(float(ref["ce"]))  # the identity terms did use the native LR samples
    expected = 1.15 * id_all["ce"] + 0.2 * id_all["bh"] + 0.5 * ref["sr"] + 0.5 * ref["ps"]
    assert float(total.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_phase2_step_masks_natively_lr_samples(csv_ds):
    import copy

    from lib.engine import resolve_precision
    from lib.methods.pshrnet.steps import PseudoSiameseStep
    from lib.models import VDSRCA

    train = [replace(im, res="lr", lr_path=None) if im.camid == 0 else im for im in csv_ds.split(0).train]
    pairs = PairDataset(train, (64, 32))
    student = HRNetReID("mobilenet_v2", num_classes=pairs.num_classes)
    teacher = copy.deepcopy(student).eval()
    prec = resolve_precision(torch.device("cpu"), "fp32", False)
    step = PseudoSiameseStep(teacher, VDSRCA(depth=3, width=8), student, LossComposer(PHASE2_LOSSES, PSHRNetLossConfig()), prec)
    seen = []
    teacher.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    items = [pairs[i] for i in range(len(pairs))]
    mixed = torch.utils.data.default_collate([it for it in items if it["has_hr"]][:4] + [it for it in items if not it["has_hr"]][:4])
    total, parts, n = step(mixed)
    assert n == 8 and seen == [4] and {"sr", "ps", "ce", "bh", "total"} <= set(parts) and torch.isfinite(total)
    native_only = torch.utils.data.default_collate([it for it in items if not it["has_hr"]][:4])
    total, parts, n = step(native_only)
    assert seen == [4] and "sr" not in parts and "ps" not in parts and parts["ce"] > 0  # no teacher call, L_ID only
    assert torch.isfinite(total) and total.requires_grad
    # without L_PS (Table II's ID and SR+ID rows) the teacher is never run
    no_ps = PseudoSiameseStep(teacher, VDSRCA(depth=3, width=8), student,
                              LossComposer({**PHASE2_LOSSES, "ps": 0.0}, PSHRNetLossConfig()), prec, needs_teacher=False)
    _, parts, _ = no_ps(mixed)
    assert seen == [4] and "ps" not in parts and "sr" in parts


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
    """The CPU recipe lives in configs/pshrnet/cpu.yaml (``_base_: paper.yaml``, a YAML anchor shared by the
    stages); the cpu profile's notebooks use it, and dotted OVERRIDES change it."""
    cfg = load_config("configs/pshrnet/cpu.yaml")
    assert cfg.phase1.optimizer == cfg.phase2.optimizer == cfg.baseline.optimizer == "adam"
    assert cfg.phase1.warmup_epochs == 5 and cfg.phase2.warmup_epochs == 0 and cfg.baseline.warmup_epochs == 5
    assert cfg.phase1.warmup_mode == "linear" and cfg.phase1.schedule == "multistep" and cfg.phase1.milestones == (20,)
    assert cfg.data.random_erasing == 0.5 and cfg.data.native_lr and cfg.test.feature == "feat"
    assert cfg.phase1.lr == 7e-4 and cfg.phase2.lr == 3.5e-4 and cfg.phase2.module_lr == {"sr": 1e-3}
    # G's phase-2 recipe (issue #20): identity start, no decay on G, L_SR weighted 30; the rest of L_TOTAL inherited
    assert cfg.sr.init == "identity" and cfg.phase2.module_weight_decay == {"sr": 0.0}
    assert cfg.phase2.losses["sr"] == 30.0 and cfg.phase2.losses["ps"] == 0.5 and cfg.phase1.module_weight_decay == {}
    assert cfg.phase2.init == "teacher" and cfg.phase1.init == "weights"
    assert cfg.baseline.epochs == cfg.phase1.epochs + cfg.phase2.epochs == 38 and cfg.baseline.lr == 7e-4
    assert cfg.model.backbone == "mobilenet_v2" and cfg.loss == load_config("configs/pshrnet/paper.yaml").loss  # inherited
    params = {"CONFIG": "configs/pshrnet/cpu.yaml", "SEED": 3,
              "OVERRIDES": {"data.native_lr": False, "phase2.warmup_epochs": 3, "phase1.milestones": [10, 25]}}
    over = experiment_config(params)
    assert over.seed == 3 and not over.data.native_lr and over.phase2.warmup_epochs == 3
    assert over.phase1.milestones == (10, 25) and over.phase2.milestones == (20,)  # only the key named changes
    assert replace(over, seed=0, data=cfg.data, phase1=cfg.phase1, phase2=cfg.phase2) == cfg
    # a variant's overrides go on top of the notebook's
    assert experiment_config(params, {"phase2.warmup_epochs": 1}).phase2.warmup_epochs == 1
    with pytest.raises(ConfigError, match=r"unknown key 'phase2\.warmup'"):
        experiment_config({"CONFIG": "configs/pshrnet/cpu.yaml", "OVERRIDES": {"phase2.warmup": 3}})
    with pytest.raises(ConfigError, match=r"cpu\.yaml .*phase1: unknown optimizer 'lamb'; registered: adam, sgd"):
        experiment_config({"CONFIG": "configs/pshrnet/cpu.yaml", "OVERRIDES": {"phase1.optimizer": "lamb"}})


def test_rank1_per_split_figure():
    from lib.results.specs import RowSpec
    from lib.viz import rank1_per_split, rows_by_dataset

    agg = lambda v: {"rank1": {"mean": float(np.mean(v)), "std": 0.0, "values": v}}  # noqa: E731
    fig = rank1_per_split({"viper": {"splits": [0, 1, 2], "outputs": {"pshrnet": {"aggregate": agg([0.2, 0.3, 0.25])},
                                                                        "baseline": {"aggregate": agg([0.1, 0.2, 0.15])}}}})
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and all(len(c.get_offsets()) == 3 for c in ax.collections)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pshrnet", "baseline"]
    # several variants' summaries as the rows of one figure (an ablation notebook)
    summaries = {(v, "viper"): {"splits": [0, 1], "outputs": {"pshrnet": {"aggregate": agg(r)}}}
                 for v, r in (("id", [0.1, 0.2]), ("sr_id", [0.3, 0.4]))}
    rows = [RowSpec("ID", "id", "pshrnet"), RowSpec("SR+ID", "sr_id", "pshrnet"), RowSpec("none", "other", "pshrnet")]
    by_ds = rows_by_dataset(summaries, rows)
    assert list(by_ds) == ["viper"] and list(by_ds["viper"]["outputs"]) == ["ID", "SR+ID"]
    fig = rank1_per_split(by_ds)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ID", "SR+ID"]


@pytest.mark.slow
def test_stages_train_and_evaluate_on_validation_identities(csv_ds, tmp_path):
    """What scripts/tune.py does: a stage on a ValidationView trains on the remaining training identities and is
    evaluated on the held-out ones; its runs never mix with the test runs (another dataset fingerprint)."""
    from lib.core.runs import run_stage
    from lib.methods import METHODS

    view = ValidationView(csv_ds, 2, seed=0)
    cfg = load_config("configs/pshrnet/tiny.yaml", {
        "data.num_identities": 2, "data.num_instances": 2, "runtime.device": "cpu", "runtime.precision": "fp32",
        "runtime.max_steps_per_epoch": 1, "phase1.epochs": 1, "test.num_repeats": 1})
    stage = METHODS.get("pshrnet").stages["phase1"]
    val = run_stage(stage, method="pshrnet", cfg=cfg, ds=view, split=0, root=tmp_path, progress=False)
    full = run_stage(stage, method="pshrnet", cfg=cfg, ds=csv_ds, split=0, root=tmp_path, progress=False)
    assert val.identity["manifest_sha256"] == view.fingerprint != full.identity["manifest_sha256"]
    assert val.run_dir != full.run_dir and val.identity["config"] == full.identity["config"]
    assert val.identity["num_classes"] == full.identity["num_classes"] - 2  # the held-out identities are not trained
    split = view.split(0)
    assert val.metrics["lr"]["num_query"] == len(split.query) and val.metrics["lr"]["num_gallery"] == len(split.gallery)
    assert full.metrics["lr"]["num_query"] == len(csv_ds.split(0).query)
    rec = json.loads((val.run_dir / "metrics.json").read_text())
    assert rec["data"]["validation"]["num_ids"] == 2


@pytest.mark.slow
def test_tune_script_on_validation_ids(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("tune", Path(__file__).resolve().parents[1] / "scripts" / "tune.py")
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    args = ["--profile", "tiny", "--dataset", "synthetic", "--val-ids", "4", "--quiet", "--stages", "phase1"]
    assert tune.main([*args, "--output-root", str(tmp_path), "--name", "t1", "--set", "phase1.epochs=1",
                      "runtime.max_steps_per_epoch=1"]) == 0
    rows = (tmp_path / "tiny" / "tuning" / "synthetic" / "t1.csv").read_text().splitlines()
    assert rows[0].startswith("name,stage,split,val_ids") and rows[1].startswith("t1,phase1,0,4,")
    with pytest.raises(SystemExit, match="dotted configuration key"):
        tune.main([*args, "--name", "t2", "--set", "PHASE1_EPOCHS=1"])
