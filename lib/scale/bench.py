"""Training throughput per method, stage, backbone and device (issue #21 §1): what ``make bench`` measures and the
plan of runs (:mod:`lib.scale.plan`) reads for its device-hour estimate.

    python -m lib.scale.bench --profile paper --tables all           # make bench PROFILE=paper (on the machine to estimate)
    python -m lib.workbook plan --profile paper --tables all   # make plan: now estimates every run so measured

For each distinct ``(method, stage, backbone)`` of the plan of ``tables``, the bench takes the first run of the
plan that needs it, builds that stage exactly as the run would (its configuration, the profile's runtime: device,
precision, channels_last, DataLoader workers), its dependencies untrained, on synthetic images at the stage's input
size written to disk (decoded as real images are), and trains it with the generic trainer for ``epochs`` epochs of
at most ``steps`` steps: the first epoch is warm-up (DataLoader start, kernel selection), the throughput is the
training samples per second of the others (an identity batch counts its P × K samples, a phase-2 pair one), as a
run's ``history.csv`` records it. Nothing is written outside ``outputs/bench/`` and the bench trains no run of the
profile.

The table is ``outputs/bench/throughput.json``: ``{"entries": [{method, stage, backbone, device, samples_per_s,
device_name, precision, profile, steps, measured_at, command}]}``, one entry per ``(method, stage, backbone,
device)``; a new measurement replaces the old one of its key, the others stay (measure a GPU and a CPU machine
into one file by copying it between them). The plan prefers, in order: finished runs of its own output folder,
this table, :data:`lib.scale.plan.DEFAULT_THROUGHPUT`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["THROUGHPUT_FILE", "device_name", "throughput_path", "load_throughput", "record_throughput", "bench_plan",
           "bench_dataset", "main"]

#: Where ``make bench`` writes the throughput table (relative to the repository).
THROUGHPUT_FILE = "outputs/bench/throughput.json"
_FIELDS = {"method": str, "stage": str, "backbone": str, "device": str, "samples_per_s": (int, float)}


def device_name(dev) -> str:
    """The GPU's name, or the CPU's model (``/proc/cpuinfo``) with its fast-bf16 capability: what a measurement
    was made on (the throughput of one CPU differs by its instruction set)."""
    import platform

    import torch

    from ..engine.precision import cpu_has_fast_bf16

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()}{' (native bf16)' if cpu_has_fast_bf16() else ''}"


def throughput_path() -> Path:
    from ..utils.paths import repo_root

    return repo_root() / THROUGHPUT_FILE


def load_throughput(path: str | Path | None = None) -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """``(method, stage, backbone, device kind) -> (samples/s, source)`` from the table at ``path`` (default
    :data:`THROUGHPUT_FILE`; absent: empty). A malformed table is an error naming the file and the entry."""
    p = Path(path) if path else throughput_path()
    if not p.is_file():
        return {}
    try:
        doc = json.loads(p.read_text())
    except ValueError as e:
        raise ValueError(f"{p}: not a JSON throughput table ({e}); rerun `make bench` or delete the file") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{p}: expected an object with a list 'entries', found {type(doc).__name__}"
                         + (f" with keys {sorted(doc)}" if isinstance(doc, dict) else ""))
    out: dict[tuple[str, str, str, str], tuple[float, str]] = {}
    for i, e in enumerate(entries):
        bad = [k for k, t in _FIELDS.items() if not isinstance(e, dict) or not isinstance(e.get(k), t)]
        if bad or isinstance(e.get("samples_per_s"), bool) or not float(e["samples_per_s"]) > 0:
            found = {k: e.get(k) for k in _FIELDS} if isinstance(e, dict) else e
            raise ValueError(f"{p}: entry {i}: expected {', '.join(_FIELDS)} (samples_per_s > 0), found {found}")
        where = ", ".join(str(x) for x in (e.get("device_name"), e.get("precision"), str(e.get("measured_at") or "")[:10])
                          if x)
        out[(e["method"], e["stage"], e["backbone"], e["device"])] = (float(e["samples_per_s"]),
                                                                      f"make bench ({where})")
    return out


def record_throughput(entries: Sequence[dict], path: str | Path | None = None) -> Path:
    """Merge ``entries`` into the table at ``path`` (a new entry replaces the one of its key); written atomically."""
    from ..utils import atomic_write_json

    p = Path(path) if path else throughput_path()
    load_throughput(p)  # an existing table must be readable before it is merged into
    old = json.loads(p.read_text())["entries"] if p.is_file() else []

    def key(e: dict) -> tuple:
        return tuple(e[k] for k in ("method", "stage", "backbone", "device"))

    new = {key(e): e for e in entries}
    merged = [e for e in old if key(e) not in new] + list(new.values())
    return atomic_write_json(p, {"entries": sorted(merged, key=key)})


def bench_dataset(height: int, width: int, *, identities: int = 40, images: int = 4, root: str | Path | None = None):
    """A synthetic MLR set (``identities`` × 2 cameras × ``images``, half of the identities to train) with images of
    ``height × width`` on disk, built once under ``outputs/bench/`` (or ``root``)."""
    from ..data import MLRConfig, MLRDataset, build_mlr
    from ..data.synthetic import SyntheticConfig, generate_synthetic
    from ..utils.paths import repo_root

    base = Path(root) if root else repo_root() / "outputs" / "bench"
    folder = base / f"data-{height}x{width}-{identities}x{images}"
    manifest = folder / "mlr" / "manifest.json"
    if not manifest.is_file():
        csv = generate_synthetic(folder / "images", SyntheticConfig(num_identities=identities, num_cameras=2,
                                                                   images_per_camera=images, height=height,
                                                                   width=width, seed=0), progress=False)
        build_mlr(csv, folder / "mlr", MLRConfig("synthetic", seed=0), progress=False)
    return MLRDataset.load(manifest)


def build_bench_stage(run, device: str, steps: int, data_root: Path | None, overrides: dict | None = None):
    """``(plan, runtime, precision, dataset)``: the stage of planned run ``run`` built as the run would be (its dependencies
    untrained) on the bench's synthetic set, with ``overrides`` on its configuration."""
    from ..core.runs import RunResult, build_stage, identity_key
    from ..methods import METHODS, method_of
    from ..models.weights import pretrained_weights_skipped
    from ..workflow import experiment_config

    recipe = run.recipe
    cfg = experiment_config(recipe["params"], {**recipe["overrides"], "runtime.device": device, **(overrides or {})})
    method = method_of(cfg)
    data = getattr(cfg, "data", None)
    p, k = int(getattr(data, "num_identities", 16)), int(getattr(data, "num_instances", 4))
    # enough training identities for steps + 1 batches an epoch: half of them train, each with 2 cameras × 4 images,
    # i.e. 8 // K groups of K for the P × K sampler
    ds = bench_dataset(int(getattr(data, "height", 256)), int(getattr(data, "width", 128)), root=data_root,
                       identities=max(40, 2 * p, 2 * -(-(steps + 1) * p // max(1, 8 // k))))
    built: dict[str, RunResult] = {}

    def build(s: str):
        stage = method.stages[s]
        deps = {d: built[d] if d in built else build(d)[2] for d in stage.deps}
        with pretrained_weights_skipped():  # the speed does not depend on the weights; nothing is fetched
            plan, ident = build_stage(stage, method=method.name, cfg=cfg, ds=ds, split=0, deps=deps, progress=False)
        built[s] = RunResult(s, plan.modules, {}, [], Path(s), ident, identity_key(ident))
        return stage, plan, built[s]

    _, plan, _ = build(run.stage)
    return plan, cfg.runtime, cfg.runtime.precision_for(), ds


def bench_trainer(plan, runtime, prec, run_dir, epochs: int, steps: int, desc: str):
    from ..engine import Trainer

    return Trainer(trainable=plan.modules, frozen=plan.frozen, make_step=plan.make_step, dataset=plan.dataset,
                   sampler=plan.sampler, optim=dataclasses.replace(plan.optim, epochs=epochs), precision=prec,
                   run_dir=run_dir, run_config={}, progress=False, desc=desc,
                   **{**runtime.trainer_kwargs(), "max_steps_per_epoch": steps, "checkpoint_every": epochs})


def _bench_stage(run, device: str, steps: int, epochs: int, data_root: Path | None) -> dict[str, Any]:
    """Train the stage of planned run ``run`` (:class:`lib.scale.plan.PlannedRun`) for a few steps; its throughput."""
    from ..data.image_cache import activate, build_cache, deactivate

    plan, runtime, prec, ds = build_bench_stage(run, device, steps, data_root)
    cache = build_cache(ds) if runtime.uses_image_cache() else None  # as run_stage does for a run
    if cache is not None:
        activate(cache)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            trainer = bench_trainer(plan, runtime, prec, tmp, epochs, steps, f"bench {run.method}/{run.stage}")
            hist = trainer.fit()
    finally:
        if cache is not None:
            deactivate(cache)
    timed = hist[1:] or hist
    samples, secs = sum(h["samples"] for h in timed), sum(h["time_s"] for h in timed)
    return {"method": run.method, "stage": run.stage, "backbone": run.backbone, "device": prec.device.type,
            "samples_per_s": round(samples / secs, 2), "precision": prec.name, "steps": sum(h["steps"] for h in timed),
            "data_frac": round(max(h["data_frac"] for h in timed), 3), "workers": trainer.num_workers,
            "gpu_peak_mib": timed[-1].get("gpu_peak_mib"), "example_run": run.run_id}


def bench_plan(plan, *, device: str = "auto", steps: int = 10, epochs: int = 2, data_root: str | Path | None = None,
               report=print) -> list[dict[str, Any]]:
    """One measurement per distinct ``(method, stage, backbone)`` of ``plan`` (:func:`lib.scale.plan.make_plan`) that
    trains something, on ``device`` (``auto``: CUDA when this machine has it); ``report`` gets a line per measurement."""
    import torch

    from ..engine.precision import resolve_device

    if steps < 1 or epochs < 2:
        raise ValueError(f"bench: steps ≥ 1 and epochs ≥ 2 (the first is warm-up) are required, found steps={steps}, "
                         f"epochs={epochs}")
    dev = resolve_device(device)
    name = device_name(dev)
    seen: dict[tuple[str, str, str], Any] = {}
    for r in plan.runs:
        if r.samples and (r.method, r.stage, r.backbone) not in seen:
            seen[(r.method, r.stage, r.backbone)] = r
    out = []
    for (method, stage, backbone), r in seen.items():
        t0 = time.time()
        e = _bench_stage(r, str(dev), steps, epochs, Path(data_root) if data_root else None)
        e |= {"device_name": name, "profile": plan.profile, "threads": torch.get_num_threads(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": " ".join(["python -m lib.scale.bench"]
                                                                                       + sys.argv[1:])}
        report(f"{method}/{stage} ({backbone or 'no backbone'}) on {name}: {e['samples_per_s']:.1f} samples/s "
               f"({e['precision']}, {e['steps']} timed steps, data wait ≤ {e['data_frac']:.0%}, {time.time() - t0:.0f} s)")
        out.append(e)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from .plan import make_plan

    p = argparse.ArgumentParser(prog="python -m lib.scale.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--tables", default="all", help="e.g. '1 2 7', 'ftwa1 ftwa2 methods' or 'all'")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--steps", type=int, default=10, help="timed steps per epoch (at most)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per stage; the first is warm-up")
    p.add_argument("--out", default="", help=f"the throughput table (default {THROUGHPUT_FILE})")
    p.add_argument("--pipelines", default="pshrnet/phase2",
                   help="method/stage whose data paths (pil, tensor) are compared after the table (lib.scale.bench_pipeline); "
                        "'none' skips it")
    p.add_argument("--pipeline-steps", type=int, default=4, help="timed steps per figure of the data-path comparison")
    a = p.parse_args(argv)
    from ..workbook import all_tables

    tables = all_tables() if a.tables.strip() == "all" else a.tables.replace(",", " ").split()
    plan = make_plan(a.profile, tables, None, device="cuda" if a.device.startswith("cuda") else "cpu")
    entries = bench_plan(plan, device=a.device, steps=a.steps, epochs=a.epochs)
    path = record_throughput(entries, a.out or None)
    print(f"wrote {len(entries)} measurement(s) to {path}; `make plan` now estimates with them")
    if a.pipelines != "none":
        _compare_pipelines(plan, a)
    return 0


def _compare_pipelines(plan, a) -> None:
    """The data-path comparison of ``a.pipelines`` (a ``method/stage`` of the plan), written next to the table."""
    from .bench_pipeline import PIPELINES_FILE, bench_pipelines
    from ..utils import atomic_write_json
    from ..utils.paths import repo_root

    method, _, stage = a.pipelines.partition("/")
    run = next((r for r in plan.runs if r.method == method and r.stage == stage and r.samples), None)
    if run is None:
        have = sorted({f"{r.method}/{r.stage}" for r in plan.runs if r.samples})
        raise SystemExit(f"error: --pipelines {a.pipelines!r}: no run of the plan trains that stage; expected one of "
                         f"{have} or 'none'")
    print(f"data paths of {a.pipelines} ({run.backbone or 'no backbone'}), {a.pipeline_steps} timed steps each:")
    rows = bench_pipelines(run, device=a.device, steps=a.pipeline_steps)
    out = Path(a.out).with_name("pipelines.json") if a.out else repo_root() / PIPELINES_FILE
    cmd = " ".join(["python -m lib.scale.bench"] + sys.argv[1:])
    atomic_write_json(out, {"rows": rows, "profile": plan.profile, "command": cmd,
                            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    print(f"wrote the data-path comparison to {out}")


if __name__ == "__main__":
    raise SystemExit(main())
