"""Seeded random identity splits (VIPeR 316/316, CAVIAR 25/25, CUHK03 1367/100, CSV by fraction)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np

__all__ = ["random_identity_splits", "identity_overlap"]


def identity_overlap(train: Iterable[tuple[Hashable, object]], test: Iterable[tuple[Hashable, object]],
                     *, shown: int = 5) -> str | None:
    """Where train and test identities meet, or ``None`` when they are disjoint (PROTOCOL §1: a test identity is
    never learnt from, or the split does not measure re-identification of unseen people).

    ``train`` / ``test`` are ``(pid, where)`` pairs — ``where`` names the image for a person: a CSV line, a path, a
    manifest index. Returns ``"identity P is in both <train refs> and <test refs>"`` for the first shared identity
    (at most ``shown`` references a side) and the other shared identities, for the caller's error message.
    """
    def by_pid(pairs):
        out: dict = {}
        for pid, where in pairs:
            out.setdefault(pid, []).append(where)
        return out

    tr, te = by_pid(train), by_pid(test)
    both = sorted(set(tr) & set(te))
    if not both:
        return None

    def refs(items: list) -> str:
        more = f" … (+{len(items) - shown} more)" if len(items) > shown else ""
        return ", ".join(map(str, items[:shown])) + more

    pid = both[0]
    others = f"; other identities on both sides: {both[1:6]}{' …' if len(both) > 6 else ''}" if len(both) > 1 else ""
    return f"identity {pid} is in both the training set ({refs(tr[pid])}) and the test set ({refs(te[pid])}){others}"


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
