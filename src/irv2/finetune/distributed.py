"""torchrun support: one process per device, found from torchrun's environment variables.

``torchrun`` (``python -m torch.distributed.run``) sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in
every process it starts; with ``WORLD_SIZE`` above one, fine-tuning joins the process group (NCCL on
GPUs, gloo on CPU), each process takes the GPU of its local rank, and outputs are written by rank 0 only
while the others wait at a barrier. Without torchrun everything here is a cheap no-op, so the training
code never branches on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    """This process's place in the run: ``world_size`` processes, this one being ``rank``."""

    world_size: int
    rank: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (any picklable object), in rank order, on every process."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over all processes (float64, so counts stay exact)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def shard(self, count: int) -> list[int]:
        """This process's share of ``range(count)``: every ``world_size``-th position from ``rank``."""
        return list(range(self.rank, count, self.world_size))

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def _collective_device(self) -> torch.device:
        # NCCL moves only CUDA tensors; gloo only CPU ones.
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def setup(device: str | None = None) -> Distributed:
    """This process's ``Distributed``: joins torchrun's process group when ``WORLD_SIZE`` > 1.

    Args:
        device: the user's choice (``cpu``, ``cuda``, ``cuda:1``, ...); None picks CUDA when present.
            Under torchrun a bare ``cuda`` (or None on a GPU machine) means the GPU of ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 1:
        return Distributed(1, 0, 0, _device(device, 0))
    chosen = _device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    owns = False
    if not dist.is_initialized():
        # Rendezvous details (MASTER_ADDR, MASTER_PORT or torchrun's store) come from the environment.
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        owns = True
    return Distributed(dist.get_world_size(), dist.get_rank(), local_rank, chosen, owns)


def _device(name: str | None, local_rank: int) -> torch.device:
    if name is None:
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device
