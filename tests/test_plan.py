"""The plan of runs (issue #21 §1): the runs a table trains, by identity, with their state and cost — trains nothing."""

from __future__ import annotations

import json
import os

import pytest

from lib.scale.plan import TRAIN_IMAGES, _notebook_params, format_plan, make_plan, write_plan


@pytest.fixture
def profile(tiny, tmp_path):
    """An output root whose profile ``tiny`` sees the tiny fixture's MLR build of the synthetic set."""
    root, _ = tiny
    (tmp_path / "tiny").mkdir()
    os.symlink(root / "out" / "mlr", tmp_path / "tiny" / "mlr")
    return tmp_path


@pytest.mark.slow
def test_the_plan_names_the_runs_a_table_trains_and_sees_them_finish(profile):
    from lib.workflow import run_table

    plan = make_plan("tiny", ["1", "7"], "synthetic", device="cpu", output_root=str(profile))
    assert plan.datasets == {"synthetic": "built"} and all(r.exact and r.state == "missing" for r in plan.runs)
    stages = sorted(r.stage for r in plan.runs if any(u.startswith("table1:") for u in r.used_by))
    assert stages == ["baseline", "phase1", "phase2"]  # Table I: the teacher, PS-HRNet and the bicubic + ID baseline
    teacher = next(r for r in plan.runs if r.stage == "phase1")
    assert {u.split(":")[0] for u in teacher.used_by} == {"table1", "table7"}  # one teacher for both tables
    assert teacher in plan.shared and plan.totals()["shared_between_tables"] >= 1
    students = [r for r in plan.runs if r.stage == "phase2"]
    assert students and all(r.deps == [teacher.run_id] for r in students)
    assert all(r.samples > 0 and r.samples == r.samples_left for r in plan.runs)
    # train Table I as notebook 03 does; the plan's keys are the run folders it made
    params = _notebook_params("tiny", "03_phase2_pseudo_siamese", ["synthetic"], "") | {"OUTPUT_ROOT": str(profile)}
    exp, _, _ = run_table(params, "table1", extra_outputs=["teacher_lr", "teacher_hr"], progress=False)
    made = {f"pshrnet/synthetic/split0/{r.run_dir.name}" for runs in exp.runs.values() for r in runs.values()}
    again = make_plan("tiny", ["1", "7"], "synthetic", device="cpu", output_root=str(profile))
    finished = {r.run_id for r in again.runs if r.state == "finished"}
    assert finished == made and {r.run_id for r in plan.runs} >= made
    # a finished run's throughput is read from its history and prices the rest
    left = [r for r in again.runs if r.state != "finished"]
    assert left and all(r.throughput and r.throughput_source.startswith("measured here") for r in left
                        if r.stage == "phase2")
    assert again.totals()["samples_left"] == sum(r.samples for r in left)
    text = format_plan(again)
    assert f"{len(again.runs)} distinct runs" in text and "finished" in text


@pytest.mark.slow
def test_a_killed_run_is_partial_with_its_epochs(profile, tiny):
    from lib.methods import METHODS, load_config, run_variant

    _, ds = tiny
    plan = make_plan("tiny", ["1"], "synthetic", device="cpu", output_root=str(profile))
    teacher = next(r for r in plan.runs if r.stage == "phase1")
    cfg = load_config("configs/pshrnet/tiny.yaml", {"runtime.keep_checkpoint": True})
    _, runs = run_variant(METHODS.get("pshrnet"), cfg, ds=ds, split=0, root=profile / "tiny" / "runs",
                          outputs=["teacher_lr"], progress=False)
    run_dir = runs["phase1"].run_dir
    assert f"pshrnet/synthetic/split0/{run_dir.name}" == teacher.run_id
    (run_dir / "model.pt").unlink()  # as if killed after its last epoch's checkpoint
    (run_dir / "metrics.json").unlink()
    hist = json.loads((run_dir / "history.json").read_text())
    (run_dir / "history.json").write_text(json.dumps(hist[:2]))
    again = next(r for r in make_plan("tiny", ["1"], "synthetic", device="cpu", output_root=str(profile)).runs
                 if r.run_id == teacher.run_id)
    assert again.state == f"partial (2/{teacher.epochs} epochs)" and again.epochs_done == 2
    assert again.samples_left == again.samples * (teacher.epochs - 2) // teacher.epochs


@pytest.mark.slow
def test_a_plan_without_the_datasets_estimates_from_the_protocol(tmp_path):
    plan = make_plan("paper", ["1"], None, output_root=str(tmp_path), throughput=tmp_path / "no_bench.json")
    assert set(plan.datasets.values()) == {"absent"}
    assert plan.runs and all(not r.exact and r.key.startswith("~") and r.state == "missing (dataset absent)"
                             for r in plan.runs)
    viper = {r.stage: r for r in plan.runs if r.dataset == "viper" and r.split == 0}
    caviar = {r.stage: r for r in plan.runs if r.dataset == "caviar" and r.split == 0}
    assert len({r.split for r in plan.runs if r.dataset == "viper"}) == 10  # the paper profile's 10 splits
    # the same configuration, priced by each dataset's training images
    ratio = viper["phase1"].samples / caviar["phase1"].samples
    assert ratio == pytest.approx(TRAIN_IMAGES["viper"] / TRAIN_IMAGES["caviar"], rel=0.15)
    assert viper["phase2"].throughput == 111.0 and viper["phase2"].device_hours_left > 0  # the H200 measurement
    assert viper["phase2"].deps == [viper["phase1"].run_id]
    tot = plan.totals()
    assert tot["runs"] == len(plan.runs) and tot["device_hours_left"] > 0
    csv_path, json_path = write_plan(plan, tmp_path / "plan")
    rec = json.loads(json_path.read_text())
    assert rec["totals"]["runs"] == len(plan.runs) and len(csv_path.read_text().splitlines()) == len(plan.runs) + 1


def test_plan_cli_errors_are_clear(capsys):
    from lib.workbook import main

    assert main(["plan", "--profile", "tiny", "--tables", "9"]) == 2
    assert "unknown table(s) ['9']" in capsys.readouterr().err
    assert main(["plan", "--profile", "nosuch", "--tables", "1"]) == 2
    assert "profile 'nosuch'" in capsys.readouterr().err


def test_execute_cli_help_and_bad_recipes_are_clear(capsys):
    from lib.scale.execute import RECIPE_KEYS, main

    assert main(["--help"]) == 0 and "recipe JSON" in capsys.readouterr().out
    assert main([]) == 2 and "usage:" in capsys.readouterr().err
    assert main(["{bad"]) == 2
    err = capsys.readouterr().err
    assert "error: the recipe: expected a JSON object, found '{bad'" in err
    assert main([json.dumps({"params": {}, "split": 0})]) == 2
    err = capsys.readouterr().err
    assert "missing ['overrides', 'stage', 'dataset', 'variant']" in err and "found ['params', 'split']" in err
    assert main(["[1]"]) == 2 and f"missing {list(RECIPE_KEYS)} (found list)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_pool_of_two_workers_trains_each_run_once_to_the_serial_numbers(profile, tiny, tmp_path_factory):
    """Issue #21 §2: the plan's runs trained by ``lib.scale.execute`` in 2 CPU workers, dependencies first: every run once,
    the same metrics as training them one after another in one process (one thread each: equal numerics)."""
    import shutil

    import torch

    from lib.scale.execute import execute
    from lib.workflow import run_table

    plan = make_plan("tiny", ["1"], "synthetic", device="cpu", output_root=str(profile))
    rep = execute(plan, workers=2, poll_s=0.1)
    assert not rep.failed and not rep.skipped and sorted(rep.trained) == sorted(r.run_id for r in plan.runs)
    teacher = next(r.run_id for r in plan.runs if r.stage == "phase1")
    assert rep.trained.index(teacher) < rep.trained.index(next(r.run_id for r in plan.runs if r.stage == "phase2"))
    again = make_plan("tiny", ["1"], "synthetic", device="cpu", output_root=str(profile))
    assert all(r.state == "finished" for r in again.runs)
    runs = profile / "tiny" / "runs"
    for r in plan.runs:  # trained once: one folder per run, one history entry per epoch
        hist = json.loads((runs / r.run_id.replace("/split", "/stages/split") / "history.json").read_text())
        assert len(hist) == r.epochs
        log = (profile / "tiny" / "plan" / "logs" / (r.run_id.replace("/", "__") + ".log")).read_text()
        assert f"training {r.run_id.rsplit('/', 1)[1]}" in log and f"epoch {r.epochs}/{r.epochs}" in log  # progress
    serial = tmp_path_factory.mktemp("serial")
    (serial / "tiny").mkdir()
    os.symlink(tiny[0] / "out" / "mlr", serial / "tiny" / "mlr")
    params = _notebook_params("tiny", "03_phase2_pseudo_siamese", ["synthetic"], "") | {"OUTPUT_ROOT": str(serial)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_table(params, "table1", extra_outputs=["teacher_lr", "teacher_hr"], progress=False)
    finally:
        torch.set_num_threads(threads)
    for r in plan.runs:
        rel = r.run_id.replace("/split", "/stages/split") + "/metrics.json"
        pooled = json.loads((runs / rel).read_text())["metrics"]
        alone = json.loads((serial / "tiny" / "runs" / rel).read_text())["metrics"]
        assert pooled == alone, r.run_id
    shutil.rmtree(serial)


@pytest.mark.slow
def test_submitit_local_executor_trains_the_plan_dependencies_first(profile, tmp_path):
    """Issue #21 §2: the same plan through submitit (its local executor here; SLURM with afterok dependencies)."""
    from lib.scale.execute import _order, submit

    plan = make_plan("tiny", ["1"], "synthetic", device="cpu", output_root=str(profile))
    order = [r.run_id for r in _order(plan.runs)]
    teacher = next(r.run_id for r in plan.runs if r.stage == "phase1")
    student = next(r.run_id for r in plan.runs if r.stage == "phase2")
    assert order.index(teacher) < order.index(student)
    jobs = submit(plan, folder=tmp_path / "submitit", cluster="local", timeout_min=10, cpus=1)
    assert sorted(jobs) == sorted(r.run_id for r in plan.runs)
    assert all(j.result().endswith(rid.rsplit("/", 1)[-1]) for rid, j in jobs.items())
    assert all(r.state == "finished" for r in make_plan("tiny", ["1"], "synthetic", device="cpu",
                                                          output_root=str(profile)).runs)



@pytest.mark.slow
def test_make_bench_measures_every_stage_and_the_plan_estimates_with_it(tmp_path):
    """Issue #21 §1: the bench trains each distinct (method, stage, backbone) of a plan a few steps and writes the
    throughput table; the plan prices every run so measured from it."""
    from lib.scale.bench import bench_plan, load_throughput, record_throughput

    table = tmp_path / "throughput.json"
    plan = make_plan("tiny", ["1", "ftwa2"], None, device="cpu", output_root=str(tmp_path), throughput=table)
    assert all(r.throughput is None for r in plan.runs)  # nothing measured yet on cpu
    lines: list[str] = []
    entries = bench_plan(plan, device="cpu", steps=2, data_root=tmp_path / "bench", report=lines.append)
    kinds = {(r.method, r.stage, r.backbone) for r in plan.runs if r.samples}
    assert {(e["method"], e["stage"], e["backbone"]) for e in entries} == kinds and len(lines) == len(kinds)
    assert {"ftwa", "pshrnet"} == {m for m, _, _ in kinds}
    assert all(e["device"] == "cpu" and e["samples_per_s"] > 0 and e["steps"] == 2 for e in entries)
    record_throughput(entries, table)
    again = make_plan("tiny", ["1", "ftwa2"], None, device="cpu", output_root=str(tmp_path), throughput=table)
    rate = {(e["method"], e["stage"], e["backbone"]): e["samples_per_s"] for e in entries}
    for r in again.runs:
        assert r.throughput == rate[(r.method, r.stage, r.backbone)] and r.throughput_source.startswith("make bench")
        assert r.device_hours_left == pytest.approx(r.samples_left / r.throughput / 3600, abs=1e-3)
    assert again.totals()["runs_without_estimate"] == 0
    assert all(r.throughput is None for r in make_plan("tiny", ["1"], None, device="cuda", output_root=str(tmp_path),
                                                       throughput=table).runs)  # a CPU rate never prices a GPU
    # a new measurement replaces its own key only
    one = dict(entries[0], samples_per_s=1.5)
    record_throughput([one], table)
    read = load_throughput(table)
    assert len(read) == len(entries) and read[(one["method"], one["stage"], one["backbone"], "cpu")][0] == 1.5


def test_a_malformed_throughput_table_names_the_file_and_the_entry(tmp_path):
    from lib.scale.bench import load_throughput

    p = tmp_path / "throughput.json"
    p.write_text('{"entries": [{"method": "pshrnet", "stage": "phase2", "backbone": "x", "device": "cpu", '
                 '"samples_per_s": 0}]}')
    with pytest.raises(ValueError, match=r"throughput.json: entry 0: expected method, stage, backbone, device, "
                                         r"samples_per_s \(samples_per_s > 0\)"):
        load_throughput(p)
    p.write_text("[1, 2]")
    with pytest.raises(ValueError, match="throughput.json: expected an object with a list 'entries', found list"):
        load_throughput(p)
    p.write_text("{")
    with pytest.raises(ValueError, match="throughput.json: not a JSON throughput table"):
        make_plan("tiny", ["1"], None, output_root=str(tmp_path), throughput=p)


@pytest.mark.slow
def test_a_pool_worker_survives_a_failed_run_and_a_dead_one_fails_only_its_run(tmp_path):
    """The slot's long-lived worker (``python -m lib.scale.execute --serve``): a run that raises is reported with its error
    and the worker serves the next; a worker killed mid-run fails that run with its exit code."""
    import signal

    from lib.scale.execute import _results, _slot_env, _Worker

    w = _Worker(_slot_env(0, 1, 1, 0), tmp_path / "worker.log")
    try:
        bad = {"params": {"PROFILE": "tiny", "CONFIG": "configs/pshrnet/no_such.yaml"}, "overrides": {},
               "variant": "default", "dataset": "synthetic", "split": 0, "stage": "phase1"}
        for k in range(2):
            log = tmp_path / f"run{k}.log"
            w.send(bad, log)
            got = {}
            for _ in range(120):
                got = _results({0: w}, 0.5)
                if got:
                    break
            assert got[0]["ok"] is False and "no_such.yaml" in got[0]["error"], got
            assert "Traceback" in log.read_text() and w.alive()  # the traceback in the run's log; the worker lives
        w.proc.send_signal(signal.SIGKILL)  # as if during a run
        w.proc.wait()
        got = _results({0: w}, 0.5)[0]
        assert got["ok"] is False and got["error"].startswith("the worker process ended with exit code -9")
        assert "worker.log" in got["error"]  # where its traceback would be
    finally:
        w.close()


@pytest.mark.slow
def test_make_bench_compares_both_data_paths(tmp_path, capsys):
    """Issue #22 §3: for one stage, each data path's data-only, model-step and end-to-end pairs/s and its share of
    time waiting for data, per batch size, in one run."""
    from lib.scale.bench_pipeline import bench_pipelines, format_rows

    plan = make_plan("tiny", ["1"], None, device="cpu", output_root=str(tmp_path), throughput=tmp_path / "t.json")
    run = next(r for r in plan.runs if r.stage == "phase2")
    rows = bench_pipelines(run, device="cpu", steps=1, batches=[(2, 2), (3, 2)], data_root=tmp_path / "bench",
                           report=lambda s: None)
    assert [(r["pipeline"], r["pairs"]) for r in rows] == [("pil", 4), ("tensor", 4), ("pil", 6), ("tensor", 6)]
    for r in rows:
        assert r["data_pairs_per_s"] > 0 and r["model_pairs_per_s"] > 0 and r["e2e_pairs_per_s"] > 0
        assert 0.0 <= r["data_frac"] <= 1.0 and (r["render_frac"] > 0) == (r["pipeline"] == "tensor")
    text = format_rows(rows)
    assert "data-only" in text and "model-step" in text and "end-to-end" in text and text.count("tensor") == 2


def test_bench_names_a_stage_it_cannot_compare(monkeypatch, capsys):
    from lib.scale import bench

    monkeypatch.setattr(bench, "bench_plan", lambda plan, **kw: [])
    monkeypatch.setattr(bench, "record_throughput", lambda entries, out=None: "x.json")
    with pytest.raises(SystemExit, match="--pipelines 'pshrnet/nostage': no run of the plan trains that stage; "
                                         "expected one of .*pshrnet/phase2"):
        bench.main(["--profile", "tiny", "--tables", "1", "--pipelines", "pshrnet/nostage"])


def test_the_plans_builds_skip_random_init_in_their_own_thread_only():
    """`make plan` builds stages without drawing their random weights; a model built at the same time in another
    thread (or here afterwards) is initialised as always."""
    import threading

    import torch

    from lib.scale.plan import _random_init_skipped

    torch.manual_seed(0)
    seen = {}
    with _random_init_skipped():
        t = torch.full((64,), 7.0)
        torch.nn.init.normal_(t)
        seen["inside"] = bool((t == 7.0).all())
        other = torch.full((64,), 7.0)
        th = threading.Thread(target=lambda: torch.nn.init.normal_(other))
        th.start()
        th.join()
    seen["other thread"] = bool((other == 7.0).all())
    after = torch.full((64,), 7.0)
    torch.nn.init.kaiming_uniform_(after.view(8, 8))
    assert seen == {"inside": True, "other thread": False} and not bool((after == 7.0).all())


def test_the_plans_summary_says_which_runs_have_no_estimate_and_counts_one_run_as_one():
    from lib.scale.plan import Plan, PlannedRun

    def run(k: int, state: str, hours: float | None, table: str) -> PlannedRun:
        return PlannedRun(f"m/d/split0/s-{k}", "m", "s", "d", 0, str(k), True, state, 1, 0, 10, 10, "b",
                          used_by=[f"{table}:default"], device_hours_left=hours)

    plan = Plan("p", ["a", "b"], "cuda", [run(0, "to train", 1.5, "a"), run(1, "to train", None, "a"),
                                          run(2, "finished", None, "a"), run(3, "to train", None, "b")], {})
    lines = format_plan(plan).splitlines()
    assert "  a: 3 runs, 2 to train, 1.5 h (+ 1 without an estimate)" in lines
    assert "  b: 1 run, 1 to train, 0.0 h (+ 1 without an estimate)" in lines
    assert "2 runs have no throughput to estimate from" in format_plan(plan)
