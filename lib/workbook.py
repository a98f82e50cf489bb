"""Run the workbook's notebooks with a profile (papermill), atomically.

A profile is ``params/<name>.yaml``: a mapping from notebook stem (e.g. ``01_dataset_synthesis``) to the
parameters injected into that notebook, plus an optional ``_all`` section injected into every notebook the
profile names. Every key must exist in the target notebook's ``parameters`` cell (papermill only warns;
:func:`check_profile` raises).

The executed notebook goes to ``outputs/<profile>/notebooks/<stem>.ipynb`` only when it ran to the end;
a failed run is left as ``<stem>.failed.ipynb`` next to it, so nothing incomplete looks complete. While a notebook
runs, its progress (stages reused / trained, one line per epoch with loss and ETA) is printed to the terminal as
``[<stem>] …`` and kept in ``outputs/<profile>/logs/<stem>.progress.log`` (:mod:`lib.utils.progress`; quiet under
``CI`` / ``WORKBOOK_QUIET=1``).

Command line::

    python -m lib.workbook run notebooks/01_dataset_synthesis.ipynb --profile tiny
    python -m lib.workbook check [--profile NAME]
    python -m lib.workbook reproduce --profile cpu --data-root ../shared/data --tables "1 2 7"
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import filelock
import yaml

from .utils.progress import ProgressTail
from .utils.paths import check_name, repo_root, resolve_path

__all__ = ["UnknownParameterError", "notebook_parameters", "load_profile", "check_profile", "run_notebook", "main"]


class UnknownParameterError(KeyError):
    """A profile key or ``-p`` name that is not a parameter of the notebook (a ``KeyError`` whose message reads as
    written, not quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _parameters_cell(nb: dict, path: Path) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    raise ValueError(f"{path}: no code cell tagged 'parameters'")


def notebook_parameters(path: str | os.PathLike) -> dict[str, object]:
    """Names and literal values of a notebook's ``parameters`` cell.

    Raises:
        ValueError: the cell is missing, or holds something other than ``NAME = literal`` lines.
    """
    path = Path(path)
    nb = json.loads(path.read_text())
    tree = ast.parse(_parameters_cell(nb, path))
    out: dict[str, object] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"{path}: the parameters cell may hold only 'NAME = literal' lines, found: {ast.unparse(node)}")
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ValueError(f"{path}: parameter {node.targets[0].id} is not a literal: {ast.unparse(node.value)}") from None
    return out


def profile_path(profile: str) -> Path:
    """The YAML file of ``profile``: a path to one (``.yaml`` / ``.yml``, or an existing file), else
    ``params/<profile>.yaml``. Either way the profile's name (the file's stem, which becomes ``<OUTPUT_ROOT>/<name>/``)
    must be a plain name (:func:`~lib.utils.paths.check_name`): ``...yaml`` (stem ``..``), ``../x`` or ``/abs/x``
    given as a name would send every output outside ``OUTPUT_ROOT``."""
    p = Path(profile)
    if p.suffix in (".yaml", ".yml") or p.exists():
        check_name(p.stem, f"profile {profile!r}: the profile's name (its file's stem)")
        return p if p.is_absolute() else Path.cwd() / p
    return repo_root() / "params" / f"{check_name(profile, 'profile')}.yaml"


def profile_name(profile: str) -> str:
    """The name of ``profile`` (a name or a path to its YAML file): its file's stem, checked by :func:`profile_path`."""
    return profile_path(profile).stem


def load_profile(profile: str) -> dict[str, dict]:
    """``{notebook_stem: parameters}`` of a profile, with its ``_all`` section merged into each."""
    path = profile_path(profile)
    if not path.is_file():
        known = sorted(p.stem for p in (repo_root() / "params").glob("*.yaml"))
        raise FileNotFoundError(f"profile {profile!r}: {path} does not exist; known profiles: {', '.join(known)}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of notebook name → parameters, found {type(data).__name__}")
    common = data.pop("_all", {}) or {}
    out = {}
    for stem, params in data.items():
        if not isinstance(params, dict):
            raise ValueError(f"{path}: section {stem!r} must be a mapping of PARAMETER: value")
        out[stem] = {**common, **params}
    return out


def check_profile(profile: str) -> list[str]:
    """Every key of the profile exists in its notebook; returns the notebooks checked, raises on the first miss."""
    checked = []
    for stem, params in load_profile(profile).items():
        nb = repo_root() / "notebooks" / f"{stem}.ipynb"
        if not nb.is_file():
            raise FileNotFoundError(f"profile {profile!r}: section {stem!r} names notebook {nb}, which does not exist")
        declared = notebook_parameters(nb)
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise KeyError(
                f"profile {profile!r}: keys {unknown} are not parameters of {nb.name} (it declares {sorted(declared)})"
            )
        from .workflow import validate_params

        validate_params(params, where=f"profile {profile!r} ({profile_path(profile)}), section {stem}")
        _check_config({**declared, **params}, f"profile {profile!r} ({profile_path(profile)}), section {stem}")
        checked.append(stem)
    return checked


def _check_config(params: dict, where: str) -> None:
    """Load a notebook's ``CONFIG`` with its ``OVERRIDES`` (types checked) before any kernel starts."""
    if "CONFIG" not in params:
        return
    from .core.config import ConfigError
    from .workflow import experiment_config

    try:
        experiment_config(params)
    except (ConfigError, FileNotFoundError, KeyError) as e:
        raise type(e)(f"{where}: {e}") from None


def resolve_run(
    notebook: str | os.PathLike, profile: str, *, output_root: str | os.PathLike | None = None,
    overrides: dict | None = None,
) -> tuple[Path, dict, Path]:
    """``(notebook path, parameters, folder of the executed notebook)`` of a run of ``notebook`` with ``profile``.

    The profile's own name is always the notebook's ``PROFILE`` (a profile that sets another is an error), so
    outputs, tables and the executed notebook all land under ``<OUTPUT_ROOT>/<profile>/``; ``output_root``
    (else the parameters' ``OUTPUT_ROOT``, else ``outputs``) decides where that is. Parameter types are
    checked here, before any kernel starts.
    """
    nb = Path(notebook)
    if not nb.is_absolute():
        nb = (Path.cwd() / nb) if (Path.cwd() / nb).exists() else repo_root() / nb
    sections = load_profile(profile)
    check_profile(profile)
    params = {**sections.get(nb.stem, {}), **(overrides or {})}
    declared = notebook_parameters(nb)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise UnknownParameterError(f"{nb.name}: {unknown} are not parameters of this notebook (its parameters: "
                                    f"{', '.join(declared)})")
    pname = profile_name(profile)
    # The profile's name decides where everything goes: a notebook never falls back to its own default
    # PROFILE ("tiny") and the executed notebook is filed beside the outputs it made.
    if params.get("PROFILE", pname) != pname:
        where = (f"-p PROFILE (or overrides) sets PROFILE: {params['PROFILE']!r}" if "PROFILE" in (overrides or {}) else
                 f"profile {profile!r} ({profile_path(profile)}) sets PROFILE: {params['PROFILE']!r} for {nb.stem}")
        raise ValueError(f"{where}; PROFILE must be the profile's own name {pname!r} (or be left out: choose the "
                         "profile with --profile)")
    if "PROFILE" in declared:
        params["PROFILE"] = pname
    if output_root is not None and "OUTPUT_ROOT" in declared:
        params["OUTPUT_ROOT"] = str(output_root)
    from .workflow import validate_params

    validate_params(params, where=f"{nb.name} with profile {pname!r}")
    _check_config({**declared, **params}, f"{nb.name} with profile {pname!r}")
    root = resolve_path(output_root if output_root is not None else params.get("OUTPUT_ROOT", "outputs"))
    return nb, params, root / pname / "notebooks"


def run_notebook(
    notebook: str | os.PathLike,
    profile: str,
    *,
    output_root: str | os.PathLike | None = None,
    overrides: dict | None = None,
    suffix: str = "",
) -> Path:
    """Execute ``notebook`` with the profile's parameters; return the executed notebook's path.

    ``overrides`` are set on top of the profile (each must be a parameter of the notebook); ``suffix`` is
    appended to the executed notebook's name (one per dataset in ``table1``).
    """
    import papermill as pm

    from .kernel import KERNEL_NAME, check_kernel, kernel_manager_with_env
    from .utils.progress import ENV

    nb, params, out_dir = resolve_run(notebook, profile, output_root=output_root, overrides=overrides)
    check_kernel()
    pname = profile_name(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = nb.stem + suffix
    final = out_dir / f"{stem}.ipynb"
    # per process: a second reproduction on the same output folder runs the same notebook beside this one
    tmp = out_dir / f".{stem}.running-{os.getpid()}-{uuid.uuid4().hex[:8]}.ipynb"
    failed = out_dir / f"{stem}.failed.ipynb"
    for stale in (final, failed):
        stale.unlink(missing_ok=True)
    print(f"[workbook] {nb.name} with profile {pname!r}: {json.dumps(params)}", flush=True)
    # the kernel's progress lines, echoed to the terminal; another process running this notebook has its own log
    log = out_dir.parent / "logs" / f"{stem}.progress.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log_lock = filelock.FileLock(str(log) + ".lock")
    try:
        log_lock.acquire(timeout=0)
    except filelock.Timeout:
        log = log.with_name(f"{stem}.{os.getpid()}.progress.log")
    try:
        with ProgressTail(log, stem):
            # the log reaches the kernel with it, not through os.environ (another thread's tail may have moved that)
            pm.execute_notebook(str(nb), str(tmp), parameters=params, kernel_name=KERNEL_NAME, cwd=str(repo_root()),
                                progress_bar=False, log_output=False,
                                kernel_manager_class=kernel_manager_with_env({ENV: str(log)}))
    except BaseException:
        if tmp.exists():
            os.replace(tmp, failed)
            print(f"[workbook] FAILED: the executed notebook is at {failed}", file=sys.stderr)
        raise
    finally:
        if log_lock.is_locked:
            log_lock.release()
    os.replace(tmp, final)
    _trust(final)
    print(f"[workbook] done: {final}", flush=True)
    return final


def _trust(path: Path) -> None:
    """Sign an executed notebook on this machine (as ``jupyter trust`` does), so JupyterLab renders its saved widget
    state (the explorer's controls and pictures) instead of their text fallback. Never fails a run."""
    try:
        import nbformat
        from nbformat.sign import NotebookNotary

        NotebookNotary().sign(nbformat.read(path, as_version=4))
    except Exception as e:  # a read-only or missing signature database
        print(f"[workbook] note: {path.name} not signed as trusted ({type(e).__name__}: {e})", file=sys.stderr)


#: The workbook's own tables, beyond any one method, as ``(name, spec, notebooks)`` of a
#: :class:`lib.methods.WorkbookTable`: the methods side by side (notebook 11 writes it beside FTWA's Table 1) and the
#: resolution sweep of every finished run. Each method lists its own (:attr:`lib.methods.Method.tables`). (Plain
#: data: this module does not import torch until a table is asked for.)
WORKBOOK_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("methods", "methods", ("11_ftwa",)),
    ("robustness", "robustness", ("14_resolution_robustness",)),
)


def workbook_tables() -> dict[str, "WorkbookTable"]:
    """Every table ``make reproduce TABLES=…`` knows, by name: each registered method's (registration order), then
    :data:`WORKBOOK_TABLES`.

    Raises:
        ValueError: two tables with one name or one spec, naming both.
    """
    from .methods import METHODS, WorkbookTable

    out: dict[str, WorkbookTable] = {}
    owner: dict[str, str] = {}
    own = [("workbook", WorkbookTable(*t)) for t in WORKBOOK_TABLES]
    for who, t in [*((m.name, t) for m in METHODS.in_order() for t in m.tables), *own]:
        for key in dict.fromkeys((t.name, t.spec)):
            if key in owner:
                raise ValueError(f"table {key!r} of {who} is already a table of {owner[key]}")
            owner[key] = who
        out[t.name] = t
    return out


def all_tables() -> list[str]:
    """What ``--tables all`` means: every table a notebook makes (a method's table made only from Python is left
    out; name it to be told so)."""
    return [name for name, t in workbook_tables().items() if t.notebooks]


def table_notebooks() -> dict[str, tuple[str, ...]]:
    """``{table: notebooks}``, in order (notebook 01 runs first, once per dataset); also :data:`TABLE_NOTEBOOKS`."""
    return {name: t.notebooks for name, t in workbook_tables().items()}


def __getattr__(name: str):
    if name == "TABLE_NOTEBOOKS":  # computed when read, so a method registered later is included
        return table_notebooks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def table_name(table: str | int) -> str:
    """A ``TABLES`` entry as the workbook names it: ``3`` / ``table3`` → ``3``, ``ftwa_table1`` → ``ftwa1``.

    Raises:
        ValueError: an unknown table, naming the known ones.
    """
    tables = workbook_tables()
    t = str(table)
    if t in tables:
        return t
    by_spec = {e.spec: name for name, e in tables.items()}
    if t in by_spec:
        return by_spec[t]
    raise ValueError(f"TABLES: unknown table {t!r}; the workbook has {', '.join(tables)}")


def table_names(tables: Sequence[str | int]) -> list[str]:
    """Every entry of ``tables`` as :func:`table_name` names it.

    Raises:
        ValueError: naming every unknown entry (as written) and the known tables, before anything runs.
    """
    unknown = []
    for t in tables:
        try:
            table_name(t)
        except ValueError:
            unknown.append(str(t))
    if unknown:
        raise ValueError(f"TABLES: unknown table(s) {unknown}; the workbook has {', '.join(workbook_tables())}")
    return [table_name(t) for t in tables]


def table_spec_name(table: str) -> str:
    """The spec / output name of a ``TABLES`` entry: ``3`` → ``table3``, ``ftwa1`` → ``ftwa_table1``, ``methods``."""
    return workbook_tables()[table_name(table)].spec


def table_paper_datasets(table: str) -> list[str] | None:
    """The datasets of the paper table behind ``table`` (workbook names: ``viper`` …); ``None`` for the sweep,
    which runs on every dataset with runs."""
    from .paper_numbers import paper_table_info
    from .results import load_table_spec
    from .results.methods_table import load_methods_spec
    from .results.tables import PAPER_DATASETS

    name = table_name(table)
    if name == "robustness":
        return None
    if name == "methods":
        paper, tab = load_methods_spec().datasets_of
    else:
        spec = load_table_spec(table_spec_name(name))
        paper, tab = spec.paper, spec.table
    return [PAPER_DATASETS[d] for d in paper_table_info(paper, tab)["datasets"]]


def _table_datasets(table: str, found: dict[str, Path]) -> list[str]:
    """The paper table's own datasets when present under DATA_ROOT, else every dataset found (a substitution the
    table states above itself)."""
    own = table_paper_datasets(table)
    if own is None:  # beyond the papers: every dataset with runs
        return list(found)
    present = [d for d in own if d in found]
    return present or list(found)


def reproduce(profile: str, data_root: str | os.PathLike, tables: Sequence[str] = ("1",),
              weights: str | os.PathLike | None = None, workers: int | None = None, runs_per_gpu: int = 1,
              datasets: Sequence[str] = ()) -> list[Path]:
    """Every table in ``tables`` for the datasets under ``data_root``: notebook 01 for each dataset found, then each
    table's notebooks (:func:`workbook_tables`) with ``DATASETS`` / ``DATA_ROOT`` set.

    ``datasets`` (``make reproduce DATASETS=…``): the datasets to use, for every table: Table I's names, CSV datasets
    under ``data_root`` by name, or ``name=path`` for a CSV dataset elsewhere (:func:`lib.data.locations.select_datasets`).
    Empty: the Table I datasets found under ``data_root``, each table on the paper's own where present (CSV datasets
    found there are listed, not used).

    ``weights``: a YAML file ``backbone: weight source`` (:func:`lib.workflow.load_weights_file`), given to every
    notebook as ``WEIGHTS``: each row, the methods table's included, takes its backbone's file.

    ``workers``: ``None`` trains inside the notebooks, one run after another (as before); a number (0: one per
    visible GPU) first trains the tables' plan of runs (:mod:`lib.scale.plan`) in that many parallel workers
    (:func:`lib.scale.execute.execute`, ``runs_per_gpu`` each), and the notebooks then reuse the finished runs.

    The workbook's datasets not found are printed and appear as missing in the tables; they are never silently
    dropped. Any other name in ``datasets`` with no readable CSV manifest (a misspelt name) is an error before anything
    runs (:func:`lib.data.locations.refuse_unknown_datasets`). With ``data_root`` ``synthetic`` the embedded synthetic
    data is used (``make demo``), and ``datasets`` may name only it.
    """
    from .data.locations import check_synthetic_datasets, find_csv_datasets, refuse_unknown_datasets, select_datasets
    from .workflow import find_datasets, load_weights_file, output_dir

    weights_map = load_weights_file(weights) if weights else {}  # a bad file fails before anything runs
    pname = profile_name(profile)  # before any notebook runs: the name decides where everything goes
    known = workbook_tables()
    tables = table_names(tables)
    for t in tables:
        known[t].planned_by  # a table no notebook makes fails here, before anything runs
    elsewhere = bool(datasets) and all("=" in str(d) for d in datasets)  # name=path entries only: no DATA_ROOT read
    if str(data_root) != "synthetic" and not elsewhere and not resolve_path(data_root).exists():
        raise FileNotFoundError(f"DATA_ROOT {data_root} does not exist (resolved: {resolve_path(data_root)}); give the "
                                "folder that holds your datasets, or synthetic for the embedded data")
    if str(data_root) == "synthetic":
        check_synthetic_datasets(datasets)
        found, missing = {"synthetic": Path("synthetic")}, {}
    elif datasets:
        found, missing = select_datasets(resolve_path(data_root), datasets)
        refuse_unknown_datasets(missing)
    else:
        found, missing = find_datasets(data_root)
        csv = find_csv_datasets(resolve_path(data_root))[0]
        if csv:
            print(f"[reproduce] CSV datasets under {data_root}, used only when DATASETS names them: {', '.join(csv)}",
                  flush=True)
    for name, why in missing.items():
        print(f"[reproduce] missing {name}: {why}", flush=True)
    if not found:
        raise FileNotFoundError(f"no dataset under {data_root} ({'; '.join(missing.values())})")
    failed = {}
    ok = []
    for name, root in found.items():
        try:
            over = {"DATASET": name} | ({} if name == "synthetic" else {"DATA_ROOT": str(root)})
            run_notebook(repo_root() / "notebooks" / "01_dataset_synthesis.ipynb", profile, overrides=over,
                         suffix=f"-{name}")
            ok.append(name)
        except Exception as e:  # one dataset failing must not cost the others their tables
            failed[name] = _reason(e)
            print(f"[reproduce] FAILED {name}: {failed[name]}", file=sys.stderr, flush=True)
    if workers is not None and ok:
        from .scale.execute import execute
        from .scale.plan import format_plan, make_plan

        plan = make_plan(profile, tables, "synthetic" if str(data_root) == "synthetic" else data_root, weights=weights_map,
                         datasets=datasets)
        print(format_plan(plan), flush=True)
        rep = execute(plan, workers=workers, runs_per_gpu=runs_per_gpu)
        print(f"[reproduce] the pool trained {len(rep.trained)} runs in {rep.seconds:.0f}s"
              + (f"; {len(rep.failed)} failed, {len(rep.skipped)} skipped (the notebooks will say why)"
                 if rep.failed or rep.skipped else ""), flush=True)
        failed |= {f"run {k}": v for k, v in rep.failed.items()}
    written, ran = [], set()
    for t in tables:
        names = ([d for d in found if d in ok] if datasets else
                 [d for d in _table_datasets(t, {n: found[n] for n in ok}) if d in ok]) if ok else []
        for stem in known[t].notebooks:
            if (stem, tuple(names)) in ran:  # e.g. "ftwa1 methods": notebook 11 makes both
                continue
            ran.add((stem, tuple(names)))
            declared = notebook_parameters(repo_root() / "notebooks" / f"{stem}.ipynb")
            over = {"DATASETS": names} if "DATASETS" in declared else {}
            if "COMPARE_METHODS" in declared:  # the methods table trains the other method too: only when asked for
                over["COMPARE_METHODS"] = "methods" in tables
            if "DATA_ROOT" in declared and str(data_root) != "synthetic":
                over["DATA_ROOT"] = str(resolve_path(data_root))
            if weights_map and "WEIGHTS" in declared:
                over["WEIGHTS"] = weights_map
            try:
                run_notebook(repo_root() / "notebooks" / f"{stem}.ipynb", profile, overrides=over)
            except Exception as e:
                failed[f"table {t} ({stem})"] = _reason(e)
                print(f"[reproduce] FAILED table {t}: {_reason(e)}", file=sys.stderr, flush=True)
                break
        table = output_dir({"PROFILE": pname}) / "tables" / f"{table_spec_name(t)}.md"
        if table.is_file():
            print(f"[reproduce] {table}", flush=True)
            written.append(table)
    if failed:
        raise RuntimeError(f"these failed (their executed notebooks end in .failed.ipynb): {'; '.join(f'{k}: {v}' for k, v in failed.items())}")
    return written


def _reason(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[-1][:300] if text else ''}"


def parse_parameters(pairs: Sequence[Sequence[str]]) -> dict:
    """``[[KEY, VALUE], …]`` of ``-p`` → ``{KEY: value}``, each value read as YAML (``3`` → 3, ``[0, 1]`` → a list,
    ``true`` → True, ``abc`` → 'abc').

    Raises:
        ValueError: a key that is not an UPPER_CASE parameter name, or a value that is not YAML, naming it.
    """
    out = {}
    for key, value in pairs:
        if not key.isidentifier() or key.upper() != key:
            raise ValueError(f"-p {key} {value}: expected an UPPER_CASE notebook parameter name, found {key!r}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"-p {key} {value!r}: not a YAML value ({str(e).splitlines()[0]})") from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.workbook")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute notebook(s) with a profile")
    r.add_argument("notebooks", nargs="+")
    r.add_argument("--profile", default="tiny")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="set a notebook parameter on top of the profile, as papermill's -p (VALUE is read as YAML: "
                        "-p SPLITS '[0, 1]' -p SEED 3); repeatable; each must be a parameter of the notebook")
    t = sub.add_parser("reproduce", help="notebook 01 for every dataset under --data-root, then each table's notebooks")
    t.add_argument("--profile", default="cpu")
    t.add_argument("--data-root", default="../shared/data", help="a folder of datasets, or 'synthetic'")
    t.add_argument("--tables", default="1", help="e.g. '1 2 7', 'ftwa1 ftwa2 methods', 'all', or 'none' (datasets only)")
    t.add_argument("--workers", default="", help="train the plan's runs in N parallel workers first (0: one per GPU)")
    t.add_argument("--runs-per-gpu", type=int, default=1, help="runs packed on one GPU by the pool")
    t.add_argument("--weights", default="", help="YAML file 'backbone: weight source' for every row (e.g. "
                   "hrnet_w32: file:/w/hrnetv2_w32_imagenet_pretrained.pth)")
    t.add_argument("--datasets", default="", help="the datasets of every table, e.g. 'viper caviar shop' (shop: a CSV "
                   "dataset DATA_ROOT/shop/manifest.csv) or 'viper lab=/data/lab/manifest.csv'; default: Table I's found")
    pl = sub.add_parser("plan", help="the distinct runs the tables need, their state and cost (trains nothing)")
    pl.add_argument("--profile", default="cpu")
    pl.add_argument("--data-root", default="", help="a folder of datasets (absent ones are estimated)")
    pl.add_argument("--tables", default="all", help="e.g. '1 2 7', 'ftwa1 ftwa2 methods' or 'all'")
    pl.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="the device the estimate is for")
    pl.add_argument("--datasets", default="", help="the datasets of every table, as reproduce's --datasets")
    sb = sub.add_parser("submit", help="submit the plan's unfinished runs as SLURM jobs (submitit), dependencies first")
    sb.add_argument("--profile", default="paper")
    sb.add_argument("--data-root", default="", help="a folder of datasets; build them first (make reproduce … "
                    "TABLES=none, or notebook 01): a run of a dataset not built cannot be submitted")
    sb.add_argument("--tables", default="all")
    sb.add_argument("--cluster", default=None, help="slurm | local | debug (default: SLURM where sbatch exists)")
    sb.add_argument("--partition", default=None)
    sb.add_argument("--timeout-min", type=int, default=24 * 60)
    sb.add_argument("--gpus", type=int, default=1, help="GPUs per job")
    sb.add_argument("--cpus", type=int, default=8, help="CPUs per job (the DataLoader workers come from them)")
    sb.add_argument("--mem-gb", type=int, default=None)
    sb.add_argument("--wait", action="store_true", help="wait for every job and fail on the first that fails")
    c = sub.add_parser("check", help="check that every profile key exists in its notebook")
    c.add_argument("--profile", default=None, help="default: every params/*.yaml")
    a = p.parse_args(argv)
    if a.cmd == "run":
        try:
            overrides = parse_parameters(a.parameter)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for nb in a.notebooks:
            try:
                run_notebook(nb, a.profile, overrides=overrides or None)
            except Exception as e:  # papermill's error already shows the failing cell
                print(f"error: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr)
                return 1
        return 0
    if a.cmd == "reproduce":  # "none": only notebook 01 for every dataset (e.g. before submitting to SLURM)
        tables = all_tables() if a.tables.strip() == "all" else \
            [] if a.tables.strip() == "none" else a.tables.replace(",", " ").split()
        try:
            workers = int(a.workers) if str(a.workers).strip() else None
            reproduce(a.profile, a.data_root, tables, weights=a.weights or None, workers=workers,
                      runs_per_gpu=a.runs_per_gpu, datasets=a.datasets.replace(",", " ").split())
        except Exception as e:
            print(f"error: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr)
            return 1
        return 0
    if a.cmd == "plan":
        from .scale.plan import format_plan, make_plan, write_plan
        from .workflow import output_dir

        tables = all_tables() if a.tables.strip() == "all" else a.tables.replace(",", " ").split()
        try:
            plan = make_plan(a.profile, tables, a.data_root or None, device=a.device,
                             datasets=a.datasets.replace(",", " ").split())
        except (ValueError, KeyError, FileNotFoundError, TypeError) as e:
            print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
            return 2
        csv_path, json_path = write_plan(plan, output_dir({"PROFILE": plan.profile}) / "plan")
        print(format_plan(plan))
        print(f"written: {csv_path}, {json_path}")
        return 0
    if a.cmd == "submit":
        from .scale.execute import submit
        from .scale.plan import format_plan, make_plan
        from .workflow import output_dir

        tables = all_tables() if a.tables.strip() == "all" else a.tables.replace(",", " ").split()
        try:
            plan = make_plan(a.profile, tables, a.data_root or None)
            provisional = [r.run_id for r in plan.runs if not r.exact and r.state != "finished"]
            if provisional:
                raise ValueError(f"{len(provisional)} runs belong to datasets not built yet "
                                 f"({', '.join(k for k, v in plan.datasets.items() if v != 'built')}): run notebook 01 "
                                 "for them first (make mlr, or make reproduce), then submit")
            print(format_plan(plan))
            submit(plan, folder=output_dir({"PROFILE": plan.profile}) / "plan" / "submitit", cluster=a.cluster,
                   partition=a.partition, timeout_min=a.timeout_min, gpus=a.gpus, cpus=a.cpus, mem_gb=a.mem_gb,
                   wait=a.wait)
        except (ValueError, KeyError, FileNotFoundError, TypeError, RuntimeError) as e:
            print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
            return 2
        return 0
    profiles = [a.profile] if a.profile is not None else sorted(q.stem for q in (repo_root() / "params").glob("*.yaml"))
    for prof in profiles:
        try:
            print(f"{prof}: {', '.join(check_profile(prof))} ok")
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:  # what check finds: no traceback
            print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
