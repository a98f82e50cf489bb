"""Distributed data-parallel training under ``torchrun`` (one process per GPU, or gloo on CPUs).

``torchrun --nproc_per_node N -m lib.train …`` sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``;
:func:`init_distributed` joins the process group (NCCL on CUDA, gloo on CPU) and pins each rank to its GPU.
The trainer then wraps the trained modules in :class:`~torch.nn.parallel.DistributedDataParallel`, gives each
rank every ``world_size``-th P × K batch (:class:`ShardedBatchSampler`: each rank's batch is still a whole
P × K batch, so batch-hard triplets keep their K positives; the global batch is N × P × K), and only rank 0
writes checkpoints, histories and metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = ["init_distributed", "is_distributed", "rank", "world_size", "is_main", "barrier", "ShardedBatchSampler"]


def init_distributed() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); returns whether distributed."""
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # rank 0 evaluates while the others wait at a barrier: allow long evaluations (REID_DDP_TIMEOUT_MIN, 120)
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=int(os.environ.get("REID_DDP_TIMEOUT_MIN", "120"))))
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or not distributed): the process that writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def values_on_ranks(value: str) -> list[str]:
    """``value`` of every rank, in rank order (``[value]`` when not distributed)."""
    if not is_distributed():
        return [value]
    out: list = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


class ShardedBatchSampler(Sampler[list[int]]):
    """Whole P × K batches of ``sampler`` dealt round-robin to the ranks (rank r gets batches r, r+N, …).

    Every rank gets the same number of batches (the remainder is dropped), so the ranks stay in step.
    ``set_epoch`` is forwarded to the P × K sampler, whose order depends on (seed, epoch) only: every rank
    computes the same epoch order and takes its own share.
    """

    def __init__(self, sampler, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.sampler, self.batch_size, self.rank, self.world_size = sampler, batch_size, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _batches(self) -> list[list[int]]:
        idx = list(self.sampler)
        n = len(idx) // self.batch_size
        batches = [idx[i * self.batch_size:(i + 1) * self.batch_size] for i in range(n)]
        per_rank = len(batches) // self.world_size
        return batches[self.rank::self.world_size][:per_rank]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
