"""Intervals on effects (issue #20 §4): per-query records, the paired two-stage bootstrap, on constructed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lib.engine.evaluate import PER_QUERY, score_distances, split_per_query
from lib.metrics.intervals import Interval, paired_interval, split_differences


def _rec(index, pid, rank1, ap=None):
    return {"index": list(index), "pid": list(pid), "rank1": list(rank1), "ap": list(ap if ap is not None else rank1)}


@pytest.mark.parametrize("protocol", ["multi_shot", "single_shot"])
def test_per_query_records_average_to_the_scores(protocol):
    rng = np.random.default_rng(3)
    d = rng.random((24, 40))
    qp, gp = np.arange(24) % 12, np.arange(40) % 12
    qc, gc = np.zeros(24, int), np.ones(40, int)
    r = score_distances(d, qp, gp, qc, gc, protocol=protocol, num_repeats=5)
    metrics, per = split_per_query({"out": r, "other": 3})
    assert PER_QUERY not in metrics["out"] and metrics["other"] == 3 and set(per) == {"out"}
    pq = per["out"]
    assert pq["index"] == list(range(24)) and pq["pid"] == [int(x) for x in qp]
    assert math.isclose(np.mean(pq["rank1"]), r["rank1"], abs_tol=1e-6)  # every query valid in every draw
    assert math.isclose(np.mean(pq["ap"]), r["mAP"], abs_tol=1e-6)
    if protocol == "multi_shot":
        assert set(pq["rank1"]) <= {0.0, 1.0}


def test_a_query_without_a_match_is_left_out():
    d = np.array([[0.1, 0.2], [0.3, 0.4]])
    r = score_distances(d, np.array([0, 5]), np.array([0, 1]), np.array([0, 0]), np.array([1, 1]),
                        protocol="multi_shot")
    assert r[PER_QUERY]["index"] == [0] and r[PER_QUERY]["pid"] == [0] and r[PER_QUERY]["rank1"] == [1.0]


def test_a_constant_shift_has_a_zero_width_interval_at_the_shift():
    splits = []
    for k in range(3):
        ref = _rec(range(30), np.arange(30) // 2, np.zeros(30))
        var = _rec(range(30), np.arange(30) // 2, np.full(30, 0.25))
        splits.append(split_differences(var, ref))
    iv = paired_interval(splits, B=200, seed=1)
    assert iv.effect == pytest.approx(0.25) and iv.low == pytest.approx(0.25) and iv.high == pytest.approx(0.25)
    assert iv.excludes_zero and iv.num_splits == 3 and iv.num_queries == 90
    assert iv.text() == "+25.0 [+25.0, +25.0] *"


def test_no_effect_is_an_interval_at_zero_that_does_not_exclude_it():
    rng = np.random.default_rng(0)
    hits = rng.integers(0, 2, 50).astype(float)
    same = _rec(range(50), range(50), hits)
    iv = paired_interval([split_differences(same, same)] * 2, B=100)
    assert (iv.effect, iv.low, iv.high) == (0.0, 0.0, 0.0) and not iv.excludes_zero
    assert iv.text() == "+0.0 [+0.0, +0.0]"


def test_one_split_matches_the_normal_approximation():
    """One split of n independent identities with differences ±1: the mean's sd is sqrt(1 - m²)/sqrt(n)."""
    rng = np.random.default_rng(7)
    n = 400
    diff = rng.choice([-1.0, 1.0], size=n, p=[0.4, 0.6])
    iv = paired_interval([(diff, np.arange(n))], B=4000, seed=2)
    m = diff.mean()
    half = 1.96 * math.sqrt(1 - m * m) / math.sqrt(n)
    assert iv.effect == pytest.approx(m)
    assert iv.low == pytest.approx(m - half, abs=0.012) and iv.high == pytest.approx(m + half, abs=0.012)
    assert iv.excludes_zero  # m ≈ 0.2 with half-width ≈ 0.1


def test_identities_are_resampled_together():
    """Two identical queries per identity carry the information of one: the interval is wider than for i.i.d. queries."""
    rng = np.random.default_rng(5)
    per_id = rng.choice([-1.0, 1.0], size=200)
    diff = np.repeat(per_id, 2)
    clustered = paired_interval([(diff, np.repeat(np.arange(200), 2))], B=3000, seed=0)
    iid = paired_interval([(diff, np.arange(400))], B=3000, seed=0)
    assert (clustered.high - clustered.low) > 1.25 * (iid.high - iid.low)


def test_several_splits_give_student_t_over_the_split_effects():
    """Splits with effects −0.2 and +0.4 and no noise within: mean 0.1 ± t(1)·s/√2; pooled identities only: [0.1, 0.1]."""
    a = (np.full(100, -0.2), np.arange(100))
    b = (np.full(100, 0.4), np.arange(100))
    both = paired_interval([a, b], B=500, seed=0)
    half = 12.7062047 * np.std([-0.2, 0.4], ddof=1) / math.sqrt(2)
    assert both.effect == pytest.approx(0.1) and both.low == pytest.approx(0.1 - half, rel=1e-6)
    assert both.high == pytest.approx(0.1 + half, rel=1e-6) and both.method == "t over 2 splits"
    pooled = paired_interval([a, b], B=500, seed=0, between_splits=False)
    assert pooled.low == pytest.approx(0.1) and pooled.high == pytest.approx(0.1)


def test_the_within_split_noise_floors_the_spread_of_few_splits():
    """Three splits whose effects agree by chance: the interval is at least as wide as their sampling noise says."""
    rng = np.random.default_rng(2)
    splits = []
    for _ in range(3):
        diff = rng.choice([-1.0, 1.0], size=200)
        diff += 0.0 - diff.mean()  # every split's effect exactly 0: s = 0
        splits.append((diff, np.arange(200)))
    iv = paired_interval(splits, B=2000, seed=0)
    half = 4.30265 * math.sqrt(1.0 / 200 / 3)  # t(2) · sqrt(mean within-split variance / k), variance ≈ 1/n
    assert iv.effect == pytest.approx(0.0, abs=1e-12)
    assert iv.high == pytest.approx(half, rel=0.08) and iv.low == pytest.approx(-half, rel=0.08)


def test_three_splits_keep_the_level_when_training_noise_dominates():
    """Coverage of the true effect 0 with 3 splits whose effects vary by N(0, 0.05²) on top of query noise."""
    rng = np.random.default_rng(11)
    covered = 0
    trials = 300
    for t in range(trials):
        splits = []
        for _ in range(3):
            shift = rng.normal(0.0, 0.05)
            splits.append((rng.normal(shift, 0.3, size=60), np.arange(60)))
        iv = paired_interval(splits, B=200, seed=t)
        covered += iv.low <= 0.0 <= iv.high
    assert covered / trials >= 0.92


def test_seeded_and_deterministic():
    rng = np.random.default_rng(1)
    s = [(rng.normal(size=60), np.arange(60) // 3) for _ in range(3)]
    assert paired_interval(s, B=300, seed=4) == paired_interval(s, B=300, seed=4)
    assert paired_interval(s, B=300, seed=4) != paired_interval(s, B=300, seed=5)


def test_pairs_by_query_index_and_checks_the_identities():
    ref = _rec([0, 1, 2, 3], [10, 11, 12, 13], [1, 0, 1, 0])
    var = _rec([3, 1, 0], [13, 11, 10], [1, 1, 1])  # query 2 scored only in the reference: left out
    diff, pid = split_differences(var, ref)
    assert sorted(zip(pid.tolist(), diff.tolist())) == [(10, 0.0), (11, 1.0), (13, 1.0)]
    with pytest.raises(ValueError, match="query 1 has identity"):
        split_differences(_rec([0, 1], [10, 99], [1, 1]), ref)
    with pytest.raises(ValueError, match="share no scored query"):
        split_differences(_rec([7], [17], [1]), ref)
    with pytest.raises(ValueError, match="missing ap"):
        split_differences({"index": [0], "pid": [10], "rank1": [1]}, ref, metric="ap")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="at least one split"):
        paired_interval([])
    with pytest.raises(ValueError, match="B: expected"):
        paired_interval([(np.zeros(3), np.arange(3))], B=0)
    with pytest.raises(ValueError, match="split 0: expected one difference"):
        paired_interval([(np.zeros(3), np.arange(2))])


def test_text_marks_intervals_that_exclude_zero():
    assert Interval(0.008, -0.019, 0.035, 3, 300, 1000).text() == "+0.8 [−1.9, +3.5]"
    assert Interval(-0.05, -0.08, -0.01, 3, 300, 1000).text() == "−5.0 [−8.0, −1.0] *"


@pytest.mark.slow
def test_a_run_without_per_query_records_is_re_evaluated_not_retrained(tmp_path):
    import json

    from lib.results.effects import row_interval
    from lib.workflow import run_experiment

    params = {"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path), "DATASETS": ["synthetic"], "SPLITS": [0],
              "OVERRIDES": {"phase1.epochs": 1, "runtime.max_steps_per_epoch": 1, "runtime.device": "cpu",
                            "test.num_repeats": 1},
              "SYN_NUM_IDENTITIES": 12, "SYN_HEIGHT": 64, "SYN_WIDTH": 32}
    exp = run_experiment(params, {"default": {}}, {"default": ["teacher_lr"]}, progress=False)
    run = exp.runs[("default", "synthetic", 0)]["phase1"].run_dir
    pq, model = run / "per_query.json", run / "model.pt"
    first = json.loads(pq.read_text())
    stamp = model.stat().st_mtime_ns
    summary = dict(exp.summaries[("default", "synthetic")], _path="s.json")
    iv, why = row_interval(tmp_path / "t", summary, "teacher_lr", summary, "teacher_lr")
    assert why == "" and (iv.effect, iv.low, iv.high) == (0.0, 0.0, 0.0)
    pq.unlink()  # a run finished before per-query records were kept
    iv, why = row_interval(tmp_path / "t", summary, "teacher_lr", summary, "teacher_lr")
    assert iv is None and "per_query.json does not exist" in why and "run its table again" in why
    run_experiment(params, {"default": {}}, {"default": ["teacher_lr"]}, progress=False)
    assert json.loads(pq.read_text()) == first and model.stat().st_mtime_ns == stamp  # evaluated again only


def test_single_shot_per_query_rank1_is_the_hit_rate_over_the_draws_where_it_has_a_match():
    """A query whose only gallery match shares its camera in some draws: its value counts the valid draws only."""
    from lib.metrics.single_shot import evaluate_single_shot

    d = np.array([[0.1, 0.2, 0.3, 0.9], [0.5, 0.1, 0.2, 0.3]])
    qp, gp = np.array([0, 1]), np.array([0, 0, 1, 1])
    qc, gc = np.array([0, 0]), np.array([0, 1, 1, 1])  # query 0: gallery image 0 is same-camera junk
    r = evaluate_single_shot(d, qp, gp, qc, gc, num_repeats=20, seed=0)
    assert list(r["query_index"]) == [0, 1]
    assert r["query_rank1"][0] == 1.0  # whenever its valid image was drawn, it ranked first (image 0 is junk)
    assert 0.0 <= r["query_rank1"][1] <= 1.0


def _summary(tmp, name, output, per_query, sha="abc", splits=(0,)):
    import json

    per = []
    for k in splits:
        run = tmp / "runs" / f"{name}{k}"
        run.mkdir(parents=True, exist_ok=True)
        (run / "per_query.json").write_text(json.dumps({"outputs": {output: per_query[k]}, "eval": {"flip": True}}))
        rank1 = float(np.mean(per_query[k]["rank1"]))
        per.append({"rank1": rank1, "cmc": [rank1], "mAP": rank1,
                    "source": {"run": f"runs/{name}{k}", "output": output, "split": k, "eval": {"flip": True}}})
    return {"manifest_sha256": sha, "splits": list(splits), "outputs": {output: {"per_split": per}}, "_path": name}


def test_row_interval_never_crashes_a_table(tmp_path):
    from lib.results.effects import row_interval

    good = {0: _rec(range(4), [1, 2, 3, 4], [1, 1, 0, 0])}
    ref = _summary(tmp_path, "ref", "x", good)
    iv, why = row_interval(tmp_path, _summary(tmp_path, "a", "x", {0: _rec(range(4), [1, 2, 3, 4], [1, 1, 1, 1])}),
                           "x", ref, "x", B=50)
    assert why == "" and iv.effect == pytest.approx(0.5)
    bad_pid = _summary(tmp_path, "b", "x", {0: _rec(range(4), [1, 2, 3, 9], [1, 1, 1, 1])})
    iv, why = row_interval(tmp_path, bad_pid, "x", ref, "x")
    assert iv is None and "not evaluated on the same split" in why
    other = _summary(tmp_path, "c", "x", good, sha="def")
    iv, why = row_interval(tmp_path, other, "x", ref, "x")
    assert iv is None and "different builds of the dataset" in why
    old = {"manifest_sha256": "abc", "splits": [0], "outputs": {"x": {"per_split": [{"rank1": 0.5}]}}, "_path": "old"}
    iv, why = row_interval(tmp_path, old, "x", ref, "x")
    assert iv is None and "names no run" in why and "run its table again" in why
    outside = tmp_path.parent / f"{tmp_path.name}_elsewhere"
    outside.mkdir()
    (tmp_path / "runs" / "link").symlink_to(outside, target_is_directory=True)
    for run in ("../x", "/etc", "runs/link"):
        hostile = _summary(tmp_path, "d", "x", good)
        hostile["outputs"]["x"]["per_split"][0]["source"]["run"] = run
        iv, why = row_interval(tmp_path, hostile, "x", ref, "x")
        assert iv is None and "not a folder inside the profile's output folder" in why, run
    stale = _summary(tmp_path, "e", "x", good)
    stale["outputs"]["x"]["per_split"][0]["source"]["eval"] = {"flip": False}
    iv, why = row_interval(tmp_path, stale, "x", ref, "x")
    assert iv is None and "evaluated again with other test settings" in why


def test_a_table_with_a_reference_row_shows_each_effect_with_its_interval(tmp_path, monkeypatch):
    """Table I: PS-HRNet against the baseline, both outputs of one variant; a constant shift of 25 points."""
    import json

    from lib.results import build_table, load_table_spec, summary_path

    out = tmp_path / "p"
    q = lambda hits: {0: _rec(range(8), range(8), hits), 1: _rec(range(8), range(8), hits)}  # noqa: E731
    a = _summary(out, "ps", "pshrnet", q([0.5] * 8), splits=(0, 1))  # single-shot: hit rates over gallery draws
    b = _summary(out, "bl", "baseline", q([0.25] * 8), splits=(0, 1))
    rec = {"profile": "t", "method": "pshrnet", "variant": "default", "dataset": "viper", "manifest": "m",
           "manifest_sha256": "abc", "mlr_seed": 0, "seed": 0, "splits": [0, 1], "protocol": "single_shot",
           "differences": [], "outputs": {}}
    for o, s in (("pshrnet", a), ("baseline", b)):
        per = s["outputs"][o]["per_split"]
        vals = [p["rank1"] for p in per]
        agg = {"rank1": {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)), "values": vals}}
        rec["outputs"][o] = {"aggregate": agg, "per_split": per}
    path = summary_path(out, "pshrnet", "viper", "default")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    long, md = build_table(load_table_spec("table1"), out, "t", bootstrap=100)
    assert "| PS-HRNet (reproduced) | — | **+25.0 [+25.0, +25.0] *** |" in md, md
    eff = long[long.source == "effect"]
    assert list(eff.row) == ["PS-HRNet (reproduced)"] and eff.effect_low.iloc[0] == pytest.approx(25.0)
    assert eff.effect_method.iloc[0] == "t over 2 splits" and bool(eff.effect_excludes_zero.iloc[0])


def test_compare_prints_any_rows_effect_against_any_other(tmp_path, capsys):
    """`python -m lib.results.compare`: two finished summaries of one method and dataset, their effect with its
    interval; a missing row names the file and the variants there are."""
    import json

    from lib.results.compare import main

    def write(variant, rank1):
        rec = _summary(tmp_path, variant, "m", {k: _rec(range(4), [1, 2, 3, 4], r) for k, r in enumerate(rank1)},
                       splits=(0, 1))
        rec.pop("_path")
        rec.update(method="m", variant=variant, dataset="d")
        path = tmp_path / "results" / "m" / "d" / f"{variant}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))

    write("ref", [[1, 0, 0, 0], [1, 1, 0, 0]])
    write("step", [[1, 1, 0, 0], [1, 1, 1, 0]])
    assert main([str(tmp_path), "m", "d", "step", "ref", "-B", "50"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("m d rank1: step − ref = +25.0 [") and "t over 2 splits; 8 queries over 2 split(s)" in out
    assert main([str(tmp_path), "m", "d", "stpe", "ref"]) == 2
    err = capsys.readouterr().err
    assert "no summary " in err and "results/m/d/stpe.json" in err and "finished variants of m on d: ref, step" in err
    assert main([str(tmp_path), "m", "e", "step", "ref"]) == 2
    assert "finished variants of m on e: none; datasets with summaries of m: d" in capsys.readouterr().err
    assert main([str(tmp_path / "tinyy"), "m", "d", "step", "ref"]) == 2  # a misspelt profile folder
    assert "tinyy holds no results/ folder (expected a profile's output folder" in capsys.readouterr().err
    assert main([str(tmp_path), "mm", "d", "step", "ref"]) == 2  # a misspelt method
    assert "has no summaries of method 'mm' (methods with summaries: m)" in capsys.readouterr().err
    assert main([str(tmp_path), "m", "d", "step", "ref", "--output", "nope"]) == 2
    assert "results/m/d/step.json has no output 'nope' (its outputs: m;" in capsys.readouterr().err
    (tmp_path / "results" / "m" / "d" / "ref.json").write_text("{not json")
    assert main([str(tmp_path), "m", "d", "step", "ref"]) == 2
    assert "ref.json: not a readable summary" in capsys.readouterr().err
