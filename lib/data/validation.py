"""Validation identities carved from a split's training identities, for choosing hyper-parameters.

Test identities are looked at only for the final report: every setting of the ``cpu`` profile was chosen
on a :class:`ValidationView`, which hides the test identities completely. For split ``k`` it draws
``num_ids`` of the split's training identities (seeded by ``(seed, k)``); the remaining training
identities train, the drawn ones are tested with the dataset's own rule (query = LR images, gallery = HR
images, same evaluation protocol).

A view behaves like the :class:`~lib.data.MLRDataset` it wraps (``split``, ``name``, ``eval_protocol``,
``provenance`` …), so every training function runs on it unchanged; its ``fingerprint`` (part of every
run's identity) differs from the full dataset's, so validation runs never reuse test runs or vice versa.
"""

from __future__ import annotations

import numpy as np

from ..utils.io import sha256_bytes
from .mlr_dataset import MLRDataset, Split

__all__ = ["ValidationView"]


class ValidationView:
    """``ds`` with ``num_ids`` training identities of every split held out as that split's test set.

    Args:
        ds: the MLR dataset.
        num_ids: validation identities per split (e.g. 60 of VIPeR's 316 training identities).
        seed: which identities are drawn.

    Raises:
        ValueError: when ``num_ids`` leaves fewer than 2 training identities or a validation set without
            LR query or HR gallery images.
    """

    def __init__(self, ds: MLRDataset, num_ids: int, seed: int = 0):
        if int(num_ids) != num_ids or num_ids < 2:
            raise ValueError(f"ValidationView: num_ids must be an integer ≥ 2, found {num_ids!r}")
        self.ds, self.num_ids, self.val_seed = ds, int(num_ids), int(seed)
        self.fingerprint = sha256_bytes(f"{ds.fingerprint}/validation/{self.num_ids}/{self.val_seed}".encode())

    def __getattr__(self, name):  # everything else is the wrapped dataset's
        if name == "ds":  # not set yet (copy / unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.ds, name)

    def validation_ids(self, i: int) -> list[int]:
        """The identities split ``i`` holds out (sorted)."""
        pids = sorted({im.pid for im in self.ds.split(i).train})
        if self.num_ids > len(pids) - 2:
            raise ValueError(
                f"ValidationView: {self.num_ids} validation identities requested, but split {i} of {self.ds.name} "
                f"has {len(pids)} training identities (at least 2 must remain for training)"
            )
        rng = np.random.default_rng([self.val_seed, i])
        return sorted(int(p) for p in rng.choice(pids, size=self.num_ids, replace=False))

    def split(self, i: int = 0) -> Split:
        """Split ``i`` with its test identities removed: train = the rest, query/gallery = validation ids."""
        full = self.ds.split(i)
        val = set(self.validation_ids(i))
        held = [im for im in full.train if im.pid in val]
        query = [im for im in held if im.res == "lr"]
        gallery = [im for im in held if im.res == "hr"]
        if not query or not gallery:
            raise ValueError(
                f"ValidationView: the validation identities of split {i} have {len(query)} LR (query) and "
                f"{len(gallery)} HR (gallery) images; both are needed"
            )
        return Split(i, [im for im in full.train if im.pid not in val], query, gallery)

    def provenance(self) -> dict:
        return self.ds.provenance() | {
            "manifest_sha256": self.fingerprint,
            "validation": {"num_ids": self.num_ids, "seed": self.val_seed,
                           "of_manifest_sha256": self.ds.fingerprint,
                           "note": "validation identities carved from the training identities; no test identity used"},
        }
