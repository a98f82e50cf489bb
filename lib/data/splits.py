"""Seeded random identity splits (VIPeR 316/316, CAVIAR 25/25, CUHK03 1367/100, CSV by fraction)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["random_identity_splits"]


def random_identity_splits(
    pids: Sequence[int], num_train: int, num_test: int, num_splits: int, seed: int
) -> list[tuple[list[int], list[int]]]:
    """Draw ``num_splits`` disjoint train/test identity splits.

    Split ``i`` permutes the sorted identities with ``np.random.default_rng([seed, i])`` and takes the first
    ``num_train`` as training and the next ``num_test`` as test identities, so split ``i`` does not depend
    on how many splits are drawn.

    Returns:
        A list of ``(train_pids, test_pids)``, each sorted.
    """
    ids = np.array(sorted(set(int(p) for p in pids)), dtype=np.int64)
    if num_train < 1 or num_test < 1:
        raise ValueError(f"identity split: need ≥ 1 train and test identity, got {num_train}/{num_test}")
    if num_train + num_test > len(ids):
        raise ValueError(
            f"identity split: {num_train} train + {num_test} test identities requested, "
            f"but the dataset has only {len(ids)} identities (set num_train_ids / num_test_ids)"
        )
    if num_splits < 1:
        raise ValueError(f"identity split: num_splits must be ≥ 1, got {num_splits}")
    out = []
    for i in range(num_splits):
        perm = np.random.default_rng([seed, i]).permutation(ids)
        out.append((sorted(perm[:num_train].tolist()), sorted(perm[num_train : num_train + num_test].tolist())))
    return out
