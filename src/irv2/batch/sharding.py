"""Which chunks of a batch job this process computes, under ``torchrun`` or any launcher setting RANK/WORLD_SIZE.

The inputs, in their expanded order, are cut into chunks of ``chunk_size`` consecutive inputs; chunk ``c``
belongs to rank ``c % world_size``. Chunks rather than single inputs are dealt out so that each Parquet
part holds consecutive inputs (the parts, in name order, are the output in input order) and so that every
image meets the same batch neighbours whatever the number of processes: a batch's rounding depends on its
size (oneDNN blocks batches differently), so identical batches give bit-identical rows across runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import JobError


@dataclass(frozen=True)
class Rank:
    """This process's place among ``world_size`` processes; ``local_rank`` picks its GPU on a machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def rank_from_environment(environ: dict[str, str] | None = None) -> Rank:
    """The ``Rank`` described by ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (torchrun, Slurm wrappers, MPI
    launchers that export them); a single process when they are absent."""
    env = os.environ if environ is None else environ
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise JobError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers when set") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise JobError(f"RANK={rank} does not fit WORLD_SIZE={world_size} (need 0 <= RANK < WORLD_SIZE)")
    return Rank(rank, world_size, local_rank)


def rank_device(device: str | None, rank: Rank) -> str | None:
    """The device for this process: under several processes a bare ``cuda`` means ``cuda:LOCAL_RANK``."""
    if device == "cuda" and rank.distributed:
        return f"cuda:{rank.local_rank}"
    return device


def chunk_ranges(total: int, chunk_size: int) -> list[range]:
    """The chunks of ``range(total)``: consecutive ranges of ``chunk_size`` (the last one shorter)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return [range(start, min(start + chunk_size, total)) for start in range(0, total, chunk_size)]


def my_chunks(total: int, chunk_size: int, rank: Rank) -> list[range]:
    """The chunks ``rank`` computes: every ``world_size``-th chunk, starting at chunk ``rank``."""
    return chunk_ranges(total, chunk_size)[rank.rank :: rank.world_size]
