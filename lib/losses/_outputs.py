"""Access to the named parts of a re-ID model output (``seq1``..``seq5``, ``feat``, ``logits``).

The losses accept the :class:`lib.models.ReIDOutput` named tuple, or any mapping / object with
``seq`` (list of tensors ``Seq^(1..5)``), ``feat`` (``ℓ_f``) and ``logits`` (``ℓ_c``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["SEQ_NAMES", "get_field", "get_part"]

SEQ_NAMES: tuple[str, ...] = ("seq1", "seq2", "seq3", "seq4", "seq5")


def get_field(output: Any, name: str) -> Any:
    """The field ``name`` of a model output (a mapping or an object); a missing one names what there is."""
    if isinstance(output, Mapping):
        if name not in output:
            raise KeyError(f"model output has no {name!r} (keys: {sorted(output)})")
        return output[name]
    if not hasattr(output, name):
        raise KeyError(f"model output {type(output).__name__} has no attribute {name!r}")
    return getattr(output, name)


def get_part(output: Any, name: str) -> torch.Tensor:
    """The tensor called ``name`` in a model output.

    ``'seqN'`` is ``output.seq[N-1]`` (``Seq^(N)``), ``'logits'`` is ``ℓ_c`` and ``'feat'``
    is ``ℓ_f``.
    """
    if name.startswith("seq") and name[3:].isdigit():
        seq = get_field(output, "seq")
        idx = int(name[3:]) - 1
        if not 0 <= idx < len(seq):
            raise KeyError(
                f"{name!r}: the model output has {len(seq)} sequence(s) "
                f"(valid: {', '.join(f'seq{i + 1}' for i in range(len(seq)))})"
            )
        return seq[idx]
    if name in ("logits", "feat"):
        return get_field(output, name)
    raise KeyError(f"unknown output part {name!r}")
