"""FTWA (ICIP): the two-stream backbone cut, RAFT (Eqs. (2)–(3)), the SWA losses (Eqs. (5), (7)) against hand-computed
values, the test-time matchings, the data the streams get, the configuration's errors and the methods table's cost
columns. (A killed FTWA run resuming bit-identically: tests/test_engine.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lib.core.config import ConfigError
from lib.losses import LossComposer, swa_classification_loss, swa_triplet_loss
from lib.methods import METHODS, load_config, run_variant
from lib.methods.ftwa.losses import FTWALossInputs, SWALossConfig
from lib.methods.ftwa.matching import MATCHES, match_distance
from lib.models import build_backbone
from lib.models.ftwa import FTWANet
from lib.models.raft import RAFT

TINY = "configs/ftwa/tiny.yaml"


# ------------------------------------------------------------------------------------------------ backbone cut
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_stem_then_body_is_the_backbone(name):
    """E_ID(E(x)) is the backbone's last level: the cut loses nothing (ResNet: conv1..layer1 | layer2..4)."""
    torch.manual_seed(0)
    net, channels = build_backbone(name, weights="none")
    net.eval()
    stem, body = net.split()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(body(stem(x)), net(x)[-1])
        assert stem(x).shape[2:] == (16, 8)  # the stem ends at stride 4, like ResNet's layer1
    assert body(stem(x)).shape[1] == channels[-1]


def test_mobilenet_last_stride_one_doubles_the_last_map():
    a, _ = build_backbone("mobilenet_v2", weights="none")
    b, _ = build_backbone("mobilenet_v2", weights="none", last_stride=1)
    x = torch.randn(1, 3, 128, 64)
    assert a(x)[-1].shape[2:] == (4, 2) and b(x)[-1].shape[2:] == (8, 4)
    with pytest.raises(ValueError, match="last_stride: expected 1 or 2, found 3"):
        build_backbone("mobilenet_v2", weights="none", last_stride=3)


# ------------------------------------------------------------------------------------------------ RAFT
@pytest.mark.parametrize("attention", ["contrast", "avg"])
def test_raft_maps_a_feature_map_to_one_of_the_same_shape_and_starts_as_identity(attention):
    torch.manual_seed(0)
    t = RAFT(64, width=16, blocks=2, attention=attention)
    f = torch.randn(3, 64, 8, 4)
    assert t(f).shape == f.shape
    assert torch.equal(t(f), f)  # the zero-initialised tail: T(F) = F before training
    opt = torch.optim.Adam(t.parameters(), lr=1e-2)
    target = f * 0.5
    losses = []
    for _ in range(5):
        loss = (t(f) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]  # L_RAFT (Eq. (2)) can be lowered
    with pytest.raises(ValueError, match="even"):
        RAFT(64, width=15)


# ------------------------------------------------------------------------------------------------ losses
def _t(*v):
    return torch.tensor(v, dtype=torch.float32)


def test_swa_classification_loss_eq5_by_hand():
    ce = {"hr": _t(1.0, 2.0), "lr_p": _t(3.0, 1.0), "lr": _t(0.5), "hr_p": _t(1.5)}
    w = {"hr": _t(0.5, 0.2), "lr_p": _t(0.5, 0.8), "lr": _t(0.25), "hr_p": _t(0.75)}
    # HR pairs: (0.5·1 + 0.5·3)/1 = 2.0 and (0.2·2 + 0.8·1)/1 = 1.2 → 1.6; LR pair: (0.25·0.5 + 0.75·1.5)/1 = 1.25
    assert float(swa_classification_loss(ce, w)) == pytest.approx(2.85)
    # equal weights: the mean of each CE pair, summed
    eq = {k: torch.full_like(v, 0.3) for k, v in w.items()}
    expected = (ce["hr"].mean() + ce["lr_p"].mean()) / 2 + (ce["lr"].mean() + ce["hr_p"].mean()) / 2
    assert float(swa_classification_loss(ce, eq)) == pytest.approx(float(expected)) == pytest.approx(2.75)
    # a batch without LR images has the HR part only
    no_lr = {k: (v if k in ("hr", "lr_p") else v[:0]) for k, v in ce.items()}
    assert float(swa_classification_loss(no_lr, {k: (v if k in ("hr", "lr_p") else v[:0]) for k, v in w.items()})) \
        == pytest.approx(1.6)


def test_swa_classification_weight_gradients():
    """As written, the evaluators get a gradient that moves weight towards the smaller loss; detaching the
    denominator keeps the numerator's gradient only."""
    ce = {"hr": _t(1.0), "lr_p": _t(3.0), "lr": _t(1.0)[:0], "hr_p": _t(1.0)[:0]}
    w_hr = torch.tensor([0.5], requires_grad=True)
    w = {"hr": w_hr, "lr_p": _t(0.5), "lr": _t(1.0)[:0], "hr_p": _t(1.0)[:0]}
    swa_classification_loss(ce, w).backward()
    assert float(w_hr.grad) == pytest.approx((1.0 * 1.0 - 3.0 * 0.5 - 0.5 * 1.0) / 1.0)  # d/dw (w·1 + 0.5·3)/(w + 0.5)
    w_hr.grad = None
    swa_classification_loss(ce, w, "detach_denominator").backward()
    assert float(w_hr.grad) == pytest.approx(1.0)


def test_contrast_attention_has_finite_gradients_on_a_constant_channel():
    from lib.models.raft import ChannelAttention2d

    att = ChannelAttention2d(8, kind="contrast")
    x = torch.ones(2, 8, 4, 2, requires_grad=True)  # every channel constant: variance 0
    att(x).sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in att.parameters())


def test_saturated_quality_evaluators_give_finite_losses_and_distances():
    """Weights that underflow (a sigmoid of a score below -100 is 0 even in float32) must not give 0 / 0: the losses
    and the swa distance work from log-weights (the real cpu run on VIPeR diverged with NaN at epoch 3 before)."""
    ce = {"hr": _t(1.0, 2.0), "lr_p": _t(3.0, 1.0), "lr": _t(0.5), "hr_p": _t(1.5)}
    lw = {k: torch.full_like(v, -300.0, requires_grad=True) for k, v in ce.items()}
    loss = swa_classification_loss(ce, lw, log_w=True)
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) == pytest.approx(2.75, rel=1e-5)  # equal weights: the plain means
    assert all(torch.isfinite(t.grad).all() for t in lw.values())
    v = {k: _t(0.0, 1.0)[:, None] for k in ("hr", "hr_p", "lr", "lr_p")}
    y = torch.tensor([0, 1])
    lw2 = {"hr": _t(-400.0, -400.0), "hr_p": _t(-1.0, -1.0), "lr": _t(-1.0, -1.0), "lr_p": _t(-1.0, -1.0)}
    assert torch.isfinite(swa_triplet_loss(v, lw2, y, y, log_w=True))
    n = torch.nn.functional.normalize
    q = {"lr": n(torch.ones(1, 3)), "hr_p": n(torch.ones(1, 3)), "lw_lr": _t(-500.0), "lw_hr_p": _t(-500.0)}
    g = {"hr": n(torch.ones(2, 3)), "lr_p": n(torch.ones(2, 3)), "lw_hr": _t(-500.0, -1.0), "lw_lr_p": _t(-500.0, -1.0)}
    assert np.isfinite(match_distance(q, g, "swa")).all()


def test_weight_floor_keeps_both_members_of_a_pair_weighted():
    ce = {"hr": _t(1.0), "lr_p": _t(3.0), "lr": _t(1.0)[:0], "hr_p": _t(1.0)[:0]}
    lw = {"hr": _t(-50.0), "lr_p": _t(0.0), "lr": _t(1.0)[:0], "hr_p": _t(1.0)[:0]}  # w_HR ≈ 2e-22: switched off
    assert float(swa_classification_loss(ce, lw, log_w=True)) == pytest.approx(3.0)
    assert float(swa_classification_loss(ce, lw, log_w=True, floor=0.1)) == pytest.approx(0.1 * 1.0 + 0.9 * 3.0)
    v = {k: _t(0.0, 1.0)[:, None] for k in ("hr", "hr_p", "lr", "lr_p")}
    y = torch.tensor([0, 1])
    eq = {k: torch.zeros(2) for k in v}
    assert float(swa_triplet_loss(v, eq, y, y, log_w=True, floor=0.2)) == pytest.approx(
        float(swa_triplet_loss(v, eq, y, y, log_w=True)))  # equal weights: the floor changes nothing
    from lib.core.tracking import ConfigReader

    for value, recorded in ((0.0, False), (0.1, True)):  # at 0 (the paper) the runs made before it keep their identity
        reader = ConfigReader(load_config(TINY, {"loss.weight_floor": value}))
        assert reader.loss.weight_floor == value and ("loss.weight_floor" in reader.reads) == recorded
    with pytest.raises(ValueError, match="weight_floor"):
        load_config(TINY, {"loss.weight_floor": 0.5})


def test_swa_triplet_loss_eq7_by_hand():
    y_hr, y_lr = torch.tensor([0, 1]), torch.tensor([0, 1])
    v = {"hr": _t(0.0, 1.0)[:, None], "hr_p": _t(0.8, 1.2)[:, None],  # HR space: batch-hard mean 0.35
         "lr_p": _t(0.0, 0.5)[:, None], "lr": _t(0.4, 0.1)[:, None]}  # LR space: 0.6 for every anchor
    w = {"hr": _t(0.5, 0.7), "hr_p": _t(0.5, 0.5), "lr": _t(0.2, 0.4), "lr_p": _t(1.0, 0.6)}
    # a = 0.6·0.5 = 0.3, b = 0.3·0.8 = 0.24: (0.3·0.35 + 0.24·0.6) / 0.54
    assert float(swa_triplet_loss(v, w, y_hr, y_lr, margin=0.3)) == pytest.approx(0.249 / 0.54, rel=1e-5)
    ones = {k: torch.ones_like(x) for k, x in w.items()}
    assert float(swa_triplet_loss(v, ones, y_hr, y_lr, margin=0.3)) == pytest.approx((0.35 + 0.6) / 2, rel=1e-5)


def test_eq8_composes_the_three_terms_with_the_papers_weights():
    torch.manual_seed(0)
    net = FTWANet(5, backbone="mobilenet_v2", weights="none", raft={"width": 8, "blocks": 1}, evaluator_hidden=8)
    out = net(torch.randn(3, 3, 64, 32), torch.randn(3, 3, 64, 32), torch.randn(2, 3, 64, 32))
    cfg = load_config(TINY)
    total, parts = LossComposer(cfg.train.losses, cfg.loss)(FTWALossInputs(out, torch.tensor([0, 1, 2, 0, 1])))
    assert cfg.train.losses == {"swa_cls": 3.0, "swa_tri": 1.0, "raft": 0.1}
    v = {k: float(t.detach()) for k, t in parts.items()}
    assert float(total.detach()) == pytest.approx(3 * v["cls"] + v["tri"] + 0.1 * v["raft"], rel=1e-5)
    assert 0 < v["w_hr"] < 1 and v["raft"] > 0
    total.backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if n.startswith(("e_h", "e_l", "raft", "w_")))


def test_network_variants():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 32)
    base = FTWANet(4, backbone="mobilenet_v2", weights="none", two_stream=False, raft=None, swa=False,
                   shared_classifier=True)
    assert base.e_l is base.e_h and base.c_lr is base.c_hr
    out = base.eval()(x, x, x[:0])
    assert out.v["lr"].shape == (0, 1280) and torch.equal(out.w["hr"], torch.ones(2))
    assert torch.allclose(out.v["hr"], out.v["lr_p"])  # one stem: the same image gives the same vector
    two = FTWANet(4, backbone="mobilenet_v2", weights="none", raft=None, swa=False).eval()
    o = two(x, x, x)
    assert torch.equal(o.v["hr_p"], o.v["lr"])  # no RAFT: T is the identity
    assert two.e_l is not two.e_h
    with pytest.raises(ValueError, match="cannot be cut|has no such cut"):
        FTWANet(4, backbone="hrnet_w18_small", weights="none")


# ------------------------------------------------------------------------------------------------ matching
def test_matchings_by_hand():
    n = torch.nn.functional.normalize
    q = {"lr": n(_t(1, 0, 0, 1, 0, 0).view(2, 3)), "hr_p": n(_t(0, 1, 0, 0, 0, 1).view(2, 3)),
         "lw_lr": _t(0.5, 0.2).log(), "lw_hr_p": _t(0.5, 0.8).log()}
    g = {"hr": n(_t(0, 1, 0, 1, 0, 0, 0, 0, 1).view(3, 3)), "lr_p": n(_t(1, 0, 0, 0, 1, 0, 1, 0, 0).view(3, 3)),
         "lw_hr": _t(1.0, 0.5, 0.25).log(), "lw_lr_p": _t(0.5, 1.0, 0.5).log()}
    d_hr, d_lr = 1 - (q["hr_p"] @ g["hr"].T).numpy(), 1 - (q["lr"] @ g["lr_p"].T).numpy()
    assert np.allclose(match_distance(q, g, "hr"), d_hr) and np.allclose(match_distance(q, g, "lr"), d_lr)
    assert np.allclose(match_distance(q, g, "mean"), (d_hr + d_lr) / 2)
    assert np.allclose(match_distance(q, g, "direct"), 1 - (q["lr"] @ g["hr"].T).numpy())
    # query 0 vs gallery 1: a = 0.5·0.5, b = 0.5·1.0; d_HR = 1 (orthogonal), d_LR = 1 → 1; query 1 vs gallery 2:
    a, b = 0.8 * 0.25, 0.2 * 0.5
    swa = match_distance(q, g, "swa")
    assert swa[1, 2] == pytest.approx((a * d_hr[1, 2] + b * d_lr[1, 2]) / (a + b))
    ones = {k: (torch.zeros_like(v) if k.startswith("lw") else v) for k, v in q.items()}
    g1 = {k: (torch.zeros_like(v) if k.startswith("lw") else v) for k, v in g.items()}
    assert np.allclose(match_distance(ones, g1, "swa"), match_distance(q, g, "mean"))
    with pytest.raises(ValueError, match="match: expected one of"):
        match_distance(q, g, "best")
    # a test-time floor of 0.2 (as training's loss.weight_floor): p = 0.2 + 0.6·a / (a + b)
    p = 0.2 + 0.6 * a / (a + b)
    assert match_distance(q, g, "swa", 0.2)[1, 2] == pytest.approx(p * d_hr[1, 2] + (1 - p) * d_lr[1, 2])
    assert np.allclose(match_distance(q, g, "hr", 0.2), d_hr)  # the floor only concerns swa
    with pytest.raises(ValueError, match="weight_floor: expected"):
        match_distance(q, g, "swa", 0.5)


def test_stream_embedder_returns_float32_log_weights_under_bf16_autocast():
    from lib.methods.ftwa.matching import StreamEmbedder
    from lib.models.ftwa import FTWANet

    torch.manual_seed(0)
    net = FTWANet(4, backbone="mobilenet_v2", weights="none").eval()
    x = torch.rand(2, 3, 64, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = {s: StreamEmbedder(net, s)(x) for s in ("hr", "lr", "lr_plain")}
    with torch.inference_mode():
        ref = net.log_weight("lr", net.pool(net.lr_stream(x))).float()
    assert all(o.dtype == torch.float32 for o in out.values())
    c = (out["lr"].shape[1] - 2) // 2
    assert torch.equal(out["lr"][:, :c], out["lr_plain"][:, :c])  # the LR stream's v without T is the same
    assert torch.equal(out["lr_plain"][:, :c], out["lr_plain"][:, c:2 * c])  # v_T repeats v
    assert torch.allclose(out["lr_plain"][:, 2 * c], ref, atol=0.05)  # bf16 forward, float32 log-weight
    with pytest.raises(ValueError, match="stream: expected"):
        StreamEmbedder(net, "both")


# ------------------------------------------------------------------------------------------------ data, config, run
def test_stored_pairs_feed_the_lr_stream_the_stored_lr_images(tiny):
    from lib.data.datasets import PairDataset
    from lib.data.mlr_build import load_rgb
    from lib.data.transforms import normalize, resize, to_tensor

    _, ds = tiny
    train = ds.split(0).train
    pairs = PairDataset(train, (64, 32), pair_mode="stored", augment=None, seed=0)
    for i, im in enumerate(train):
        item = pairs[i]
        assert item["lr_input"] == (im.res == "lr")
        if im.res == "lr":  # as stored (its MLR rate), not down-sampled again
            assert item["r"] == im.r
            assert torch.equal(item["lr"], normalize(to_tensor(resize(load_rgb(im.path), (64, 32), "bilinear"))))
        else:
            assert item["r"] in (2, 3, 4)
    assert not any(PairDataset(train, (64, 32), pair_mode="fresh", augment=None)[i]["lr_input"] for i in range(4))


def test_config_errors_are_clear(tiny):
    with pytest.raises(ConfigError, match="cannot be cut"):
        load_config(TINY, {"model.backbone": "hrnet_w32"})
    with pytest.raises(ConfigError, match="match: expected one of"):
        load_config(TINY, {"test.match": "closest"})
    with pytest.raises(ConfigError, match="weight_grad"):
        load_config(TINY, {"loss.weight_grad": "some"})
    _, ds = tiny
    cfg = load_config(TINY, {"raft.enabled": False, "runtime.device": "cpu"})
    with pytest.raises(ValueError, match="train.losses.raft is not 0 but raft.enabled is false"):
        run_variant(METHODS.get("ftwa"), cfg, ds=ds, split=0, root="/nonexistent/never-written", progress=False)
    assert isinstance(SWALossConfig(), SWALossConfig) and SWALossConfig().margin == 0.3


@pytest.mark.slow
def test_ftwa_trains_and_records_every_matching(tiny, tmp_path):
    _, ds = tiny
    cfg = load_config(TINY, {"train.epochs": 1, "data.num_identities": 3, "data.num_instances": 2, "raft.width": 8,
                             "swa.hidden": 8, "runtime.device": "cpu", "test.num_repeats": 2})
    metrics, runs = run_variant(METHODS.get("ftwa"), cfg, ds=ds, split=0, root=tmp_path, progress=False)
    m = metrics["ftwa"]
    assert m["match"] == "swa" and m["rank1"] == m["match_swa_rank1"]
    assert {f"match_{k}_rank1" for k in MATCHES} <= set(m)
    hist = runs["train"].history
    assert {"loss_cls", "loss_tri", "loss_raft", "loss_w_hr"} <= set(hist[0])
    # a changed test.match re-evaluates the finished run (no retraining) and reports that matching
    cfg2 = load_config(TINY, {"train.epochs": 1, "data.num_identities": 3, "data.num_instances": 2, "raft.width": 8,
                              "swa.hidden": 8, "runtime.device": "cpu", "test.num_repeats": 2, "test.match": "hr"})
    m2, runs2 = run_variant(METHODS.get("ftwa"), cfg2, ds=ds, split=0, root=tmp_path, progress=False)
    assert runs2["train"].run_dir == runs["train"].run_dir and runs2["train"].history == []
    assert m2["ftwa"]["rank1"] == m["match_hr_rank1"]


# ------------------------------------------------------------------------------------------------ methods table
def test_query_cost_counts_only_the_parameters_a_query_uses(tiny):
    from lib.engine import resolve_precision
    from lib.results.methods_table import query_cost

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.idle = nn.Conv2d(3, 4, 1), nn.Linear(100, 100)

        def forward(self, x):
            return self.used(x).mean(dim=(2, 3))

    _, ds = tiny
    c = query_cost(Two(), ds.split(0).query, size=(16, 8), interpolation="bilinear",
                   precision=resolve_precision(torch.device("cpu"), "fp32"), batch_size=5)
    assert c["batch"] == 5 and c["query_params"] == 3 * 4 + 4 and c["ms_per_query"] > 0


def test_methods_table_shows_mean_and_std_over_several_splits():
    """Over several splits a cell is 'mean ± std' (with one split the std is not shown, so the tiny profile never
    reaches this path)."""
    import pandas as pd

    from lib.results.methods_table import MethodRow, MethodsSpec, _markdown

    spec = MethodsSpec(title="t", rows=(MethodRow(label="A", method="ftwa", output="ftwa"),))
    frame = pd.DataFrame([{"row": "A", "method": "ftwa", "config": "c", "dataset": "viper", "metric": m, "value": v,
                           "std": s, "num_splits": 3, "paper": 40.0 if m == "rank1" else None,
                           "delta": v - 40.0 if m == "rank1" else None}
                          for m, v, s in (("rank1", 26.7, 2.9), ("rank5", 56.9, 0.7))])
    costs = {"A": {"params": 2e6, "query_params": 1e6, "ms_per_query": 3.25, "device": "cpu", "measured_on": "viper split 0",
                   "batch": 64}}
    md = _markdown(spec, frame, costs, {"ftwa": "c"}, {"PROFILE": "t"})
    assert "| A | 2.00 | 1.00 | 3.25 | 26.7 ± 2.9 | 56.9 ± 0.7 | 40.0 | -13.3 |" in md


def test_methods_table_needs_a_configuration_per_method(tmp_path):
    from lib.workflow import _config_for, _own_method

    assert _config_for("ftwa", {"CONFIG": "configs/pshrnet/cpu.yaml"}) == "configs/ftwa/cpu.yaml"
    assert _own_method({"CONFIG": "configs/ftwa/tiny.yaml"}) == "ftwa"  # its OVERRIDES are FTWA keys only
    with pytest.raises(FileNotFoundError, match="method 'ftwa' has no configs/ftwa/mine.yaml"):
        _config_for("ftwa", {"CONFIG": str(tmp_path / "mine.yaml")})


def test_each_method_accepts_only_its_own_loss_terms_and_ftwa_needs_lr_versions():
    with pytest.raises(ConfigError, match="'ce' is not one of FTWA's terms"):
        load_config(TINY, {"train.losses": {"ce": 1.0}})
    with pytest.raises(ConfigError, match="'swa_cls' is not one of PS-HRNet's terms"):
        load_config("configs/pshrnet/tiny.yaml", {"phase2.losses.swa_cls": 1.0})
    with pytest.raises(ConfigError, match="data.pair_mode: FTWA needs an LR version"):
        load_config(TINY, {"data.pair_mode": "mlr"})
    with pytest.raises(ConfigError, match="rates: expected a non-empty list"):
        load_config(TINY, {"data.rates": []})


def test_methods_table_gives_each_method_its_effect_against_the_reference_row():
    import pandas as pd

    from lib.metrics.intervals import Interval
    from lib.results.methods_table import MethodRow, MethodsSpec, _markdown

    rows = (MethodRow(label="A", method="ftwa", output="ftwa"), MethodRow(label="B", method="pshrnet", output="baseline"))
    spec = MethodsSpec(title="t", rows=rows, reference="B")
    frame = pd.DataFrame([{"row": r, "method": "m", "config": "c", "dataset": "viper", "metric": "rank1", "value": v,
                           "std": 1.0, "num_splits": 3, "paper": None, "delta": None} for r, v in (("A", 30.0), ("B", 25.0))])
    costs = {r: {"params": 1e6, "query_params": 1e6, "ms_per_query": 1.0, "device": "cpu", "measured_on": "viper split 0",
                 "batch": 8} for r in ("A", "B")}
    effects = {("A", "viper"): Interval(0.05, 0.01, 0.09, 3, 300, 100, method="t over 3 splits")}
    md = _markdown(spec, frame, costs, {"ftwa": "c"}, {"PROFILE": "t"}, effects=effects)
    assert "Rank-1 change against **B**" in md and "| A | **+5.0 [+1.0, +9.0] *** |" in md
    md = _markdown(spec, frame, costs, {"ftwa": "c"}, {"PROFILE": "t"}, effects={("A", "viper"): "no per-query records"})
    assert "| A | no interval (no per-query records) |" in md
    with pytest.raises(ValueError, match="reference 'C' is not a row label"):
        MethodsSpec(title="t", rows=rows, reference="C")
