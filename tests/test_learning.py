"""A run that learns nothing says so (issue #20 §5): identity losses at chance level are flagged and marked."""

from __future__ import annotations

import math

import pytest

from lib.core.learning import PATIENCE, chance_ce, not_learning

CHANCE = {"loss_cls": chance_ce(485, groups=2)}  # FTWA on 485 identities: 2·ln 485 = 12.37


def _hist(values):
    return [{"epoch": i + 1, "loss_cls": v} for i, v in enumerate(values)]


def test_chance_levels():
    assert chance_ce(485, groups=2) == pytest.approx(12.368, abs=1e-3)
    assert chance_ce(6) == pytest.approx(math.log(6))


def test_a_loss_stuck_at_chance_is_not_learning_and_says_why():
    why = not_learning(_hist([9.0] + [12.37] * 37), CHANCE)
    assert why is not None and "loss_cls" in why and "last 37 of 38 epochs" in why and "12.368" in why


@pytest.mark.parametrize("values", [
    [12.4, 10.0, 8.0, 6.0, 4.0, 3.0, 2.0],  # learning
    [12.37] * 10 + [9.0],  # at chance for long, but the last epoch left it
    [12.37] * (PATIENCE - 1),  # too few epochs to judge
    [12.37] * 4 + [float("nan")] * 4,  # NaN: another failure, not this one
])
def test_runs_that_learn_or_cannot_be_judged_are_not_flagged(values):
    assert not_learning(_hist(values), CHANCE) is None


def test_a_missing_column_is_not_judged():
    assert not_learning([{"epoch": i, "loss_total": 1.0} for i in range(9)], CHANCE) is None


@pytest.mark.slow
def test_a_stuck_run_is_marked_in_its_metrics_and_its_table(tiny, tmp_path):
    """A real FTWA run that cannot learn (learning rate 1e-12) for PATIENCE epochs: its metrics say not_learning, the
    table's row is marked."""
    from lib.methods import METHODS, load_config, run_variant
    from lib.results import build_table, load_table_spec, write_summary

    _, ds = tiny
    frozen = {"runtime.max_steps_per_epoch": 1, "train.epochs": PATIENCE, "train.lr": 1e-12, "train.warmup_epochs": 0}
    cfg = load_config("configs/ftwa/tiny.yaml", frozen)
    metrics, runs = run_variant(METHODS.get("ftwa"), cfg, ds=ds, split=0, root=tmp_path / "runs", progress=False)
    why = metrics["ftwa"].get("not_learning")
    assert why and "loss_cls" in why
    out = tmp_path / "profile"
    write_summary(out, profile="t", method="ftwa", variant="as_written", overrides={}, config_file="x", cfg=cfg, ds=ds,
                  splits=[0], per_split={"ftwa": [metrics["ftwa"]]}, runs={0: {}}, differences=[])
    _, md = build_table(load_table_spec("ftwa_table2"), out, "t")
    assert "⚠ not learning" in md and "Not learning" in md and "loss_cls" in md


def test_above_chance_is_not_learning_either_and_levels_can_come_from_a_column():
    assert "did not fall below chance" in not_learning(_hist([20.0] * 9), CHANCE)  # worse than a uniform guess
    hist = [{"loss_cls": 6.1, "loss_cls_chance": 6.18} for _ in range(6)]  # FTWA batches with one image group
    assert "loss_cls" in not_learning(hist, {"loss_cls": "loss_cls_chance"})
    assert not_learning(hist, CHANCE) is None  # against 2·ln 485 it would be missed


def test_a_verdict_that_no_longer_holds_is_removed():
    from lib.core.runs import _judged

    flagged = _judged({"lr": {"rank1": 0.1}, "other": 3}, "stuck")
    assert flagged["lr"]["not_learning"] == "stuck" and flagged["other"] == 3
    assert "not_learning" not in _judged(flagged, None)["lr"]


def test_a_bold_row_is_marked_too(tmp_path, tiny):
    """Table I's own row (PS-HRNet, in bold) carries the mark like any other."""
    from lib.methods import load_config
    from lib.results import build_table, load_table_spec, write_summary

    _, ds = tiny
    cfg = load_config("configs/pshrnet/tiny.yaml")
    spec = load_table_spec("table1")
    ours = next(r for r in spec.rows if r.paper_row == "ours")
    res = {"rank1": 0.1, "rank5": 0.2, "rank10": 0.3, "mAP": 0.1, "cmc": [0.1, 0.15, 0.18, 0.2, 0.2, 0.25, 0.26, 0.28,
                                                                       0.29, 0.3], "not_learning": "loss_ce stayed …"}
    write_summary(tmp_path, profile="t", method="pshrnet", variant=ours.variant, overrides={}, config_file="x", cfg=cfg,
                  ds=ds, splits=[0], per_split={ours.output: [res]}, runs={0: {}}, differences=[])
    _, md = build_table(spec, tmp_path, "t")
    assert f"**{ours.label}** ⚠ not learning" in md, md
