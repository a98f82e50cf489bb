"""Per-(method, variant, dataset) summaries: ``results/<method>/<dataset>/<variant>.json`` under a profile's folder.

A summary holds, for every output of the variant (e.g. ``pshrnet``, ``teacher_lr``, ``baseline``), the mean ±
sample standard deviation over the splits run and the per-split metrics, plus what makes the numbers traceable:
the manifest and its hash, the seed, the splits, the configuration file and overrides, the full configuration,
its differences from the paper's, and the run folder of every stage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.config import to_dict
from ..metrics import aggregate_splits
from ..utils.io import atomic_write_json
from ..utils.paths import check_name

__all__ = ["summary_path", "write_summary", "load_summaries", "aggregate"]


def summary_path(out_dir: str | os.PathLike, method: str, dataset: str, variant: str) -> Path:
    """``<out_dir>/results/<method>/<dataset>/<variant>.json``; each name must be a plain name
    (:func:`~lib.utils.paths.check_name`), so a summary is never written outside ``out_dir``."""
    return (Path(out_dir) / "results" / check_name(method, "method") / check_name(dataset, "dataset")
            / f"{check_name(variant, 'variant')}.json")


def aggregate(results: list[dict]) -> dict:
    """Mean ± sample std over splits of the ranks every split reaches (Rank-20 needs ≥ 20 gallery ids)."""
    reach = min(len(r["cmc"]) for r in results)
    return aggregate_splits(results, ranks=[k for k in (1, 5, 10, 20) if k <= reach], ddof=1 if len(results) > 1 else 0)


def write_summary(out_dir: str | os.PathLike, *, profile: str, method: str, variant: str, overrides: Mapping[str, Any],
                  config_file: str, cfg: Any, ds: Any, splits: list[int], per_split: Mapping[str, list[dict]],
                  runs: Mapping[int, Mapping[str, str]], differences: list[str]) -> Path:
    """Write one summary atomically (see the module docstring); ``per_split``: output → one metrics dict per split."""
    rec = {
        "profile": profile, "method": method, "variant": variant, "config_file": config_file,
        "overrides": dict(overrides), **ds.provenance(), "protocol": ds.eval_protocol, "splits": list(splits),
        "seed": cfg.seed, "config": to_dict(cfg), "differences": list(differences),
        "std": "sample standard deviation over splits (ddof=1; 0 for a single split)",
        "outputs": {o: {"aggregate": aggregate(r), "per_split": r} for o, r in per_split.items() if r},
        "runs": {str(k): dict(v) for k, v in runs.items()},
    }
    return atomic_write_json(summary_path(out_dir, method, ds.name, variant), rec)


def load_summaries(out_dir: str | os.PathLike, method: str | None = None) -> dict[tuple[str, str, str], dict]:
    """Every summary of a profile: ``(method, variant, dataset) -> record`` (optionally of one method)."""
    out = {}
    for p in sorted((Path(out_dir) / "results").glob("*/*/*.json")):
        if method is not None and p.parts[-3] != method:
            continue
        try:
            rec = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{p} is not valid JSON ({e}); re-run the notebook that wrote it") from None
        rec["_path"] = str(p)
        out[(rec["method"], rec["variant"], rec["dataset"])] = rec
    return out
