"""Decoding image files for the network, in parallel with it, in input order, in bounded memory.

While the network runs on one batch, a pool of decoding threads prepares the next ones. Threads rather
than processes: Pillow's JPEG/PNG decoders and numpy's resize release the GIL, and the network's own
kernels run outside it, so the decoders get the cores whenever the network leaves them; threads also cost
nothing to start (a process would import torch again) and share the decoded arrays without
pickling. At most ``prefetch`` batches are decoded ahead, so memory stays bounded by a few batches plus
one full-size photo per thread, whatever the number of files.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from ..api import Module
from ..errors import Irv2Error
from ..preprocessing import Preprocessing
from .inputs import Input
from .shards import read_member

# What one unreadable image may raise besides ImageError (which covers decoding): a file system error, an
# array that does not fit the module, or an image too big for the memory left. None may stop the others.
IMAGE_ERRORS = (Irv2Error, OSError, ValueError, MemoryError)


@dataclass
class Decoded:
    """An input after decoding: the image ``[H, W, 3]`` float32 in [0, 1] as the module's preprocessing makes
    it, or why there is none."""

    input: Input
    image: np.ndarray | None
    error: str | None


def default_workers() -> int:
    """Decoding threads by default: one per core the process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def decode_batches(
    inputs: Sequence[Input],
    batch_size: int,
    preprocess: Preprocessing,
    *,
    workers: int | None = None,
    prefetch: int = 2,
    draft: bool = True,
) -> Iterator[list[Decoded]]:
    """Decode ``inputs`` and yield them ``batch_size`` at a time, in input order.

    Args:
        preprocess: the module's recipe (``module.preprocessing``): every image comes out as the module takes
            it, at its size.
        workers: decoding threads; None for :func:`default_workers`, 0 to decode in the calling thread.
        prefetch: batches decoded ahead of the one being consumed (with ``workers`` > 0).
        draft: decode large JPEGs at reduced scale before the exact crop and resize
            (``irv2.load_image(draft=True)``); False reproduces TF-Slim's preprocessing bit for bit.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    workers = default_workers() if workers is None else workers
    if workers <= 0 or len(inputs) <= 1:
        for start in range(0, len(inputs), batch_size):
            yield [decode_one(item, preprocess, draft=draft) for item in inputs[start : start + batch_size]]
        return
    pending: deque[Future[Decoded]] = deque()
    queue = iter(inputs)
    limit = batch_size * (1 + max(0, prefetch))
    # Leaving the with-block (the consumer stopped, or Ctrl-C) cancels what has not started yet.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="irv2-decode") as pool:
        try:
            for item in islice(queue, limit):
                pending.append(pool.submit(decode_one, item, preprocess, draft=draft))
            while pending:
                batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
                for item in islice(queue, len(batch)):
                    pending.append(pool.submit(decode_one, item, preprocess, draft=draft))
                yield batch
        finally:
            for future in pending:
                future.cancel()


def decode_one(item: Input, preprocess: Preprocessing, *, draft: bool = True) -> Decoded:
    """Decode and preprocess one input; any per-image failure becomes the ``error`` of its result."""
    if item.error is not None:
        return Decoded(item, None, item.error)
    try:
        source = item.path if item.member is None else read_member(item.member)
        return Decoded(item, preprocess(source, draft=draft), None)
    except IMAGE_ERRORS as exc:
        return Decoded(item, None, error_text(item.path, exc))


def stack_images(batch: Sequence[Decoded], *, pin_memory: bool = False) -> Any:
    """The decoded images of ``batch`` as one ``[B, H, W, 3]`` array, or None when none decoded.

    ``pin_memory``: return a page-locked CPU tensor instead, so the copy to a GPU can run asynchronously.
    """
    images = [d.image for d in batch if d.image is not None]
    if not images:
        return None
    if not pin_memory:
        return np.stack(images)
    import torch

    stacked = torch.empty((len(images), *images[0].shape), dtype=torch.float32, pin_memory=True)
    np.stack(images, out=stacked.numpy())
    return stacked


def error_text(path: str, exc: BaseException) -> str:
    """The message of ``exc`` without the leading ``"<path>: "`` irv2 puts there (the row names the path)."""
    if isinstance(exc, MemoryError):
        return "not enough memory to decode this image"
    message = str(exc) or type(exc).__name__
    for prefix in (f"{path}: ", "<bytes>: "):  # images inside tar shards are decoded from bytes
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def run_module(module: Module, images: Any, signature: str) -> np.ndarray:
    """``module(images, signature=...)`` as float32 numpy, also for a pinned tensor (GPU runs)."""
    if not isinstance(images, np.ndarray):  # a pinned tensor (GPU runs): torch is loaded
        import torch

        with torch.inference_mode():
            return module(images, signature=signature).float().cpu().numpy()
    return module(images, signature=signature)
