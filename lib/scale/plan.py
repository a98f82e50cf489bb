"""The reproduction as a plan of runs (issue #21 §1): which distinct training runs a set of tables needs, which tables
share each, what each depends on, where each stands, and what the rest will cost. Trains nothing, needs no GPU.

    python -m lib.workbook plan --profile paper --tables all --data-root /data      # make plan TABLES=all PROFILE=paper

Each table is expanded exactly as its notebook runs it: the notebook's parameters from the profile, the table spec's
selected variants and outputs (:func:`lib.workflow.table_request`, :func:`lib.workflow.methods_requests`),
every dataset and split, and each output's stages in dependency order. Each stage is *built* without pretrained
weights and without training (:func:`lib.core.runs.build_stage`), which gives its identity — the same key, and so
the same run folder, as training it would — and its epoch length from its own sampler.

- **Datasets whose MLR build exists** (notebook 01 ran): exact identities; the state is read from the run folder:
  ``finished``, ``partial`` (epochs done of epochs, from its ``history.json``) or ``missing``.
- **Datasets not built, or absent under DATA_ROOT**: the stage is built on the embedded synthetic set as a stand-in
  (what a stage reads does not depend on the data), its key is provisional (``~`` prefix; shared runs are still
  found), and its epoch length is scaled to the dataset's training images (:data:`TRAIN_IMAGES`).

Cost: training samples = epochs × steps per epoch × batch (``runtime.max_steps_per_epoch`` applied). Device-hours =
samples / throughput, where throughput (samples/s) is, in order: the median ``samples_per_s`` of finished runs of
the same method, stage and backbone on the same kind of device in this output folder; then the throughput table
that ``make bench`` writes (:mod:`lib.scale.bench`, ``outputs/bench/throughput.json``); then :data:`DEFAULT_THROUGHPUT`
(measured on an H200: the README's Performance section); else unknown (the total says how many runs have no
estimate).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import json
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PlannedRun", "Plan", "make_plan", "TRAIN_IMAGES", "DEFAULT_THROUGHPUT", "write_plan", "format_plan"]

#: The notebook parameters a run's configuration and place depend on (a worker gets these, not the notebook).
RECIPE_PARAMS = ("PROFILE", "OUTPUT_ROOT", "CONFIG", "SEED", "OVERRIDES", "WEIGHTS", "DATA_ROOT")

#: Training images per split of each dataset's standard protocol (PROTOCOL.md §2 and the releases): Market-1501's
#: 751 training identities, DukeMTMC-reID's 702, CUHK03's 1,367 (≈; labelled + detected counts vary by release),
#: VIPeR's 316 identities × 2 cameras, CAVIAR's 25 training identities × 2 cameras × 10 images.
TRAIN_IMAGES: dict[str, int] = {"market1501": 12936, "dukemtmc": 16522, "cuhk03": 13100, "viper": 632, "caviar": 500}

#: ``(method, stage, backbone, device kind) -> training samples/s`` where no finished run here measured it: the
#: README's Performance section, one H200, the paper model (HRNet-W32 + VDSR-CA 20×64 at 256×128), bf16 +
#: channels_last, P×K 4×6 — phase 2 111.0 pairs/s end to end, phase 1 147 images/s. The baseline (one network on
#: up-sampled LR images) and Solo SR are taken at phase 1's rate, an assumption the plan states.
DEFAULT_THROUGHPUT: dict[tuple[str, str, str, str], tuple[float, str]] = {
    ("pshrnet", "phase2", "hrnet_w32", "cuda"): (111.0, "H200, measured"),
    ("pshrnet", "phase1", "hrnet_w32", "cuda"): (147.0, "H200, measured"),
    ("pshrnet", "baseline", "hrnet_w32", "cuda"): (147.0, "H200, assumed = phase 1"),
    ("pshrnet", "solo_sr", "hrnet_w32", "cuda"): (147.0, "H200, assumed = phase 1"),
}


@dataclass
class PlannedRun:
    """One distinct training run of the plan.

    ``run_id`` is ``<method>/<dataset>/split<k>/<stage>-<key>`` (its folder under ``runs/``); a provisional key
    (dataset not built) starts with ``~``. ``deps`` are run ids; ``used_by`` the ``table:variant`` rows that need it.
    """

    run_id: str
    method: str
    stage: str
    dataset: str
    split: int
    key: str
    exact: bool
    state: str
    epochs: int
    epochs_done: int
    samples: int
    samples_left: int
    backbone: str
    deps: list[str] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)
    throughput: float | None = None
    throughput_source: str = ""
    device_hours_left: float | None = None
    recipe: dict = field(default_factory=dict)  # what a worker needs to train it (lib.scale.execute.train_one)


@dataclass
class Plan:
    """The runs (dependencies first), the tables asked for, the datasets found / absent, and how long it took."""

    profile: str
    tables: list[str]
    device: str
    runs: list[PlannedRun]
    datasets: dict[str, str]  # name → "built" | "found, not built" | "absent"
    seconds: float = 0.0

    @property
    def shared(self) -> list[PlannedRun]:
        return [r for r in self.runs if len({u.split(":")[0] for u in r.used_by}) > 1]

    def totals(self) -> dict[str, Any]:
        left = [r for r in self.runs if r.state != "finished"]
        known = [r.device_hours_left for r in left if r.device_hours_left is not None]
        states: dict[str, int] = {}
        for r in self.runs:
            s = r.state.split(" ")[0]
            states[s] = states.get(s, 0) + 1
        return {"runs": len(self.runs), "shared_between_tables": len(self.shared), "states": states,
                "samples": sum(r.samples for r in self.runs), "samples_left": sum(r.samples_left for r in left),
                "device_hours_left": round(sum(known), 2), "runs_without_estimate": len(left) - len(known)}


def _notebook_params(profile: str, stem: str, datasets: list[str], data_root: str,
                     weights: Mapping[str, str] | None = None) -> dict[str, Any]:
    from ..utils.paths import repo_root
    from ..workbook import load_profile, notebook_parameters

    declared = notebook_parameters(repo_root() / "notebooks" / f"{stem}.ipynb")
    over = {"DATASETS": datasets} if "DATASETS" in declared else {}
    if "DATA_ROOT" in declared and data_root:
        over["DATA_ROOT"] = data_root
    if "WEIGHTS" in declared and weights:
        over["WEIGHTS"] = dict(weights)
    return {**declared, **load_profile(profile).get(stem, {}), **over}


def _requests(table: str, params: Mapping[str, Any]) -> list[tuple[dict, dict, dict, str]]:
    """``[(params, variants, outputs, label prefix)]`` that ``table``'s notebook runs."""
    from ..workflow import methods_requests
    from ..workbook import table_spec_name, workbook_tables
    from ..workflow import table_request

    if table == "robustness":  # sweeps finished runs; trains nothing
        return []
    if table == "methods":
        return [(p, v, o, "methods") for p, v, o in methods_requests(params).values()]
    # e.g. Table I's notebook 03: the teacher's results too, the baseline unless RUN_BASELINE is off
    extra, skip = workbook_tables()[table].outputs_for(params)
    req = table_request(params, table_spec_name(table), extra_outputs=extra, skip_outputs=skip)
    return [(dict(params), req.variants, req.outputs, table_spec_name(table))]


_SKIP_INIT: contextvars.ContextVar[bool] = contextvars.ContextVar("plan_skips_random_init", default=False)
_INIT_WRAPPED: list[bool] = [False]


def _wrap_initialisers() -> None:
    """Once per process: each of ``torch.nn.init``'s in-place initialisers (``uniform_``, ``kaiming_normal_`` …)
    becomes one that leaves its tensor as it is while :data:`_SKIP_INIT` is set in the calling context, and is the
    original otherwise (other threads, and this one outside :func:`_random_init_skipped`, are unaffected)."""
    import torch

    if _INIT_WRAPPED[0]:
        return
    for name in [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")]:
        original = getattr(torch.nn.init, name)

        def wrapper(tensor, *args, __original=original, **kwargs):
            return tensor if _SKIP_INIT.get() else __original(tensor, *args, **kwargs)

        wrapper.__wrapped__ = original
        wrapper.__doc__ = original.__doc__
        setattr(torch.nn.init, name, wrapper)
    _INIT_WRAPPED[0] = True


@contextlib.contextmanager
def _random_init_skipped():
    """Inside (this thread only): ``torch.nn.init``'s initialisers leave their tensor as it is. The plan builds each
    stage only for its identity and epoch length, which no parameter value enters (``tests/test_plan.py`` checks the
    plan's identities against the trained runs'); drawing the random weights of 42 HRNet / ResNet-50 stages was a
    third of ``make plan TABLES=all PROFILE=paper``'s time."""
    _wrap_initialisers()
    token = _SKIP_INIT.set(True)
    try:
        yield
    finally:
        _SKIP_INIT.reset(token)


def _standin(tmp: Path):
    """The embedded synthetic MLR set (80 identities: 40 to train, enough for the paper FTWA batch's P = 16), built
    once in ``tmp``: what a stage is built on when its dataset is not."""
    from ..data import MLRConfig, MLRDataset, build_mlr
    from ..data.synthetic import SyntheticConfig, generate_synthetic

    csv_path = generate_synthetic(tmp / "data", SyntheticConfig(num_identities=80, num_cameras=3, images_per_camera=2,
                                                                height=64, width=32, seed=0), progress=False)
    return MLRDataset.load(build_mlr(csv_path, tmp / "mlr", MLRConfig("synthetic", seed=0), progress=False))


def _measured_throughput(runs_root: Path) -> dict[tuple[str, str, str, str], list[float]]:
    """``(method, stage, backbone, device kind) -> [samples/s]`` of the finished runs under ``runs_root``."""
    found: list[tuple[dict, str, float, str]] = []
    backbone_of: dict[str, str] = {}  # run key → its backbone (a student copied from its teacher reads none itself)
    for metrics in runs_root.glob("*/*/stages/split*/*/metrics.json"):
        try:
            rec = json.loads(metrics.read_text())
            ident = rec["run"]
            key = metrics.parent.name.rsplit("-", 1)[-1]
            if "model.backbone" in ident.get("config", {}):
                backbone_of[key] = str(ident["config"]["model.backbone"])
            hist = json.loads((metrics.parent / "history.json").read_text())
            rates = [float(h["samples_per_s"]) for h in hist if h.get("samples_per_s")]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a finished run of this version, or one that trained nothing: no measurement
        if rates:
            found.append((ident, key, statistics.median(rates), str(rec.get("device", "cpu")).split(":")[0]))
    out: dict[tuple[str, str, str, str], list[float]] = {}
    for ident, key, rate, kind in found:
        backbone = backbone_of.get(key) or next((backbone_of[d] for d in ident.get("deps", {}).values()
                                                 if d in backbone_of), "")
        out.setdefault((ident["method"], ident["stage"], backbone, kind), []).append(rate)
    return out


def _state(run_dir: Path, identity: dict, epochs: int) -> tuple[str, int]:
    from ..core.runs import finished_record, saved_history

    if finished_record(run_dir, identity) is not None:
        return "finished", epochs
    done = len(saved_history(run_dir)) if (run_dir / "checkpoints" / "last.pt").is_file() else 0
    return (f"partial ({done}/{epochs} epochs)", done) if done else ("missing", 0)


def make_plan(profile: str, tables: Sequence[str], data_root: str | Path | None = None, *,
              device: str = "cuda", output_root: str | None = None, weights: Mapping[str, str] | None = None,
              throughput: str | Path | None = None, datasets: Sequence[str] = ()) -> Plan:
    """Expand ``tables`` (``1``…``7``, ``ftwa1``, ``ftwa2``, ``methods``, ``robustness``) of ``profile`` into its
    distinct runs. ``data_root``: where the datasets are (``None``: none); ``device``: the kind of device the
    estimate is for (``cuda`` | ``cpu``); ``weights``: the reproduction's weight source per backbone (``WEIGHTS``);
    ``throughput``: the bench's table (default :data:`lib.scale.bench.THROUGHPUT_FILE`; absent: not used);
    ``datasets``: every table's datasets, as ``make reproduce DATASETS=…`` (:func:`lib.data.locations.select_datasets`;
    the workbook's own not found are planned as absent, any other name without a readable manifest is an error)."""
    from .bench import load_throughput
    from ..core.config import to_dict
    from ..core.runs import RunResult, build_stage, identity_key, stage_dir
    from ..data import MLRDataset
    from ..data.locations import check_synthetic_datasets, refuse_unknown_datasets, select_datasets
    from ..utils.paths import resolve_path
    from ..methods import METHODS, method_of
    from ..models.weights import pretrained_weights_skipped
    from ..utils.io import jsonable
    from ..workbook import profile_name, table_names, table_paper_datasets, workbook_tables
    from ..workflow import dataset_info, experiment_config, find_datasets, manifest_path, output_dir

    t0 = time.time()
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device: expected cuda or cpu, found {device!r}")
    tables = table_names(tables)
    asked: list[str] | None = None  # the datasets of every table, when `datasets` names them
    if str(data_root) == "synthetic":  # the demo's data (make demo, the tiny profile)
        check_synthetic_datasets(datasets)
        found: dict[str, Path] = {"synthetic": Path("synthetic")}
    elif datasets:  # every one asked for is planned: the workbook's own not found as absent, other names refused
        found, absent = select_datasets(resolve_path(data_root) if data_root else None, datasets)
        refuse_unknown_datasets(absent)
        asked = list(found) + list(absent)
    else:
        found = find_datasets(data_root)[0] if data_root and Path(data_root).is_dir() else {}
    pname = profile_name(profile)
    out = output_dir({"PROFILE": pname, **({"OUTPUT_ROOT": output_root} if output_root else {})})
    measured = _measured_throughput(out / "runs")
    benched = load_throughput(throughput)
    runs: dict[str, PlannedRun] = {}
    datasets: dict[str, str] = {}
    builds: dict[str, tuple[Any, dict]] = {}  # provisional builds, by (config, stage, deps): built once
    tmp = tempfile.TemporaryDirectory(prefix="plan-")
    standin = None
    try:
        for table in tables:
            if table == "robustness":
                continue
            own = table_paper_datasets(table) or []
            names = (asked if asked is not None else  # as `make reproduce` picks them
                     [d for d in own if d in found] or list(found) or own)
            stem = workbook_tables()[table].planned_by
            params = _notebook_params(profile, stem, names, "" if str(data_root) == "synthetic" else str(data_root or ""),
                                      weights)
            params["PROFILE"] = pname
            if output_root:
                params["OUTPUT_ROOT"] = output_root
            for p, variants, outputs, label in _requests(table, params):
                for name in p.get("DATASETS", names):
                    manifest = manifest_path({**p, "DATASET": name})
                    built = manifest.is_file()
                    datasets[name] = "built" if built else ("found, not built" if name in found else "absent")
                    ds = MLRDataset.load(manifest) if built else None
                    info = dataset_info(name)
                    n_splits = ds.num_splits if ds is not None else (info.num_splits if info.split == "random" else 1)
                    splits = [int(k) for k in p.get("SPLITS", [0]) if 0 <= int(k) < n_splits]
                    for variant, ov in variants.items():
                        cfg = experiment_config(p, ov)
                        method = method_of(cfg)
                        backbone = str(getattr(getattr(cfg, "model", None), "backbone", ""))
                        for k in splits:
                            done: dict[str, RunResult] = {}
                            standin_done: dict[str, RunResult] = {}
                            for s in method.stages_for(outputs[variant]):
                                stage = method.stages[s]
                                deps = {d: done[d] for d in stage.deps}
                                if ds is not None:
                                    with pretrained_weights_skipped(), _random_init_skipped():
                                        plan, identity = build_stage(stage, method=method.name, cfg=cfg, ds=ds,
                                                                     split=k, deps=deps, progress=False)
                                    key, exact, scale = identity_key(identity), True, 1.0
                                else:
                                    standin = standin or _standin(Path(tmp.name))
                                    # built once per configuration and stage, for every dataset and split
                                    sdeps = {d: standin_done[d] for d in stage.deps}
                                    memo = json.dumps([jsonable(to_dict(cfg)), s, {d: r.key for d, r in sdeps.items()}],
                                                      sort_keys=True)
                                    if memo not in builds:
                                        with pretrained_weights_skipped(), _random_init_skipped():
                                            builds[memo] = build_stage(stage, method=method.name, cfg=cfg, ds=standin,
                                                                       split=0, deps=sdeps, progress=False)
                                    plan, sid = builds[memo]
                                    standin_done[s] = RunResult(s, plan.modules, {}, [], Path(s), sid, identity_key(sid))
                                    identity = {**sid, "dataset": name, "split": k, "manifest_sha256": "",
                                                "num_classes": None, "deps": {d: r.key for d, r in sorted(deps.items())}}
                                    key, exact = "~" + identity_key(identity)[:11], False
                                    scale = TRAIN_IMAGES.get(name, 0) / max(1, len(standin.split(0).train))
                                run_id = f"{method.name}/{name}/split{k}/{s}-{key}"
                                trains = any(q.requires_grad for m in plan.modules.values() for q in m.parameters())
                                bs = plan.sampler.batch_size if trains else 0
                                steps = int(len(plan.sampler) * scale) // bs if trains else 0
                                cap = cfg.runtime.max_steps_per_epoch
                                steps = min(steps, cap) if cap else steps
                                epochs = plan.optim.epochs if trains else 0
                                if exact:
                                    state, done_epochs = _state(stage_dir(out / "runs", method.name, name, k, s, key),
                                                                identity, epochs)
                                else:
                                    state, done_epochs = (f"missing (dataset {datasets[name]})", 0)
                                if run_id not in runs:
                                    samples = epochs * steps * bs
                                    left = 0 if state == "finished" else (epochs - done_epochs) * steps * bs
                                    runs[run_id] = PlannedRun(
                                        run_id, method.name, s, name, k, key, exact, state, epochs, done_epochs,
                                        samples, left, backbone,
                                        deps=[f"{method.name}/{name}/split{k}/{d}-{r.key}" for d, r in deps.items()],
                                        recipe={"params": {n: p[n] for n in RECIPE_PARAMS if n in p},
                                                "variant": variant, "overrides": ov, "dataset": name, "split": k,
                                                "stage": s})
                                use = f"{label}:{variant}"
                                if use not in runs[run_id].used_by:
                                    runs[run_id].used_by.append(use)
                                done[s] = RunResult(s, plan.modules, {}, [], Path(run_id), identity, key)
    finally:
        tmp.cleanup()
    for r in runs.values():
        rates = measured.get((r.method, r.stage, r.backbone, device))
        if rates:
            r.throughput, r.throughput_source = statistics.median(rates), f"measured here ({len(rates)} runs)"
        elif (r.method, r.stage, r.backbone, device) in benched:
            r.throughput, r.throughput_source = benched[(r.method, r.stage, r.backbone, device)]
        elif (r.method, r.stage, r.backbone, device) in DEFAULT_THROUGHPUT:
            r.throughput, r.throughput_source = DEFAULT_THROUGHPUT[(r.method, r.stage, r.backbone, device)]
        if r.samples_left == 0:
            r.device_hours_left = 0.0
        elif r.throughput:
            r.device_hours_left = round(r.samples_left / r.throughput / 3600, 3)
    return Plan(pname, list(tables), device, list(runs.values()), datasets, round(time.time() - t0, 1))


def format_plan(plan: Plan) -> str:
    """The summary a terminal shows: totals, then runs per table and state."""
    tot = plan.totals()
    lines = [f"plan of profile {plan.profile!r}, tables {' '.join(plan.tables)} ({plan.seconds:.1f} s)",
             "datasets: " + ", ".join(f"{k} ({v})" for k, v in plan.datasets.items()),
             f"{tot['runs']} distinct runs, {tot['shared_between_tables']} shared between tables; "
             + ", ".join(f"{n} {s}" for s, n in sorted(tot["states"].items())),
             f"training samples: {tot['samples']:,} in all, {tot['samples_left']:,} left",
             f"estimate on {plan.device}: {tot['device_hours_left']:.1f} device-hours left"
             + (f" ({tot['runs_without_estimate']} runs have no throughput to estimate from: run them once, or "
                "`make bench`)" if tot["runs_without_estimate"] else "")]
    per: dict[str, list[PlannedRun]] = {}
    for r in plan.runs:
        for table in dict.fromkeys(u.split(":")[0] for u in r.used_by):
            per.setdefault(table, []).append(r)
    for table, rs in per.items():
        hours = sum(r.device_hours_left or 0 for r in rs)
        left = sum(r.state != "finished" for r in rs)
        unpriced = sum(r.state != "finished" and r.device_hours_left is None for r in rs)
        lines.append(f"  {table}: {len(rs)} run{'s' * (len(rs) != 1)}, {left} to train, {hours:.1f} h"
                     + (f" (+ {unpriced} without an estimate)" if unpriced else ""))
    return "\n".join(lines)


def write_plan(plan: Plan, folder: str | Path) -> tuple[Path, Path]:
    """``plan.csv`` (one row per run) and ``plan.json`` (runs, totals, datasets) in ``folder``."""
    import io

    from ..utils.io import atomic_write_json, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in asdict(r).items() if k != "recipe"} | {"deps": " ".join(r.deps), "used_by": " ".join(r.used_by)}
            for r in plan.runs]  # the recipe (what a worker trains from) is in plan.json
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["run_id"])
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(folder / "plan.csv", buf.getvalue())
    atomic_write_json(folder / "plan.json", {"profile": plan.profile, "tables": plan.tables, "device": plan.device,
                                             "seconds": plan.seconds, "datasets": plan.datasets,
                                             "totals": plan.totals(), "runs": [asdict(r) for r in plan.runs]})
    return folder / "plan.csv", folder / "plan.json"
