"""The notebooks' glue: parameters → configurations, where runs live, and per-dataset summaries.

Every notebook declares UPPER_CASE parameters; this module is the one place that turns them into the
library's configurations (:class:`~lib.data.MLRConfig`, :class:`~lib.pshrnet.PSHRNetConfig`), so the
notebooks, ``make`` targets and tests all agree on what a parameter means.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .data import MLRConfig, build_mlr, get_dataset
from .data.synthetic import SyntheticConfig, generate_synthetic
from .engine.trainer import OptimConfig
from .losses import LossConfig
from .metrics import aggregate_splits
from .pshrnet import PSHRNetConfig
from .utils.io import atomic_write_json
from .utils.paths import resolve_path

__all__ = [
    "DATA_DEFAULTS",
    "PARAM_TYPES",
    "validate_params",
    "output_dir",
    "manifest_path",
    "prepare_dataset",
    "locate_dataset",
    "pshrnet_config",
    "run_dir",
    "splits_to_run",
    "summarize",
    "DATASET_FOLDERS",
    "find_datasets",
]

#: The type of every notebook parameter (a test checks each notebook's defaults against it): ``int``, ``float``
#: (an int is accepted), ``bool``, ``str``, ``list[int]``, ``list[str]``, or ``"int|str"`` style unions.
PARAM_TYPES: dict[str, str] = {
    "PROFILE": "str", "OUTPUT_ROOT": "str", "DATASET": "str", "DATA_ROOT": "str", "SEED": "int", "RATES": "list[int]",
    "INTERPOLATION": "str", "ANTIALIAS": "bool", "NUM_SPLITS": "int", "SYN_NUM_IDENTITIES": "int",
    "SYN_NUM_CAMERAS": "int", "SYN_IMAGES_PER_CAMERA": "int", "SYN_HEIGHT": "int", "SYN_WIDTH": "int",
    "GRID_IDENTITIES": "int", "SPLITS": "list[int]", "BACKBONE": "str", "WEIGHTS": "str", "POOLING": "str",
    "HEIGHT": "int", "WIDTH": "int", "P": "int", "K": "int", "PHASE1_EPOCHS": "int", "PHASE1_LR": "float",
    "STEP_SIZE": "int", "GAMMA": "float", "WARMUP_EPOCHS": "int", "WARMUP_LR": "float", "OPTIMIZER": "str",
    "MILESTONES": "list[int]", "WARMUP_MODE": "str", "PAD": "int", "RANDOM_ERASING": "float", "TEST_FEATURE": "str",
    "NESTEROV": "bool", "MOMENTUM": "float", "WEIGHT_DECAY": "float", "MARGIN": "float", "LAMBDA_CE": "float",
    "LAMBDA_BH": "float", "LABEL_SMOOTH": "float", "TRIPLET_REDUCTION": "str", "FLIP_TEST": "bool", "PRECISION": "str",
    "DEVICE": "str", "MAX_STEPS_PER_EPOCH": "int", "NUM_REPEATS": "int", "PHASE2_WARMUP_EPOCHS": "int",
    "PHASE2_MILESTONES": "list[int]", "PHASE2_WARMUP_MODE": "str", "PHASE2_OPTIMIZER": "str", "BASELINE_LR": "float",
    "NATIVE_LR": "bool", "SR_DEPTH": "int", "SR_WIDTH": "int", "SR_REDUCTION": "int", "PHASE2_EPOCHS": "int",
    "PHASE2_LR": "float", "PHASE2_LR_SR": "float", "PAIR_MODE": "str", "LAMBDA_SR": "float", "LAMBDA_PS": "float",
    "PS_COMPONENTS": "list[str]", "STUDENT_INIT": "str", "RUN_BASELINE": "bool", "BASELINE_EPOCHS": "int",
    "NUM_EXAMPLES": "int", "CHANNELS_LAST": "bool|str", "NUM_WORKERS": "int", "EVAL_BATCH_SIZE": "int", "MAX_LOSS": "float",
}


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
    return isinstance(value, str)


def validate_params(params: Mapping[str, Any], *, where: str = "parameters") -> None:
    """Check every known parameter's type (:data:`PARAM_TYPES`); raise ``TypeError`` naming the key, the
    expected type and the value found. Unknown keys are the notebooks' business (papermill checks them)."""
    for key, value in params.items():
        spec = PARAM_TYPES.get(key)
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
    "SYN_NUM_IDENTITIES": 24,
    "SYN_NUM_CAMERAS": 3,
    "SYN_IMAGES_PER_CAMERA": 2,
    "SYN_HEIGHT": 128,
    "SYN_WIDTH": 64,
}


def output_dir(params: Mapping[str, Any]) -> Path:
    """``OUTPUT_ROOT/PROFILE`` (repository-relative unless absolute)."""
    return resolve_path(params.get("OUTPUT_ROOT", "outputs")) / params.get("PROFILE", "tiny")


def manifest_path(params: Mapping[str, Any]) -> Path:
    """Where notebook 01 writes the MLR manifest of ``DATASET`` with ``SEED``."""
    return output_dir(params) / "mlr" / f"{get_dataset(params['DATASET']).name}-seed{params.get('SEED', 0)}" / "manifest.json"


def prepare_dataset(params: Mapping[str, Any], *, progress: bool = True) -> Path:
    """Generate (synthetic) / read (real) the dataset and build its MLR version; returns the manifest.

    Uses ``DATASET``, ``DATA_ROOT``, ``SEED`` and the :data:`DATA_DEFAULTS` keys (defaults where absent).
    """
    p = {**DATA_DEFAULTS, **params}
    validate_params(p)
    info = get_dataset(p["DATASET"])
    seed = int(p.get("SEED", 0))
    if info.name == "synthetic":
        syn = SyntheticConfig(
            num_identities=p["SYN_NUM_IDENTITIES"], num_cameras=p["SYN_NUM_CAMERAS"],
            images_per_camera=p["SYN_IMAGES_PER_CAMERA"], height=p["SYN_HEIGHT"], width=p["SYN_WIDTH"], seed=seed,
        )
        root = generate_synthetic(output_dir(p) / "data" / f"synthetic-seed{seed}", syn, progress=progress)
    else:
        if not p.get("DATA_ROOT"):
            raise ValueError(f"DATA_ROOT: dataset {info.name!r} needs its root folder ({info.layout})")
        root = resolve_path(p["DATA_ROOT"])
    cfg = MLRConfig(
        dataset=info.name, seed=seed, rates=tuple(p["RATES"]), interpolation=p["INTERPOLATION"],
        antialias=p["ANTIALIAS"], num_splits=p["NUM_SPLITS"] or None,
    )
    return build_mlr(root, manifest_path(p).parent, cfg, progress=progress)


def locate_dataset(params: Mapping[str, Any], *, progress: bool = True) -> Path:
    """The manifest notebook 01 made; if there is none yet, build it with notebook 01's defaults."""
    validate_params(params)
    path = manifest_path(params)
    return path if path.is_file() else prepare_dataset(params, progress=progress)


# parameter → PSHRNetConfig field
_MODEL_KEYS = {
    "BACKBONE": "backbone", "WEIGHTS": "weights", "POOLING": "pooling", "SR_DEPTH": "sr_depth", "SR_WIDTH": "sr_width",
    "SR_REDUCTION": "sr_reduction", "STUDENT_INIT": "student_init", "HEIGHT": "height", "WIDTH": "width",
    "P": "num_identities", "K": "num_instances", "PAIR_MODE": "pair_mode", "RATES": "rates", "FLIP_TEST": "flip_test",
    "NUM_REPEATS": "num_repeats", "EVAL_BATCH_SIZE": "eval_batch_size", "DEVICE": "device", "PRECISION": "precision",
    "CHANNELS_LAST": "channels_last", "SEED": "seed", "NUM_WORKERS": "num_workers", "PAD": "pad",
    "RANDOM_ERASING": "random_erasing", "NATIVE_LR": "native_lr", "TEST_FEATURE": "test_feature", "MAX_LOSS": "max_loss",
}
_OPTIM_SHARED = {"OPTIMIZER": "optimizer", "WARMUP_MODE": "warmup_mode", "MILESTONES": "milestones", "STEP_SIZE": "step_size", "GAMMA": "gamma", "WARMUP_EPOCHS": "warmup_epochs", "WARMUP_LR": "warmup_lr",
                 "MOMENTUM": "momentum", "NESTEROV": "nesterov", "WEIGHT_DECAY": "weight_decay"}
_LOSS_KEYS = {"LAMBDA_CE": "lambda_ce", "LAMBDA_BH": "lambda_bh", "MARGIN": "margin", "LABEL_SMOOTH": "label_smooth",
              "TRIPLET_REDUCTION": "triplet_reduction", "LAMBDA_SR": "lambda_sr", "LAMBDA_PS": "lambda_ps",
              "PS_COMPONENTS": "ps_components"}


def pshrnet_config(params: Mapping[str, Any]) -> PSHRNetConfig:
    """Build a :class:`PSHRNetConfig` from notebook parameters (absent keys keep the paper defaults).

    ``CHANNELS_LAST`` is ``"auto"``, ``True`` or ``False``; ``MAX_STEPS_PER_EPOCH`` 0 means whole epochs;
    ``BASELINE_EPOCHS`` 0 means phase-1 + phase-2 epochs (the same number of epochs as PS-HRNet's two phases);
    ``BASELINE_LR`` 0 means ``PHASE1_LR`` (the baseline starts from the same weights as phase 1).
    The optimiser and schedule keys (``OPTIMIZER``, ``MILESTONES``, ``WARMUP_EPOCHS`` …) apply to every phase;
    ``PHASE2_<KEY>`` (e.g. ``PHASE2_WARMUP_EPOCHS``, ``PHASE2_MILESTONES``) overrides one for phase 2 only (-1: not overridden).
    """
    validate_params(params)
    kw: dict[str, Any] = {f: params[k] for k, f in _MODEL_KEYS.items() if k in params}
    if "RATES" in kw:
        kw["rates"] = tuple(kw["rates"])
    kw["max_steps_per_epoch"] = int(params.get("MAX_STEPS_PER_EPOCH", 0)) or None
    shared = {f: params[k] for k, f in _OPTIM_SHARED.items() if k in params}
    d = OptimConfig()
    e1 = int(params.get("PHASE1_EPOCHS", d.epochs))
    e2 = int(params.get("PHASE2_EPOCHS", d.epochs))
    kw["phase1"] = OptimConfig(epochs=e1, lr=params.get("PHASE1_LR", d.lr), **shared)
    shared2 = shared | {f: params[f"PHASE2_{k}"] for k, f in _OPTIM_SHARED.items() if params.get(f"PHASE2_{k}", -1) != -1}
    kw["phase2"] = OptimConfig(epochs=e2, lr=params.get("PHASE2_LR", d.lr), lr_sr=params.get("PHASE2_LR_SR", d.lr_sr), **shared2)
    kw["baseline"] = OptimConfig(epochs=int(params.get("BASELINE_EPOCHS", 0)) or e1 + e2,
                                 lr=params.get("BASELINE_LR", 0.0) or params.get("PHASE1_LR", d.lr), **shared)
    kw["loss"] = LossConfig(**{f: params[k] for k, f in _LOSS_KEYS.items() if k in params})
    return PSHRNetConfig(**kw)


def splits_to_run(params: Mapping[str, Any], ds) -> list[int]:
    """``SPLITS`` limited to the splits the dataset has (Market/Duke have one); an empty result is an error."""
    wanted = [int(k) for k in params.get("SPLITS", [0])]
    splits = [k for k in wanted if 0 <= k < ds.num_splits]
    if not splits:
        raise ValueError(f"SPLITS: {wanted} requested, but {ds.name} has splits 0..{ds.num_splits - 1}")
    if len(splits) < len(wanted):
        print(f"note: {ds.name} has {ds.num_splits} split(s); running {splits}")
    return splits


def run_dir(params: Mapping[str, Any], split: int, phase: str) -> Path:
    """``OUTPUT_ROOT/PROFILE/runs/<dataset>/split<k>/<phase>``."""
    return output_dir(params) / "runs" / get_dataset(params["DATASET"]).name / f"split{split}" / phase


def summarize(params: Mapping[str, Any], ds, results: Mapping[str, list[dict]], cfg: PSHRNetConfig,
              splits: list[int], reductions: list[str] | None = None) -> Path:
    """Write ``metrics/<dataset>_pshrnet.json``: per method, mean ± std over splits and the per-split values.

    Args:
        results: method name (``pshrnet``, ``baseline``, ``teacher_hr`` …) → one metrics dict per split.
        reductions: how this profile differs from the paper's setting (shown above every table).
    """
    out = {
        "profile": params.get("PROFILE", "tiny"),
        **ds.provenance(),
        "protocol": ds.eval_protocol,
        "splits": list(splits),
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "reductions": list(reductions or []),
        "std": "sample standard deviation over splits (ddof=1; 0 for a single split)",
        "methods": {m: {"aggregate": _aggregate(r), "per_split": r} for m, r in results.items() if r},
    }
    return atomic_write_json(output_dir(params) / "metrics" / f"{ds.name}_pshrnet.json", out)


def _aggregate(results: list[dict]) -> dict:
    """Mean ± sample std over splits of the ranks every split reaches (Rank-20 needs ≥ 20 gallery ids)."""
    reach = min(len(r["cmc"]) for r in results)
    return aggregate_splits(results, ranks=[k for k in (1, 5, 10, 20) if k <= reach], ddof=1 if len(results) > 1 else 0)


#: Folder names under a DATA_ROOT that ``make reproduce-table1`` looks for, per dataset (first match wins).
DATASET_FOLDERS: dict[str, tuple[str, ...]] = {
    "market1501": ("Market-1501-v15.09.15", "Market-1501", "market1501"),
    "cuhk03": ("cuhk03", "CUHK03", "cuhk03_release"),
    "viper": ("VIPeR", "viper", "VIPeR.v1.0"),
    "dukemtmc": ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmc"),
    "caviar": ("CAVIAR4REID", "caviar4reid", "CAVIAR"),
}


def find_datasets(data_root: str | Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Datasets of Table I present under ``data_root``: ``(found name → root, missing name → reason)``.

    A folder is accepted only if its reader accepts it, so a half-copied dataset is reported, not used.
    """
    data_root = resolve_path(data_root)
    found, missing = {}, {}
    for name, folders in DATASET_FOLDERS.items():
        candidates = [data_root / f for f in folders if (data_root / f).is_dir()]
        if not candidates:
            missing[name] = f"none of {', '.join(folders)} under {data_root}"
            continue
        try:
            get_dataset(name).read(candidates[0])
        except (ValueError, OSError) as e:
            missing[name] = f"{candidates[0]} is not readable as {name}: {str(e).splitlines()[0]}"
            continue
        found[name] = candidates[0]
    return found, missing
