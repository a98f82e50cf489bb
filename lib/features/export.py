"""A finished run's test as a feature file: its split's queries and gallery through the run's own test paths.

The run is loaded with :func:`lib.inference.load_run` (found as ``python -m lib.rank`` finds it,
:func:`lib.rank.resolve_run`), its output's :class:`~lib.inference.Matcher` embeds the split's queries — the LR
queries as stored (PS-HRNet's through G, FTWA's through the LR stream and T …), or the HR originals for an output
tested on HR queries (``teacher_hr``) — and its gallery, exactly as the run's test did; the matcher's
:meth:`~lib.inference.Matcher.feature_arrays` gives the arrays and the distance that reproduces its distances bit for
bit. With the dataset's protocol (single-shot: the run's ``test.num_repeats`` and seed), evaluating the file gives
the Rank-1, mAP and CMC in the run's ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..inference import QuerySource, RunLoadError, load_run
from ..utils.progress import bars_off
from .format import FORMAT, FeatureFile

__all__ = ["RECORDED", "find_stage", "export_run"]

#: The recorded metrics a file's ``run`` carries (those the run has).
RECORDED = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def find_stage(run: str | Path, split: int | None = None) -> tuple[Path, str | None]:
    """``(stage folder, output or None)`` of ``run``: a stage folder, a variant's link to one, a variant's split
    folder (its last stage, as :func:`lib.rank.resolve_run`), or a variant folder holding ``split<K>`` with
    ``split=K``."""
    from ..rank import resolve_run

    p = Path(run)
    if split is not None and (p / f"split{split}").is_dir():
        p = p / f"split{split}"
    elif p.is_dir() and any(c.name.startswith("split") and c.name[5:].isdigit() for c in p.iterdir() if c.is_dir()):
        have = sorted(c.name for c in p.iterdir() if c.is_dir() and c.name.startswith("split"))
        want = "pass --split K" if split is None else f"it has no split{split}"
        raise RunLoadError(f"--run {p}: a variant folder holding {', '.join(have)}; {want}")
    return resolve_run(p)


def export_run(run: str | Path, *, split: int | None = None, output: str | None = None,
               progress: bool = True) -> FeatureFile:
    """The feature file of a finished run's test on its split (see the module docstring).

    Args:
        run: a run folder (:func:`find_stage`).
        split: the identity split; must be the run's own (its other splits' test identities may be among its
            training identities). ``None``: the run's.
        output: the method output (default: the stage's main one, as ``python -m lib.rank``).

    Raises:
        RunLoadError: not a finished run, another split than the run's, an output the stage does not produce, or a
            method whose matcher cannot write arrays.
    """
    stage_dir, default_output = find_stage(run, split)
    loaded = load_run(stage_dir)
    own = int(loaded.identity["split"])
    if split is not None and split != own:
        raise RunLoadError(f"--split {split}: the run {loaded.run_dir} was trained and tested on split {own} (the "
                           f"test identities of split {split} may be among its training identities); pass --split "
                           f"{own} or the run of split {split}")
    m = loaded.matcher(output or default_output)
    key = loaded.method.outputs[m.name][1]
    source = QuerySource(1) if key == "hr" else QuerySource()  # an HR-query test: the HR originals as stored
    sp = loaded.split()
    with tqdm(total=2, desc=f"export {loaded.method.name}/{m.name}", disable=bars_off(progress), leave=False) as bar:
        bar.set_postfix_str(f"{len(sp.query)} queries")
        q = m.embed_queries(sp.query, source)
        bar.update()
        bar.set_postfix_str(f"{len(sp.gallery)} gallery images")
        g = m.embed_gallery(sp.gallery)
        bar.update()
    try:
        qf, gf, metric = m.feature_arrays(q, g)
    except NotImplementedError as e:
        raise RunLoadError(f"{loaded.run_dir}: {e}") from None
    recorded = loaded.metrics.get(key, {})
    protocol = recorded.get("protocol") or loaded.dataset().eval_protocol
    proto: dict[str, Any] = {"name": protocol}
    if protocol == "single_shot":
        proto |= {"num_repeats": int(loaded.cfg.test.num_repeats), "seed": int(loaded.cfg.seed)}
    labels = lambda ims, a: np.array([getattr(im, a) for im in ims], dtype=np.int64)  # noqa: E731
    info = {"format": FORMAT, "method": loaded.method.name, "stage": loaded.stage, "output": m.name, "queries": key,
            "split": own, "run_dir": str(loaded.run_dir), "data": loaded.record.get("data", {}),
            "identity": loaded.identity, "recorded": {k: recorded[k] for k in RECORDED if k in recorded}}
    return FeatureFile(
        qf=qf, gf=gf, q_pids=labels(sp.query, "pid"), g_pids=labels(sp.gallery, "pid"),
        q_camids=labels(sp.query, "camid"), g_camids=labels(sp.gallery, "camid"),
        q_paths=np.array([str(im.hr_path if source.rate == 1 else im.path) for im in sp.query]),
        g_paths=np.array([str(im.hr_path) for im in sp.gallery]), metric=metric, protocol=proto, run=info)
