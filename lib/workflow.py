"""The notebooks' glue: parameters → datasets, configurations and variants; experiments; tables.

Every notebook declares a few UPPER_CASE parameters (``PROFILE``, ``DATASETS``, ``CONFIG``, ``VARIANTS``,
``OVERRIDES`` …); this module is the one place that turns them into datasets (:func:`locate_dataset`), typed
configurations (:func:`experiment_config`), runs of a table's variants (:func:`run_table`) and tables
(:func:`make_table`), so notebooks, ``make`` targets and tests agree on what a parameter means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataclasses import dataclass, field

from .core.config import flatten, to_dict
from .data import MLRConfig, MLRDataset, build_mlr, get_dataset, locations
from .data.locations import TABLE1_DATASETS, candidate_folders
from .data.registry import register_csv_dataset
from .data.synthetic import SyntheticConfig, generate_synthetic
from .engine import distributed as D
from .metrics.intervals import DEFAULT_B
from .core.runs import release
from .methods import METHODS, differences, load_config, method_of, run_variant
from .results import build_table, load_table_spec, write_summary, write_table
from .results.tables import frame_markdown
from .results.specs import TABLE_EXTRAS, RowSpec, TableSpec
from .utils.io import jsonable
from .utils.paths import check_name, resolve_path

__all__ = [
    "DATA_DEFAULTS",
    "PARAM_TYPES",
    "param_types",
    "validate_params",
    "output_dir",
    "manifest_path",
    "prepare_dataset",
    "locate_dataset",
    "experiment_config",
    "Experiment",
    "run_experiment",
    "run_table",
    "table_request",
    "TableRequest",
    "make_table",
    "splits_to_run",
    "DATASET_FOLDERS",
    "dataset_info",
    "dataset_root",
    "find_datasets",
    "split_file_param",
    "check_weights_map",
    "load_weights_file",
    "methods_requests",
    "run_methods_table",
]

#: The type of every shared notebook parameter (a method adds its own: :func:`param_types`; a test checks each
#: notebook's defaults against them): ``int``, ``float`` (an int is accepted), ``bool``, ``str``, ``dict``, ``list[int]``, ``list[str]``, or ``"list[str]|str"`` unions.
#: Model, data and training settings are not notebook parameters: they live in the configuration files
#: (``CONFIG``, ``configs/<method>/*.yaml``) and are changed with ``OVERRIDES`` (dotted keys).
PARAM_TYPES: dict[str, str] = {
    "PROFILE": "str", "OUTPUT_ROOT": "str", "DATASET": "str", "DATASETS": "list[str]", "DATA_ROOT": "str",
    "SEED": "int", "RATES": "list[int]", "INTERPOLATION": "str", "ANTIALIAS": "bool", "NUM_SPLITS": "int",
    "SPLIT_FILE": "str|dict",
    "SYN_NUM_IDENTITIES": "int", "SYN_NUM_CAMERAS": "int", "SYN_IMAGES_PER_CAMERA": "int", "SYN_HEIGHT": "int",
    "SYN_WIDTH": "int", "GRID_IDENTITIES": "int", "SPLITS": "list[int]", "CONFIG": "str", "VARIANTS": "list[str]|str",
    "OVERRIDES": "dict", "NUM_EXAMPLES": "int", "COMPARE_METHODS": "bool",
    "SPLIT": "int", "METHOD": "str", "ORDER": "str", "QUERY": "int", "QUERY_RATE": "int", "TOP_K": "int",
    "METHODS": "list[str]", "QUERY_RATES": "list[int]", "BOOTSTRAP": "int", "WEIGHTS": "dict",
}


def param_types() -> dict[str, str]:
    """Every notebook parameter's type: the shared :data:`PARAM_TYPES` plus each registered method's own
    (:attr:`lib.methods.Method.notebook_params`, e.g. PS-HRNet's ``RUN_BASELINE``)."""
    out = dict(PARAM_TYPES)
    for m in METHODS.in_order():
        for key, spec in m.notebook_params.items():
            if out.setdefault(key, spec) != spec:
                raise ValueError(f"method {m.name!r}: notebook parameter {key} has type {spec!r}, but it is already "
                                 f"{out[key]!r}")
    return out


def _type_ok(value: Any, spec: str) -> bool:
    if "|" in spec:
        return any(_type_ok(value, s) for s in spec.split("|"))
    if spec.startswith("list["):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, spec[5:-1]) for v in value)
    if spec == "bool":
        return isinstance(value, bool)
    if spec == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec == "dict":
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return isinstance(value, str)


def validate_params(params: Mapping[str, Any], *, where: str = "parameters") -> None:
    """Check every known parameter's type (:func:`param_types`); raise ``TypeError`` naming the key, the
    expected type and the value found. Unknown keys are the notebooks' business (papermill checks them)."""
    types = param_types()
    for key, value in params.items():
        spec = types.get(key)
        if spec is None or _type_ok(value, spec):
            continue
        hint = ""
        if isinstance(value, str) and spec in ("float", "int"):
            hint = " (YAML reads 1e-3 as a string: write 1.0e-3)" if "e" in value.lower() else " (remove the quotes)"
        elif isinstance(value, str) and spec == "bool":
            hint = " (write true or false without quotes)"
        raise TypeError(f"{where}: {key} must be {spec.replace('|', ' or ')}, found {type(value).__name__} {value!r}{hint}")


#: Dataset parameters of notebook 01 and their defaults (a test checks the notebook agrees).
DATA_DEFAULTS: dict[str, Any] = {
    "RATES": [2, 3, 4],
    "INTERPOLATION": "bicubic",
    "ANTIALIAS": True,
    "NUM_SPLITS": 0,
    "SPLIT_FILE": "",
    "SYN_NUM_IDENTITIES": 24,
    "SYN_NUM_CAMERAS": 3,
    "SYN_IMAGES_PER_CAMERA": 2,
    "SYN_HEIGHT": 128,
    "SYN_WIDTH": 64,
}


def output_dir(params: Mapping[str, Any]) -> Path:
    """``OUTPUT_ROOT/PROFILE`` (repository-relative unless absolute). ``PROFILE`` must be a plain name
    (:func:`~lib.utils.paths.check_name`): ``..`` or ``../x`` would put every output outside ``OUTPUT_ROOT``."""
    return resolve_path(params.get("OUTPUT_ROOT", "outputs")) / check_name(params.get("PROFILE", "tiny"), "PROFILE")


def dataset_info(name: str):
    """The :class:`~lib.data.registry.DatasetInfo` of dataset ``name``: one of the workbook's (``viper``, ``market`` …),
    else the CSV dataset of that name (:func:`~lib.data.registry.register_csv_dataset`; its manifest is looked for
    under ``DATA_ROOT`` when it is built, :func:`dataset_root`). ``name`` must be a plain name: it becomes folders."""
    try:
        return get_dataset(name)
    except KeyError:
        return register_csv_dataset(check_name(name, "DATASET"))


def manifest_path(params: Mapping[str, Any]) -> Path:
    """Where notebook 01 writes the MLR manifest of ``DATASET`` with ``SEED`` (``mlr/<dataset>-seed<SEED>/``: a CSV
    dataset's folder carries its own name)."""
    return output_dir(params) / "mlr" / f"{dataset_info(params['DATASET']).name}-seed{params.get('SEED', 0)}" / "manifest.json"


def split_file_param(value: Any, info, root: Path) -> str | None:
    """The split file notebook 01's ``SPLIT_FILE`` gives dataset ``info`` (whose folder is ``root``): ``""`` none (the
    protocol's seeded splits); ``torchreid`` the file torchreid keeps beside the dataset
    (:func:`~lib.data.readers.torchreid_splits.torchreid_split_file`; a dataset torchreid writes none for keeps its
    splits, printed); a path (repository-relative unless absolute); or ``{dataset: one of these}``.

    Raises:
        ValueError: a path or a dict key for a dataset that reads no split file, naming those that do.
        FileNotFoundError: the file named, or torchreid's, does not exist (naming the paths tried).
    """
    from .data.mlr_build import SPLIT_FILE_DATASETS
    from .data.readers.torchreid_splits import TORCHREID_SPLIT_FILES, torchreid_split_file

    if isinstance(value, dict):
        bad = sorted(k for k in value if k not in SPLIT_FILE_DATASETS)
        if bad:
            raise ValueError(f"SPLIT_FILE: {bad} read no split file; the keys must be among {list(SPLIT_FILE_DATASETS)}")
        value = value.get(info.name, "")
    if not value:
        return None
    if value == "torchreid":
        if info.name not in TORCHREID_SPLIT_FILES:
            print(f"note: SPLIT_FILE torchreid: torchreid writes no split file for {info.name}; its splits are the "
                  "protocol's", flush=True)
            return None
        return str(torchreid_split_file(info.name, root))
    if info.name not in SPLIT_FILE_DATASETS:
        raise ValueError(f"SPLIT_FILE: {value!r} is set for {info.name}, but only {' and '.join(SPLIT_FILE_DATASETS)} "
                         "read a split file")
    path = resolve_path(value)
    if not path.is_file():
        raise FileNotFoundError(f"SPLIT_FILE: {path} does not exist (expected a torchreid split file for {info.name})")
    return str(path)


def _check_own_folder(out: Path, info, manifest: Path) -> None:
    """A CSV dataset's MLR folder is its own: one built from another manifest under the same name is an error (the
    two would take turns rebuilding it, and their summaries one file)."""
    import json

    try:
        was = Path(json.loads((out / "manifest.json").read_text())["source"]["root"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # nothing built yet, or a folder build_mlr rebuilds anyway
    if was != manifest.parent.resolve():
        raise ValueError(f"DATASET {info.name!r}: {out} holds the CSV dataset built from {was}, not {manifest.parent}; "
                         "two CSV datasets need two names (DATASET, or their folders' names), or remove that folder")


def prepare_dataset(params: Mapping[str, Any], *, progress: bool = True) -> Path:
    """Generate (synthetic) / read (real) the dataset and build its MLR version; returns the manifest.

    Uses ``DATASET``, ``DATA_ROOT``, ``SEED`` and the :data:`DATA_DEFAULTS` keys (defaults where absent).
    """
    p = {**DATA_DEFAULTS, **params}
    validate_params(p)
    info = dataset_info(p["DATASET"])
    seed = int(p.get("SEED", 0))
    if info.name == "synthetic":
        syn = SyntheticConfig(
            num_identities=p["SYN_NUM_IDENTITIES"], num_cameras=p["SYN_NUM_CAMERAS"],
            images_per_camera=p["SYN_IMAGES_PER_CAMERA"], height=p["SYN_HEIGHT"], width=p["SYN_WIDTH"], seed=seed,
        )
        root = generate_synthetic(output_dir(p) / "data" / f"synthetic-seed{seed}", syn, progress=progress)
    else:
        if not p.get("DATA_ROOT"):
            if info.csv:  # a name that is not one of ours: most often a misspelt one
                from .data.registry import own_dataset_names

                known = ", ".join(own_dataset_names())
                raise ValueError(f"DATASET {info.name!r} is not one of the workbook's ({known}); read as a CSV "
                                 f"dataset it needs DATA_ROOT, the folder of its manifest ({info.layout})")
            raise ValueError(f"DATA_ROOT: dataset {info.name!r} needs its root folder ({info.layout})")
        root = dataset_root(p["DATA_ROOT"], info.name)
        if info.csv:
            _check_own_folder(manifest_path(p).parent, info, root)
    cfg = MLRConfig(
        dataset=info.name, seed=seed, rates=tuple(p["RATES"]), interpolation=p["INTERPOLATION"],
        antialias=p["ANTIALIAS"], num_splits=p["NUM_SPLITS"] or None,
        split_file=split_file_param(p["SPLIT_FILE"], info, Path(root)),
    )
    return build_mlr(root, manifest_path(p).parent, cfg, progress=progress)


def locate_dataset(params: Mapping[str, Any], *, progress: bool = True) -> Path:
    """The manifest notebook 01 made; if there is none yet, build it with notebook 01's defaults."""
    validate_params(params)
    path = manifest_path(params)
    return path if path.is_file() else prepare_dataset(params, progress=progress)


def splits_to_run(params: Mapping[str, Any], ds) -> list[int]:
    """``SPLITS`` limited to the splits the dataset has (Market/Duke have one); an empty result is an error."""
    wanted = [int(k) for k in params.get("SPLITS", [0])]
    splits = [k for k in wanted if 0 <= k < ds.num_splits]
    if not splits:
        raise ValueError(f"SPLITS: {wanted} requested, but {ds.name} has splits 0..{ds.num_splits - 1}")
    if len(splits) < len(wanted):
        print(f"note: {ds.name} has {ds.num_splits} split(s); running {splits}")
    return splits


#: The folders under a DATA_ROOT that ``make reproduce`` tries, per Table I dataset, in order (``.``: DATA_ROOT itself);
#: the registry's :attr:`~lib.data.registry.DatasetInfo.folders` (:mod:`lib.data.locations`).
DATASET_FOLDERS: dict[str, tuple[str, ...]] = {name: candidate_folders(name) for name in TABLE1_DATASETS}


def find_datasets(data_root: str | Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Datasets of Table I present under ``data_root`` (or ``data_root`` itself): ``(found name → root, missing name →
    every folder tried and why it was not used)`` (:func:`lib.data.locations.find_datasets`).

    A folder is accepted only if its reader accepts it, so a half-copied dataset is reported, not used.
    """
    return locations.find_datasets(resolve_path(data_root))


def dataset_root(data_root: str | Path, name: str) -> Path:
    """The folder of dataset ``name``: ``data_root`` itself if its reader accepts it, else the first folder of
    :data:`DATASET_FOLDERS` under it that it accepts — the release layout, torchreid's or fast-reid's (so ``DATA_ROOT``
    may be a dataset's folder or their parent). A CSV dataset's is its manifest (:func:`lib.data.locations.csv_manifest`).

    Raises:
        FileNotFoundError: none is accepted; the message names every folder tried.
    """
    root = resolve_path(data_root)
    info = dataset_info(name)
    return locations.csv_manifest(info.name, root) if info.csv else locations.dataset_folder(info.name, root)


# --------------------------------------------------------------------------------------------- experiments
#: The configuration of a notebook that names none (the tiny profile's).
DEFAULT_CONFIG = "configs/pshrnet/tiny.yaml"


def experiment_config(params: Mapping[str, Any], overrides: Mapping[str, Any] | None = None):
    """The typed configuration ``CONFIG`` with the notebook's ``SEED`` and ``OVERRIDES``, then ``overrides``
    (a variant's) on top. A wrong key or type names the file and the key; a bad value that an override set is
    reported as ``override KEY=VALUE``, not as coming from the configuration file."""
    validate_params(params)
    ov = {"seed": params.get("SEED", 0), **dict(params.get("OVERRIDES") or {}), **dict(overrides or {})}
    path = params.get("CONFIG", DEFAULT_CONFIG)
    cfg = load_config(path, ov)
    weights = check_weights_map(params.get("WEIGHTS") or {}, "WEIGHTS")
    if not weights:
        return cfg
    flat = flatten(jsonable(to_dict(cfg)))
    method = method_of(cfg)
    extra = {wkey: weights[flat[bkey]] for bkey, wkey in method.weights_keys
             if wkey not in ov and flat.get(bkey) in weights}  # a row or OVERRIDES naming its weights keeps them
    return load_config(path, {**ov, **extra}) if extra else cfg


def check_weights_map(weights: Mapping[str, Any], where: str) -> dict[str, str]:
    """A reproduction's weight file per backbone (``{"hrnet_w32": "file:/w/hrnetv2_w32.pth", "resnet50": …}``):
    every key a backbone name, every value a weight source (:func:`lib.models.weights.parse_weights`).

    Raises:
        ValueError: naming ``where``, the key, and the known backbones or the valid sources.
    """
    from .models.backbones import BACKBONES
    from .models.weights import parse_weights

    out = {}
    for name, source in dict(weights).items():
        if name not in BACKBONES:
            raise ValueError(f"{where}: {name!r} is not a backbone name; known: {', '.join(BACKBONES.names())}")
        if not isinstance(source, str):
            raise ValueError(f"{where}: {name}: expected a weight source string (e.g. 'file:/path.pth'), "
                             f"found {type(source).__name__} {source!r}")
        try:
            parse_weights(source)
        except ValueError as e:
            raise ValueError(f"{where}: {name}: {e}") from None
        out[name] = source
    return out


def load_weights_file(path: str | Path) -> dict[str, str]:
    """Read a YAML mapping ``backbone: weight source`` (``make reproduce WEIGHTS=file``), checked as
    :func:`check_weights_map`; relative ``file:`` paths are taken from the file's folder."""
    import yaml

    p = resolve_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"WEIGHTS: {p} does not exist (expected a YAML mapping backbone: weight source)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping backbone: weight source, found {type(data).__name__}")
    out = check_weights_map(data, str(p))
    return {k: (f"file:{(p.parent / v[5:]).resolve()}" if v.startswith("file:") and not Path(v[5:]).expanduser().is_absolute()
                else v) for k, v in out.items()}


@dataclass
class Experiment:
    """What :func:`run_experiment` ran: summaries by (variant, dataset), runs by (variant, dataset, split)."""

    method: str
    datasets: dict[str, Any] = field(default_factory=dict)
    summaries: dict[tuple[str, str], dict] = field(default_factory=dict)
    runs: dict[tuple[str, str, int], dict] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)


def run_experiment(params: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
                   outputs: Mapping[str, list[str]], *, progress: bool = True,
                   paper_variants: Mapping[str, Mapping[str, Any]] | None = None, hr_queries: bool = False) -> Experiment:
    """Train / reuse every variant on every dataset in ``DATASETS`` and split in ``SPLITS``; write the summaries.

    Args:
        variants: name → dotted overrides (on top of ``CONFIG`` + ``OVERRIDES``).
        outputs: variant name → the method outputs to produce (only the stages they need run).
        paper_variants: variant name → the overrides the paper's configuration gets for the comparison (default:
            the variant's own; differs where a profile substitutes part of a table's common setting).
        hr_queries: the outputs need HR query images (HR re-ID, Tables V and VI): a dataset whose test queries have
            no HR original (CAVIAR) is skipped, with the reason printed.
    """
    import json

    validate_params(params)
    profile = params.get("PROFILE", "tiny")
    out = output_dir(params)
    for variant in variants:  # a variant's name becomes runs/…/variants/<variant>/ and results/…/<variant>.json
        check_name(variant, "variant")
    exp = Experiment(method="")
    for variant, ov in variants.items():  # every variant's configuration is checked before anything trains
        try:
            experiment_config(params, ov)
        except ValueError as e:
            raise type(e)(f"variant {variant!r} ({dict(ov)}): {e}") from None
    for name in params.get("DATASETS", ["synthetic"]):
        ds = MLRDataset.load(locate_dataset({**params, "DATASET": name}, progress=progress))
        splits = splits_to_run(params, ds)
        if hr_queries and not all(im.has_hr_original for k in splits for im in ds.split(k).query):
            print(f"[skip] {ds.name}: its test queries have no HR original, and this table tests HR queries", flush=True)
            continue
        exp.datasets[ds.name] = ds
        for variant, ov in variants.items():
            cfg = experiment_config(params, ov)
            method = method_of(cfg)
            exp.method, exp.configs[variant] = method.name, cfg
            paper = load_config(method.paper_config, (paper_variants or {}).get(variant, ov))
            per_split: dict[str, list[dict]] = {}
            run_dirs, read = {}, set()
            for k in splits:
                metrics, runs = run_variant(method, cfg, ds=ds, split=k, root=out / "runs", variant=variant,
                                            outputs=outputs[variant], progress=progress)
                run_dirs[k] = {s: str(r.run_dir) for s, r in runs.items()}
                read |= {key for r in runs.values() for key in r.identity.get("config", {})}
                for o, m in metrics.items():  # where its per-query records are (the intervals resample them)
                    stage, key = method.outputs[o]
                    src = {"run": os.path.relpath(runs[stage].run_dir, out), "output": key, "split": k,
                           "eval": _recorded_eval(runs[stage].run_dir)}
                    per_split.setdefault(o, []).append(m | {"source": src})
                # the trained modules are freed; whoever looks at a run again reads it back from its model.pt
                exp.runs[(variant, ds.name, k)] = {s: release(r) for s, r in runs.items()}
                del runs
                free_device_memory()
            diffs = differences(method, cfg, paper, read=read)  # only what this row's stages read
            if len(splits) < ds.num_splits:
                diffs.append(f"{len(splits)} of {ds.num_splits} identity splits")
            if not D.is_main():  # under torchrun only rank 0 writes
                continue
            if D.world_size() > 1:
                diffs.append(f"trained on {D.world_size()} processes (global batch {D.world_size()} × P × K)")
            per_split = _merge_outputs(out, method.name, ds.name, variant, cfg, splits, per_split)
            path = write_summary(out, profile=profile, method=method.name, variant=variant, overrides=ov,
                                 config_file=str(params.get("CONFIG", DEFAULT_CONFIG)), cfg=cfg, ds=ds, splits=splits,
                                 per_split=per_split, runs=run_dirs, differences=diffs)
            exp.summaries[(variant, ds.name)] = json.loads(path.read_text())
    return exp


def free_device_memory() -> None:
    """Collect freed modules now and return the CUDA cache to the device (a no-op on the CPU)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _recorded_eval(run_dir: Path) -> Any:
    """The test settings a finished run was evaluated with (``metrics.json``'s ``eval``; ``None`` when unreadable)."""
    import json

    try:
        return json.loads((Path(run_dir) / "metrics.json").read_text()).get("eval")
    except (OSError, ValueError):
        return None


def _merge_outputs(out: Path, method: str, dataset: str, variant: str, cfg: Any, splits: list[int],
                   per_split: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Keep the outputs of an existing summary of the same configuration and splits that this run did not produce
    (notebook 02 writes the teacher's outputs, notebook 03 adds PS-HRNet's: neither erases the other's)."""
    import json

    from .core.config import to_dict
    from .results import summary_path
    from .utils.io import jsonable

    p = summary_path(out, method, dataset, variant)
    try:
        old = json.loads(p.read_text()) if p.is_file() else None
    except json.JSONDecodeError:
        old = None
    def what_computes(c: dict) -> dict:  # how a run executes (runtime) does not change its numbers, but for the
        rt = c.get("runtime", {}) if isinstance(c, dict) else {}  # steps it trains
        return {k: v for k, v in c.items() if k != "runtime"} | {"steps": rt.get("max_steps_per_epoch")}

    if not old or not isinstance(old.get("config"), dict) or old.get("splits") != list(splits) \
            or what_computes(old["config"]) != what_computes(jsonable(to_dict(cfg))):
        return per_split
    return {**{o: v["per_split"] for o, v in old.get("outputs", {}).items()}, **per_split}


def run_table(params: Mapping[str, Any], table: str, *, extra_outputs: list[str] = (), skip_outputs: list[str] = (),
              progress: bool = True) -> tuple[Experiment, TableSpec, list[RowSpec]]:
    """Run the variants of table spec ``table`` that ``VARIANTS`` selects (default: the spec's rows).

    ``extra_outputs`` are produced for every variant besides the rows' own (e.g. the teacher's results in notebook
    03); ``skip_outputs`` are left out (e.g. the baseline when ``RUN_BASELINE`` is off).
    """
    req = table_request(params, table, extra_outputs=extra_outputs, skip_outputs=skip_outputs)
    return run_experiment(params, req.variants, req.outputs, progress=progress, paper_variants=req.paper_variants,
                          hr_queries=req.spec.hr_queries), req.spec, req.rows


@dataclass
class TableRequest:
    """What one table asks :func:`run_experiment` to run: the spec's selected rows, each variant's overrides (the
    profile's and the paper comparison's) and the outputs each variant must produce."""

    spec: TableSpec
    rows: list[RowSpec]
    variants: dict[str, dict[str, Any]]
    outputs: dict[str, list[str]]
    paper_variants: dict[str, dict[str, Any]]


def table_request(params: Mapping[str, Any], table: str, *, extra_outputs: list[str] = (),
                  skip_outputs: list[str] = ()) -> TableRequest:
    """The variants and outputs of table spec ``table`` that ``VARIANTS`` selects (see :func:`run_table`); trains
    nothing (the plan of runs, :mod:`lib.scale.plan`, expands the same request)."""
    from .core.config import flatten, to_dict
    from .utils.io import jsonable

    spec = load_table_spec(table)
    own = method_of(experiment_config(params)).name
    if own != spec.method:  # otherwise the first variant key of the other method reads as an unknown key
        theirs = METHODS.get(spec.method)
        where = (f"one of {theirs.configs}/" if resolve_path(theirs.configs).is_dir() else
                 f"a configuration of it, such as {theirs.paper_config}")
        raise ValueError(f"CONFIG (--config) {params.get('CONFIG', DEFAULT_CONFIG)!r} is a {own!r} configuration; "
                         f"table {table!r} is a table of {spec.method!r} (give {where})")
    variants, rows = spec.select(params.get("VARIANTS") or list(spec.variants))
    rows = [r for r in rows if r.output not in skip_outputs]
    outputs = {v: list(dict.fromkeys([r.output for r in rows if r.variant == v] + list(extra_outputs))) for v in variants}
    variants = paper_variants = {v: {**spec.base, **ov} for v, ov in variants.items()}
    if spec.keep_profile:  # the profile keeps its own substitutes; the paper comparison uses the spec's values
        flat = lambda c: flatten(jsonable(to_dict(c)))  # noqa: E731
        prof, paper = flat(experiment_config(params)), flat(load_config(METHODS.get(spec.method).paper_config))
        variants = {v: spec.resolve(ov, prof, paper) for v, ov in paper_variants.items()}
    return TableRequest(spec, rows, variants, outputs, paper_variants)


def make_table(params: Mapping[str, Any], table: str, rows: list[RowSpec] | None = None):
    """Build and write the profile's table from its summaries: ``tables/<table>.md`` (the compact view, one headline
    metric), ``tables/<table>_full.md`` (every metric and paper row) and ``tables/<table>.csv``; returns
    ``(long, compact md, (csv, md, full md))``."""
    from .results.tables import compact_markdown

    spec = load_table_spec(table)
    out = output_dir(params)
    bootstrap = params.get("BOOTSTRAP", DEFAULT_B)
    if not isinstance(bootstrap, int) or isinstance(bootstrap, bool) or bootstrap < 2:
        raise ValueError(f"BOOTSTRAP: expected an integer ≥ 2 (bootstrap replicates of each interval), found {bootstrap!r}")
    long, full = build_table(spec, out, params.get("PROFILE", "tiny"), rows, bootstrap=bootstrap)
    md = compact_markdown(long, full, table)
    return long, md, write_table(long, md, out, table, full=full)


@dataclass
class TableReport:
    """What :func:`run_and_tabulate` made: the experiment, the rows shown, the table and the figures."""

    experiment: Experiment
    rows: list[RowSpec]
    long: Any
    markdown: str
    files: list[Path]
    ranking: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None  # the profile's output folder (what a table's extras write under)


def ranking(exp: Experiment, rows: list[RowSpec], metric: str = "rank1"):
    """Rows ranked by their mean ``metric`` over the datasets run (%, per-dataset means as columns)."""
    import pandas as pd

    data = {}
    for r in rows:
        for (variant, ds), rec in exp.summaries.items():
            agg = rec["outputs"].get(r.output, {}).get("aggregate", {})
            if variant == r.variant and metric in agg:
                data.setdefault(r.label, {})[ds] = 100 * agg[metric]["mean"]
    frame = pd.DataFrame(data).T
    if frame.empty:
        return frame
    frame["mean"] = frame.mean(axis=1)
    return frame.sort_values("mean", ascending=False).round(2)


# ------------------------------------------------------------------------------------- the methods side by side
def _config_for(method: str, params: Mapping[str, Any]) -> str:
    """``configs/<method>/<profile>.yaml`` for the profile the notebook's ``CONFIG`` names (its file's stem)."""
    stem = Path(str(params.get("CONFIG", DEFAULT_CONFIG))).stem
    path = Path(METHODS.get(method).configs) / f"{stem}.yaml"
    if not resolve_path(path).is_file():
        raise FileNotFoundError(f"methods table: CONFIG {params.get('CONFIG', DEFAULT_CONFIG)!r} names the profile "
                                f"{stem!r}, but method {method!r} has no {path} (each method needs a configuration "
                                "of the same profile)")
    return str(path)


def _own_method(params: Mapping[str, Any]) -> str:
    """The method of the notebook's own ``CONFIG``."""
    from .core.config import load_config_file
    from .methods import config_method

    path = resolve_path(str(params.get("CONFIG", DEFAULT_CONFIG)))
    return config_method(load_config_file(path), str(path)).name


def methods_requests(params: Mapping[str, Any], spec: Any = None
                     ) -> dict[str, tuple[dict[str, Any], dict[str, dict], dict[str, list[str]]]]:
    """``{method: (params, variants, outputs)}``: what the methods table (:mod:`lib.results.methods_table`) needs
    :func:`run_experiment` to run for each method (trains nothing; :func:`run_methods_table` and the plan of runs
    use it)."""
    from .results.methods_table import load_methods_spec

    spec = spec or load_methods_spec()
    out = {}
    for method in dict.fromkeys(r.method for r in spec.rows):
        METHODS.get(method)  # an unknown method names the registered ones
        rows = [r for r in spec.rows if r.method == method]
        variants = {r.variant: {} for r in rows}
        outputs = {v: list(dict.fromkeys(r.output for r in rows if r.variant == v)) for v in variants}
        # the notebook's OVERRIDES are dotted keys of its own method's configuration: the other methods run as
        # their profile's configuration stands
        own = method == _own_method(params)
        out[method] = ({**params, "CONFIG": _config_for(method, params)} | ({} if own else {"OVERRIDES": {}}),
                       variants, outputs)
    return out


def run_methods_table(params: Mapping[str, Any], *, progress: bool = True, spec: Any = None):
    """Run (or reuse) every methods-table row's variant on ``DATASETS`` × ``SPLITS``, then build and write
    ``tables/methods.{csv,md}`` from the finished experiments (:func:`lib.results.methods_table.methods_table`).
    Returns ``(frame, markdown, paths)``."""
    from .results.methods_table import load_methods_spec, methods_table

    spec = spec or load_methods_spec()
    requests = methods_requests(params, spec)
    exps = {method: run_experiment(p, variants, outputs, progress=progress)
            for method, (p, variants, outputs) in requests.items()}
    configs = {method: p["CONFIG"] for method, (p, _, _) in requests.items()}
    return methods_table(spec, exps, configs, params, output_dir(params))


def run_and_tabulate(params: Mapping[str, Any], table: str, *, progress: bool = True) -> TableReport:
    """A table notebook in one call: run the selected variants (:func:`run_table`), write
    ``tables/<table>.{csv,md}``, the per-split Rank-1 figure ``figures/<table>_rank1.png``, with three or more
    variants the ranking ``tables/<table>_ranking.{csv,md}`` and ``figures/<table>_ranking.png``, and the spec's
    ``extras`` (:data:`~lib.results.specs.TABLE_EXTRAS`; results in ``report.extras``)."""
    from .utils.io import atomic_write_text
    from .viz import rank1_per_split, ranking_plot, rows_by_dataset, save_figure

    exp, spec, rows = run_table(params, table, progress=progress)
    long, md, files = make_table(params, table, rows)  # md: the compact view (tables/<table>_full.md: every column)
    files = list(files)
    out = output_dir(params)
    files.append(save_figure(rank1_per_split(rows_by_dataset(exp.summaries, rows)), out / "figures" / f"{table}_rank1.png"))
    rank = ranking(exp, rows)
    if len(rank) >= 3:
        files.append(atomic_write_text(out / "tables" / f"{table}_ranking.csv", rank.to_csv()))
        text = f"# {spec.title}: variants ranked by mean Rank-1 (%) over the datasets run\n\n" + frame_markdown(rank) + "\n"
        files.append(atomic_write_text(out / "tables" / f"{table}_ranking.md", text))
        files.append(save_figure(ranking_plot(rank.drop(columns="mean")), out / "figures" / f"{table}_ranking.png"))
    report = TableReport(exp, rows, long, md, files, rank, out=output_dir(params))
    for name in spec.extras:  # e.g. Table III's per-rate quality and Fig. 5
        report.extras[name] = TABLE_EXTRAS.get(name)(params, report)
        report.files += list(getattr(report.extras[name], "files", []))
    return report


def stage_histories(exp: Experiment, stage: str, variant: str = "default") -> dict[str, list[dict]]:
    """``{"<dataset> split <k>": history records}`` of one stage of a variant (read from each run's history.json)."""
    import json

    out = {}
    for (v, ds, k), runs in exp.runs.items():
        p = runs[stage].run_dir / "history.json" if stage in runs else None
        if v == variant and p is not None and p.is_file():
            out[f"{ds} split {k}"] = json.loads(p.read_text())
    return out


def results_frame(exp: Experiment, labels: Mapping[str, str] | None = None):
    """Mean ± std (%) of every output of every variant and dataset (rows) for the metrics the protocol has."""
    import pandas as pd

    from .metrics import format_mean_std

    rows = []
    for (variant, ds), rec in exp.summaries.items():
        metrics = ["rank1", "rank5", "rank10"] + (["mAP"] if rec["protocol"] == "multi_shot" else [])
        for o, v in rec["outputs"].items():
            rows.append({"dataset": ds, "variant": variant, "output": (labels or {}).get(o, o),
                         **{m: format_mean_std(v["aggregate"][m]) for m in metrics if m in v["aggregate"]}})
    return pd.DataFrame(rows)


from .results import restoration_report as _restoration_report  # noqa: E402,F401  (registers the "restoration" extra)
from .results import sr_signal_report as _sr_signal_report  # noqa: E402,F401  (registers the "sr_signal" extra)
