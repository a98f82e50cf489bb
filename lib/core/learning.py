"""A run that learns nothing must say so: identity losses that stay at chance level.

A classifier over C identities that has learnt nothing predicts them uniformly, and its cross entropy is ln C, label
smoothing or not. A stage declares, per history column of an identity loss, its chance level (PS-HRNet's L_ID:
``loss_ce`` = ln C; FTWA's L^Cls_SWA, Eq. (5): ``loss_cls`` = 2 ln C, an HR-image and an LR-image pair per batch). A
run whose loss is within :data:`TOLERANCE` of that level over its last :data:`PATIENCE` epochs — or more — is *not
learning*: :func:`not_learning` says which term, at what value against what chance level, for how many epochs.
:func:`lib.core.runs.run_stage` records the verdict in every output's metrics (``not_learning``), prints it, and the
tables mark such rows (:mod:`lib.results.tables`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["PATIENCE", "TOLERANCE", "not_learning", "chance_ce"]

#: Epochs at chance level, counted back from the last one, that make a run "not learning".
PATIENCE = 5
#: "At chance level": the loss is at least (1 - TOLERANCE) × the chance level.
TOLERANCE = 0.05


def chance_ce(num_classes: int, groups: int = 1) -> float:
    """Cross entropy of a uniform prediction over ``num_classes`` identities, summed over ``groups`` terms."""
    return groups * math.log(max(int(num_classes), 1))


def not_learning(history: Sequence[Mapping], chance: Mapping[str, float], *, patience: int = PATIENCE,
                 tolerance: float = TOLERANCE) -> str | None:
    """Why a run is not learning, or ``None``: the first term of ``chance`` (history column → chance level) whose
    value stayed at ≥ (1 − ``tolerance``) × its chance level over the last ``patience`` epochs or more. A run with
    fewer epochs than ``patience``, or without the column, is not judged."""
    for key, level in chance.items():
        values = [float(h[key]) for h in history if key in h and h[key] is not None and h[key] != ""]
        if level <= 0 or len(values) < patience:
            continue
        run = 0
        for v in reversed(values):
            if not (v >= (1 - tolerance) * level):  # NaN counts as not at chance (it is another failure)
                break
            run += 1
        if run >= patience:
            return (f"{key} stayed at chance level for its last {run} of {len(values)} epochs ({values[-1]:.3f} at the "
                    f"last, chance {level:.3f}): the identity classifier learnt nothing")
    return None
