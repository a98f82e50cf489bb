"""The P × K identity sampler: each batch holds P identities with K images (or pairs) each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["RandomIdentitySampler"]


class RandomIdentitySampler(Sampler[int]):
    """Yields indices so that consecutive blocks of ``P * K`` form a P × K batch (use ``drop_last=True``).

    Each epoch, every identity's indices are shuffled and cut into groups of K; batches take P identities
    at random among those with a group left. Rule for identities with fewer than K images (documented, as
    torchreid): their images are drawn **with replacement** up to K, so every identity still takes part.
    An identity with more images contributes ``len // K`` groups (the remainder is dropped that epoch).

    Args:
        pids: the person id of every dataset index.
        num_identities: P.
        num_instances: K.
        seed: with the epoch (:meth:`set_epoch`), seeds the order; the same (seed, epoch) gives the same
            indices, which a resumed run relies on.

    Raises:
        ValueError: when fewer than P identities are available.
    """

    def __init__(self, pids: Sequence[int], num_identities: int, num_instances: int, seed: int = 0):
        if num_identities < 1 or num_instances < 1:
            raise ValueError(f"P×K sampler: P and K must be ≥ 1, got P={num_identities} K={num_instances}")
        self.index_of: dict[int, list[int]] = defaultdict(list)
        for i, p in enumerate(pids):
            self.index_of[int(p)].append(i)
        if len(self.index_of) < num_identities:
            raise ValueError(
                f"P×K sampler: P={num_identities} identities per batch requested, but the training set has only "
                f"{len(self.index_of)} identities; lower P (notebook parameter P) or use more data"
            )
        self.P, self.K, self.seed, self.epoch = num_identities, num_instances, seed, 0
        self.pid_list = sorted(self.index_of)
        self._cache: tuple[int, list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def batch_size(self) -> int:
        return self.P * self.K

    def _indices(self, epoch: int) -> list[int]:
        rng = np.random.default_rng([self.seed, epoch])
        groups: dict[int, list[list[int]]] = {}
        for pid in self.pid_list:
            idxs = np.asarray(self.index_of[pid])
            if len(idxs) < self.K:
                idxs = rng.choice(idxs, size=self.K, replace=True)
            idxs = rng.permutation(idxs)
            n = len(idxs) // self.K
            groups[pid] = [idxs[j * self.K : (j + 1) * self.K].tolist() for j in range(n)]
        available = [p for p in self.pid_list if groups[p]]
        out: list[int] = []
        while len(available) >= self.P:
            chosen = rng.choice(len(available), size=self.P, replace=False)
            for c in sorted(chosen.tolist()):
                out.extend(groups[available[c]].pop(0))
            available = [p for p in available if groups[p]]
        return out

    def _epoch_indices(self) -> list[int]:
        if self._cache is None or self._cache[0] != self.epoch:
            self._cache = (self.epoch, self._indices(self.epoch))
        return self._cache[1]

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_indices())

    def __len__(self) -> int:
        """Number of indices in the current epoch (it can vary between epochs by a few batches)."""
        return len(self._epoch_indices())
