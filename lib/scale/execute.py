"""Training a plan's runs in parallel (issue #21 §2): a pool of worker processes, dependencies first.

    python -m lib.workbook reproduce --profile paper --data-root /data --tables all --workers 4   # make reproduce … WORKERS=4

:func:`execute` takes a :class:`lib.scale.plan.Plan` and trains every run that is not finished (:func:`train_one`): a
run starts once the runs it depends on have finished (a teacher before its students). Each slot keeps one worker
process (``python -m lib.scale.execute --serve``) that trains its runs one after another, so a run does not pay the
interpreter's start and the imports (4–8 s) again; a worker that dies fails only its run, and the slot's next run
gets a new worker. ``python -m lib.scale.execute <recipe>`` trains one run in a process of its own (what a SLURM job
runs). Each worker slot gets its own device: slot ``i`` of ``workers × runs_per_gpu`` sees
GPU ``i // runs_per_gpu`` (``CUDA_VISIBLE_DEVICES``; ``runs_per_gpu`` > 1 packs several small runs on one GPU). On a
machine without a GPU the workers share the CPUs: each gets ``usable CPUs // slots`` threads. The run-folder lock
(:func:`lib.core.runs.run_lock`) makes the pool safe beside another reproduction on the same output folder: a run
is trained once, whoever gets it first. A failed run is reported with its log (``<output>/<profile>/plan/logs/``);
the runs that need it are not started, the others go on. The tables' notebooks then run as before and reuse every
finished run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["execute", "train_one", "ExecutionReport", "submit"]


@dataclass
class ExecutionReport:
    """What :func:`execute` did: run ids trained, failed (→ reason), skipped (a dependency failed); wall seconds."""

    trained: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


#: The keys of a run's recipe (a plan row's ``recipe``), what :func:`train_one` reads.
RECIPE_KEYS = ("params", "overrides", "stage", "dataset", "split", "variant")


def train_one(recipe: dict) -> str:
    """Train (or reuse) one planned run from its recipe; returns its run folder. The stages it depends on are reused
    (they finished first), or trained here when they were not (never twice: the run lock)."""
    from ..data import MLRDataset
    from ..methods import METHODS, method_of, run_variant
    from ..workflow import experiment_config, locate_dataset, output_dir

    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():  # a SLURM job: its allocation, not the node's CPUs
        import torch

        from ..engine.trainer import usable_cpus

        torch.set_num_threads(usable_cpus())
    params = dict(recipe["params"])
    cfg = experiment_config(params, recipe["overrides"])
    method = method_of(cfg)
    stage = recipe["stage"]
    output = next(o for o, (s, _) in method.outputs.items() if s == stage)
    ds = MLRDataset.load(locate_dataset({**params, "DATASET": recipe["dataset"]}, progress=False))
    _, runs = run_variant(method, cfg, ds=ds, split=int(recipe["split"]), root=output_dir(params) / "runs",
                          variant=recipe["variant"], outputs=[output], progress=False)
    return str(runs[stage].run_dir)


def _slot_env(slot: int, slots: int, runs_per_gpu: int, gpus: int) -> dict[str, str]:
    from ..engine.trainer import usable_cpus

    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    if env.get("LIB_METHODS"):  # a method package found from the caller's folder is found by the workers too
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*env["PYTHONPATH"].split(os.pathsep), os.getcwd()]))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot // runs_per_gpu % gpus)
        env.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // slots)))
    else:
        env["OMP_NUM_THREADS"] = str(max(1, usable_cpus() // slots))
    return env


class _Worker:
    """One long-lived ``python -m lib.scale.execute --serve`` process of a slot: it trains the runs sent to it one after
    another, so each run does not pay the interpreter's start and torch's import again (seconds a run). A worker that
    dies (``kill -9``, out of memory) fails its run; the slot starts a new one for the next."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.rfd, wfd = os.pipe()
        self.log = open(log, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "lib.scale.execute", "--serve", str(wfd)], env=env,
                                     stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT, text=True,
                                     pass_fds=(wfd,), cwd=str(Path(__file__).resolve().parents[2]))
        os.close(wfd)
        self.results = os.fdopen(self.rfd, "r")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, recipe: dict, log: Path) -> None:
        self.proc.stdin.write(json.dumps({"recipe": recipe, "log": str(log)}) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # end of input: the worker exits after its run
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - a stuck worker must not keep the pool alive
            self.proc.kill()
        self.results.close()
        self.log.close()


def _results(workers: dict[int, _Worker], timeout: float) -> dict[int, dict]:
    """The results that came from busy ``workers`` within ``timeout`` s; a worker that died without one: its error."""
    import select

    out: dict[int, dict] = {}
    if not workers:
        return out
    ready, _, _ = select.select([w.results for w in workers.values()], [], [], timeout)
    for slot, w in workers.items():
        if w.results in ready:
            line = w.results.readline()
            if line:
                out[slot] = json.loads(line)
                continue
        if not w.alive():
            out[slot] = {"ok": False, "error": f"the worker process ended with exit code {w.proc.returncode} "
                                               f"(its own log: {w.log.name})"}
    return out


def _serve(result_fd: int) -> int:
    """The worker side of :class:`_Worker`: one ``{"recipe", "log"}`` line per run on stdin; its output and progress
    lines go to the run's log, its result as one JSON line to ``result_fd``."""
    import traceback

    from ..utils.progress import ENV
    from ..workflow import free_device_memory

    results = os.fdopen(result_fd, "w")
    for line in sys.stdin:
        msg = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        fd = os.open(msg["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ[ENV] = msg["log"]  # the run's progress lines (one per epoch) into its log
        try:
            out = {"ok": True, "run_dir": train_one(msg["recipe"])}
            print(out["run_dir"], flush=True)
        except Exception as e:  # noqa: BLE001 - the run fails, the worker goes on with the next
            traceback.print_exc()
            out = {"ok": False, "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for f in (fd, *saved):
                os.close(f)
            os.environ.pop(ENV, None)
            try:
                free_device_memory()
            except Exception as e:  # noqa: BLE001 - e.g. a CUDA error that sticks: report the run, then stop
                out = {"ok": False, "error": f"after the run: {type(e).__name__}: {e}".splitlines()[0][:300]}
        results.write(json.dumps(out) + "\n")
        results.flush()
        if not out["ok"] and out["error"].startswith("after the run"):
            return 1  # this process's device is no longer usable; the slot starts a new worker
    return 0


def execute(plan, *, workers: int = 0, runs_per_gpu: int = 1, log_dir: str | Path | None = None,
            poll_s: float = 0.5) -> ExecutionReport:
    """Train ``plan``'s unfinished runs on ``workers`` devices (0: one per visible GPU, else 2 CPU workers) with
    ``runs_per_gpu`` runs on each; dependencies first. Prints one line per start and end."""
    import torch

    from ..workflow import output_dir

    if runs_per_gpu < 1:
        raise ValueError(f"RUNS_PER_GPU: expected ≥ 1, found {runs_per_gpu}")
    if workers < 0:
        raise ValueError(f"WORKERS: expected ≥ 0 (0 = one per visible GPU), found {workers}")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    workers = workers or gpus or 2
    slots = workers * (runs_per_gpu if gpus else 1)
    t0 = time.time()
    todo = [r for r in plan.runs if r.state != "finished"]
    ids = {r.run_id for r in todo}
    finished = {r.run_id for r in plan.runs if r.state == "finished"}
    logs = Path(log_dir) if log_dir else output_dir({"PROFILE": plan.profile, **(
        {"OUTPUT_ROOT": todo[0].recipe["params"]["OUTPUT_ROOT"]} if todo and "OUTPUT_ROOT" in todo[0].recipe["params"]
        else {})}) / "plan" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rep = ExecutionReport()
    slots_of: dict[int, _Worker] = {}
    busy: dict[int, tuple[object, float, Path]] = {}  # slot → (run, start time, log)
    pending = list(todo)
    print(f"[execute] {len(todo)} runs to train on {slots} worker slot(s)"
          + (f" ({workers} GPU(s) × {runs_per_gpu})" if gpus else " (CPU)"), flush=True)
    try:
        while pending or busy:
            for slot in range(slots):
                if slot in busy:
                    continue
                bad = [r for r in pending if any(d in rep.failed or d in rep.skipped for d in r.deps)]
                for r in bad:
                    pending.remove(r)
                    rep.skipped.append(r.run_id)
                    print(f"[execute] skipped {r.run_id}: a run it needs failed", flush=True)
                ready = next((r for r in pending if all(d in finished or d not in ids for d in r.deps)), None)
                if ready is None:
                    break
                pending.remove(ready)
                log = logs / (ready.run_id.replace("/", "__") + ".log")
                log.write_text("")
                w = slots_of.get(slot)
                for attempt in range(2):
                    if w is None or not w.alive():
                        if w is not None:
                            w.close()
                        w = slots_of[slot] = _Worker(_slot_env(slot, slots, runs_per_gpu, gpus),
                                                     logs / f"worker-{slot}.log")
                    try:
                        w.send(ready.recipe, log)
                        break
                    except OSError:  # it died between the check and the write: a new worker, once
                        w.proc.kill()
                        w.proc.wait()
                busy[slot] = (ready, time.time(), log)
                print(f"[execute] start {ready.run_id} (slot {slot})", flush=True)
            for slot, result in _results({s: slots_of[s] for s in busy}, poll_s).items():
                r, started, log = busy.pop(slot)
                if result.get("ok"):
                    finished.add(r.run_id)
                    rep.trained.append(r.run_id)
                    print(f"[execute] done {r.run_id} in {time.time() - started:.0f}s", flush=True)
                else:
                    rep.failed[r.run_id] = f"{result.get('error', 'the worker died')} (log: {log})"
                    print(f"[execute] FAILED {r.run_id}: {rep.failed[r.run_id]}", file=sys.stderr, flush=True)
            if not busy and pending and not any(all(d in finished or d not in ids for d in r.deps) for r in pending):
                for r in pending:  # nothing runs and nothing can start: a dependency outside the plan failed
                    rep.skipped.append(r.run_id)
                pending.clear()
    finally:
        for w in slots_of.values():
            w.close()
    rep.seconds = round(time.time() - t0, 1)
    return rep


def _order(runs: list) -> list:
    """``runs`` with every run after the runs (of the list) it depends on."""
    ids, out, seen = {r.run_id: r for r in runs}, [], set()

    def add(r) -> None:
        if r.run_id in seen:
            return
        seen.add(r.run_id)
        for d in r.deps:
            if d in ids:
                add(ids[d])
        out.append(r)
    for r in runs:
        add(r)
    return out


def submit(plan, *, folder: str | Path, cluster: str | None = None, partition: str | None = None,
           timeout_min: int = 24 * 60, gpus: int = 1, cpus: int = 8, mem_gb: int | None = None, wait: bool = False):
    """Submit ``plan``'s unfinished runs through `submitit <https://github.com/facebookincubator/submitit>`_: one job
    per run (:func:`train_one` on its recipe). On SLURM every job is submitted at once, each with
    ``--dependency=afterok:`` on the jobs of the runs it needs (a teacher before its students); ``partition``,
    ``timeout_min``, ``gpus`` (per job), ``cpus`` (per task) and ``mem_gb`` become the jobs' resources. With
    ``cluster="local"`` (submitit's local executor, for tests and a workstation) or ``"debug"`` the jobs are
    submitted in waves, each once the previous has finished. Returns ``{run_id: job}``; with ``wait`` (always for
    the local waves) it waits and raises on the first failed job, naming the run and its log folder.
    """
    import submitit

    todo = _order([r for r in plan.runs if r.state != "finished"])
    ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params: dict = {"timeout_min": timeout_min, "cpus_per_task": cpus, "name": f"reid-{plan.profile}"}
    if ex.cluster != "local" and ex.cluster != "debug":
        params["gpus_per_node"] = gpus
    if mem_gb:
        params["mem_gb"] = mem_gb
    if partition and ex.cluster == "slurm":
        params["slurm_partition"] = partition
    ex.update_parameters(**params)
    jobs: dict[str, object] = {}
    if ex.cluster == "slurm":
        for r in todo:
            after = [jobs[d].job_id for d in r.deps if d in jobs]
            ex.update_parameters(slurm_additional_parameters={"dependency": "afterok:" + ":".join(after)} if after else {})
            jobs[r.run_id] = ex.submit(train_one, r.recipe)
            print(f"[submit] {r.run_id}: job {jobs[r.run_id].job_id}" + (f" after {','.join(after)}" if after else ""),
                  flush=True)
        if wait:
            for rid, job in jobs.items():
                _result(rid, job, folder)
        return jobs
    done: set[str] = set()
    pending = list(todo)
    # the local jobs inherit this environment: `cpus` threads each (torch would take every core, oversubscribed)
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    try:
        while pending:  # waves: every run whose dependencies are done
            wave = [r for r in pending if all(d in done or d not in {p.run_id for p in pending} for d in r.deps)]
            batch = {r.run_id: ex.submit(train_one, r.recipe) for r in wave}
            for rid, job in batch.items():
                print(f"[submit] {rid}: job {job.job_id}", flush=True)
            for rid, job in batch.items():
                _result(rid, job, folder)
                done.add(rid)
            jobs |= batch
            pending = [r for r in pending if r.run_id not in done]
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before
    return jobs


def _result(run_id: str, job, folder) -> str:
    try:
        return job.result()
    except Exception as e:
        raise RuntimeError(f"{run_id}: job {job.job_id} failed ({type(e).__name__}: {str(e)[-300:]}); its log is "
                           f"under {folder}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = ("usage: python -m lib.scale.execute '<recipe JSON>'   (one planned run; the recipe is a plan row's\n"
             "       `recipe`, written by lib.scale.plan: keys " + ", ".join(RECIPE_KEYS) + ")\n"
             "       python -m lib.scale.execute --serve SLOT     (a pool worker; started by lib.scale.execute)")
    if argv and argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if len(argv) == 2 and argv[0] == "--serve" and argv[1].isdigit():
        return _serve(int(argv[1]))
    if len(argv) != 1:
        print(usage, file=sys.stderr)
        return 2
    try:
        recipe = json.loads(argv[0])
    except json.JSONDecodeError as e:
        print(f"error: the recipe: expected a JSON object, found {argv[0][:80]!r} ({e})\n{usage}", file=sys.stderr)
        return 2
    missing = [k for k in RECIPE_KEYS if not isinstance(recipe, dict) or k not in recipe]
    if missing:
        found = sorted(recipe) if isinstance(recipe, dict) else type(recipe).__name__
        print(f"error: the recipe: expected the keys {list(RECIPE_KEYS)}, missing {missing} (found {found})",
              file=sys.stderr)
        return 2
    print(train_one(recipe), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
