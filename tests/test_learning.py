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
    why = not_learning(_hist([12.5] + [12.37] * 37), CHANCE)
    assert why is not None and "loss_cls" in why and "37" in why and "12.368" in why


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
    write_summary(out, profile="t", method="ftwa", variant="default", overrides={}, config_file="x", cfg=cfg, ds=ds,
                  splits=[0], per_split={"ftwa": [metrics["ftwa"]]}, runs={0: {}}, differences=[])
    _, md = build_table(load_table_spec("ftwa_table2"), out, "t")
    assert "⚠ not learning" in md and "Not learning" in md and "loss_cls" in md
