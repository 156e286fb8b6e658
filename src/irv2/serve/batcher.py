"""Dynamic batching: requests from the event loop meet in a bounded queue; inference threads run them in batches.

The event loop never runs the model. A request first *admits* its images (a :class:`Ticket`; 503 when the
queue is full), is decoded, then queued. Each worker thread takes the oldest request, waits up to
``max_wait_ms`` for more to join it until ``max_batch_size`` images are gathered, runs one forward pass and
hands every request its rows back on the event loop. A request whose client went away or whose deadline
passed is skipped, not computed. A request that brings its own *task* (an explanation: not a plain forward
pass) goes through the same queue, limits and threads, but runs alone, as soon as a worker takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..api import CLASSIFICATION, FEATURE_VECTOR, Module
from ..errors import PayloadTooLarge, QueueFull, RequestError, ShuttingDown
from .config import ServeConfig

log = logging.getLogger("irv2.serve")


class BatchObserver(Protocol):
    """What the batcher reports (``metrics.Metrics`` implements it)."""

    def observe_batch(self, images: int, seconds: float) -> None: ...

    def set_queue_depth(self, images: int) -> None: ...


def run_model(module: Module, images: np.ndarray, *, logits: bool = True, features: bool = False) -> dict[str, Any]:
    """One forward pass over ``images`` ``[B, H, W, 3]`` in [0, 1]: ``{"logits": [B, C], "features": [B, 1536]}``.

    Only the outputs asked for are present. Both come from one pass: the logits are the module's own
    classifier applied to the features, which is exactly what ``image_classification`` computes after its
    global average pool (dropout is off at inference). The classifier runs in float32 whatever the
    network's precision, as irv2's fast path runs its head.
    """
    if not features:
        return {"logits": module(images, signature=CLASSIFICATION)}
    if logits and hasattr(module.engine, "run_outputs") and not module.training:
        # ONNX Runtime and OpenVINO give both outputs of their graph from one run, without torch.
        return module.engine.run_outputs(np.asarray(images, dtype=np.float32))
    out = {"features": module(images, signature=FEATURE_VECTOR)}
    if logits:
        import torch

        with torch.inference_mode():
            head = module.model.classif
            weight, bias = head.weight.float(), head.bias.float()
            pooled = torch.from_numpy(out["features"]).to(weight.device)
            out["logits"] = torch.nn.functional.linear(pooled, weight, bias).cpu().numpy()
    return out


class Ticket:
    """Room for ``images`` images in the queue, held from admission until a worker takes them (or failure)."""

    def __init__(self, batcher: Batcher, images: int) -> None:
        self.images = images
        self._batcher = batcher
        self._held = True

    def release(self) -> None:
        """Give the room back; safe to call more than once, from any thread."""
        self._batcher._release(self)


@dataclass
class _Job:
    images: np.ndarray
    logits: bool
    features: bool
    ticket: Ticket
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    task: Callable[[np.ndarray], Any] | None = None  # run instead of the batched forward pass, alone
    enqueued: float = field(default_factory=time.monotonic)
    # Set by the awaiting coroutine when it stops waiting (timeout, client gone); a plain bool is enough
    # because a worker reading a stale False only costs one wasted computation.
    abandoned: bool = False


class Batcher:
    """Bounded queue plus ``config.workers`` inference threads over one ``module``. Call :meth:`start` first."""

    def __init__(self, module: Module, config: ServeConfig, observer: BatchObserver | None = None) -> None:
        self.module = module
        self._config = config
        self._observer = observer
        self._max_wait = config.max_wait_ms / 1000.0
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._admitted = 0  # images holding a ticket: being decoded or waiting in the queue
        self._accepting = True
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- the event loop's side ---------------------------------------------------------------------------
    def admit(self, images: int) -> Ticket:
        """Reserve room for ``images`` images, or raise QueueFull (503), ShuttingDown or PayloadTooLarge."""
        with self._cond:
            if not self._accepting:
                raise ShuttingDown("the server is shutting down")
            if images > self._config.queue_size:
                raise PayloadTooLarge(
                    f"{images} images in one request, more than the queue holds ({self._config.queue_size})"
                )
            if self._admitted + images > self._config.queue_size:
                raise QueueFull(f"the server is busy ({self._admitted} images queued); retry later")
            self._admitted += images
            self._report_depth()
        return Ticket(self, images)

    async def infer(
        self,
        ticket: Ticket,
        images: np.ndarray,
        *,
        logits: bool,
        features: bool,
        task: Callable[[np.ndarray], Any] | None = None,
    ) -> Any:
        """Queue ``images`` (admitted by ``ticket``) and wait for their outputs (see :func:`run_model`), or for
        what ``task(images)`` returns: a task runs on an inference thread too, but never batched with others."""
        loop = asyncio.get_running_loop()
        job = _Job(images, logits, features, ticket, loop, loop.create_future(), task)
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            self._queue.append(job)
            self._cond.notify()
        try:
            return await job.future
        finally:
            job.abandoned = True

    @property
    def depth(self) -> int:
        """Images admitted and not yet in a forward pass."""
        return self._admitted

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the inference threads."""
        for index in range(self._config.workers):
            thread = threading.Thread(target=self._work, name=f"irv2-infer-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, let the workers finish what is queued, and join them."""
        with self._cond:
            self._accepting = False
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- the workers' side ---------------------------------------------------------------------------------
    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket._held:
                ticket._held = False
                self._admitted -= ticket.images
                self._report_depth()

    def _report_depth(self) -> None:
        if self._observer is not None:
            self._observer.set_queue_depth(self._admitted)

    def _work(self) -> None:
        if self._config.threads_per_worker or self._config.workers > 1:
            # Sets this thread's OpenMP pool (and torch's default for threads started later), so N workers
            # share the cores instead of each spawning one thread per core and thrashing.
            torch = sys.modules.get("torch")  # an engine file's runtime has its own threads, set at load
            if torch is not None:
                torch.set_num_threads(self._config.torch_threads)
        while (jobs := self._take()) is not None:
            self._run(jobs)

    def _take(self) -> list[_Job] | None:
        """The next batch (oldest first, whole requests, at most ``max_batch_size`` images); None to stop."""
        with self._cond:
            while True:
                if any(job.abandoned for job in self._queue):
                    self._queue = deque(job for job in self._queue if not job.abandoned)
                if not self._queue:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                queued = sum(len(job.images) for job in self._queue)
                deadline = self._queue[0].enqueued + self._max_wait
                remaining = deadline - time.monotonic()
                alone = self._queue[0].task is not None  # nothing joins a task: no reason to wait
                if alone or queued >= self._config.max_batch_size or remaining <= 0 or self._stopping:
                    return self._pop_batch()
                self._cond.wait(remaining)

    def _pop_batch(self) -> list[_Job]:
        jobs = [self._queue.popleft()]
        total = len(jobs[0].images)
        while (
            jobs[0].task is None
            and self._queue
            and self._queue[0].task is None
            and total + len(self._queue[0].images) <= self._config.max_batch_size
        ):
            total += len(self._queue[0].images)
            jobs.append(self._queue.popleft())
        for job in jobs:
            self._release(job.ticket)  # the condition's lock is re-entrant
        return jobs

    def _run(self, jobs: list[_Job]) -> None:
        if jobs[0].task is not None:
            self._run_task(jobs[0])
            return
        images = jobs[0].images if len(jobs) == 1 else np.concatenate([job.images for job in jobs])
        started = time.perf_counter()
        try:
            outputs = run_model(
                self.module,
                images,
                logits=any(job.logits for job in jobs),
                features=any(job.features for job in jobs),
            )
        except Exception as exc:  # a failure of the model fails this batch's requests, never the worker
            log.exception("inference failed on a batch of %d images", len(images))
            for job in jobs:
                _settle(job, None, exc)
            return
        if self._observer is not None:
            self._observer.observe_batch(len(images), time.perf_counter() - started)
        start = 0
        for job in jobs:
            stop = start + len(job.images)
            _settle(job, {name: rows[start:stop] for name, rows in outputs.items()}, None)
            start = stop

    def _run_task(self, job: _Job) -> None:
        try:
            result = job.task(job.images)
        except Exception as exc:  # as a failed batch: this request fails, the worker goes on
            if not isinstance(exc, RequestError):
                log.exception("a task failed on %d images", len(job.images))
            _settle(job, None, exc)
            return
        _settle(job, result, None)


def _settle(job: _Job, result: dict[str, Any] | None, error: BaseException | None) -> None:
    def settle() -> None:
        if job.future.done():  # cancelled meanwhile: nobody is waiting
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone, nobody is waiting
        job.loop.call_soon_threadsafe(settle)
