"""Timing primitives for ``irv2 bench``: warm-up, repeated runs, robust statistics, peak memory."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one workload (after warm-up)."""

    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_runs(
    run: Callable[[], object],
    *,
    device: torch.device,
    warmup: int = 1,
    min_runs: int = 3,
    min_seconds: float = 2.0,
    max_runs: int = 1000,
) -> Timing:
    """Time ``run`` after ``warmup`` calls: at least ``min_runs`` runs and ``min_seconds`` in total.

    On CUDA each run is synchronised, so its time covers the kernels it queued, not just their launch.
    """
    for _ in range(warmup):
        run()
        _sync(device)
    seconds: list[float] = []
    started = time.perf_counter()
    while len(seconds) < max_runs and (len(seconds) < min_runs or time.perf_counter() - started < min_seconds):
        begin = time.perf_counter()
        run()
        _sync(device)
        seconds.append(time.perf_counter() - begin)
    return Timing(seconds)


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory of this process so far: resident set on CPU, allocated tensors on CUDA, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
