"""A run that learns nothing must say so: identity losses that stay at chance level.

A classifier over C identities that has learnt nothing predicts them uniformly, and its cross entropy is ln C, label
smoothing or not. A stage declares, per history column of an identity loss, its chance level: a number (PS-HRNet's
L_ID: ``loss_ce`` = ln C) or the name of another history column that holds it per epoch (FTWA's L^Cls_SWA, Eq. (5),
sums ln C over the image groups each batch has: ``loss_cls`` against ``loss_cls_chance``; each of its classifiers on
each image group is judged on its own as well, ``loss_ce_hr`` … ``loss_ce_lr_p`` against ln C, so a stream whose SWA
weight collapsed is caught while the weighted sum still falls). A run whose loss has not fallen below its chance
level — it stays at least (1 − :data:`TOLERANCE`) × that level over its last :data:`PATIENCE` epochs or more — is *not
learning*: its classifier does no better than a uniform guess (a stream left untrained drifts above ln C as the shared
features change under the other losses). :func:`not_learning` says which term, at what value against what level,
for how many epochs.
:func:`lib.core.runs.run_stage` records the verdict in every output's metrics (``not_learning``), prints it, and the
tables mark such rows (:mod:`lib.results.tables`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["PATIENCE", "TOLERANCE", "not_learning", "chance_ce"]

#: Epochs at chance level, counted back from the last one, that make a run "not learning".
PATIENCE = 5
#: "Not below chance": the loss is at least (1 − TOLERANCE) × the chance level (per-epoch losses of a run that learns
#: nothing wander by a few per cent with the batches; one that learns falls far below).
TOLERANCE = 0.10


def chance_ce(num_classes: int, groups: int = 1) -> float:
    """Cross entropy of a uniform prediction over ``num_classes`` identities, summed over ``groups`` terms."""
    return groups * math.log(max(int(num_classes), 1))


def _number(h: Mapping, key: str) -> float | None:
    v = h.get(key)
    try:
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return None


def not_learning(history: Sequence[Mapping], chance: Mapping[str, float | str], *, patience: int = PATIENCE,
                 tolerance: float = TOLERANCE) -> str | None:
    """Why a run is not learning, or ``None``: the first term of ``chance`` (history column → chance level, or the
    history column holding it) at or above (1 − ``tolerance``) × its level over the last ``patience`` epochs or more.
    A run with fewer epochs than ``patience``, or without the columns, is not judged."""
    for key, level in chance.items():
        pairs = [(_number(h, key), level if not isinstance(level, str) else _number(h, level)) for h in history]
        pairs = [(v, c) for v, c in pairs if v is not None and c is not None]
        if len(pairs) < patience:
            continue
        run = 0
        for v, c in reversed(pairs):
            if not (c > 0 and v >= (1 - tolerance) * c):  # NaN fails the test: another failure, not this one
                break
            run += 1
        if run >= patience:
            v, c = pairs[-1]
            return (f"{key} did not fall below chance level in its last {run} of {len(pairs)} epochs ({v:.3f} at the "
                    f"last, chance {c:.3f}): the identity classifier does no better than a uniform guess")
    return None
