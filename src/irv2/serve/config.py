"""``ServeConfig``: every knob of the server in one record (the CLI flags map onto it one to one)."""

from __future__ import annotations

import os
from dataclasses import dataclass

MODEL_VERSION = "1"  # one model, one version: TF Serving and the v2 protocol both want a version string
NUM_FEATURES = 1536  # width of the image_feature_vector signature (global average pool of Conv2d_7b_1x1)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the machine's
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@dataclass
class ServeConfig:
    """How ``irv2 serve`` batches, limits and reports.

    Attributes:
        model_name: the name in the URLs (``/v1/models/NAME``, ``/v2/models/NAME``); others answer 404.
        max_batch_size: most images in one forward pass; requests are never split, so one request with more
            images than this runs as a batch of its own.
        max_wait_ms: how long the first request of a batch waits for others to join it (dynamic batching).
        queue_size: most images admitted and not yet in a forward pass (being decoded or queued); beyond it
            requests get 503 with ``Retry-After``. It bounds the memory of decoded images.
        workers: inference threads, each running whole batches; ``threads_per_worker`` torch threads each.
        threads_per_worker: torch intra-op threads per worker; None: the cores divided by ``workers``.
        decode_threads: threads that parse request bodies and decode images, off the event loop.
        max_request_bytes: largest request body (413 beyond it).
        max_instances: most images in one request (413 beyond it).
        max_image_pixels: largest image (width x height) to decode, checked on the header before decoding.
        timeout: seconds a request may take from its first byte to its answer (504 beyond it).
        retry_after: the ``Retry-After`` seconds sent with 503.
        default_top_k: classes in the v2 ``labels`` output when the request does not ask for a count.
    """

    model_name: str = "irv2"
    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    queue_size: int = 64
    workers: int = 1
    threads_per_worker: int | None = None
    decode_threads: int = 2
    max_request_bytes: int = 64 * 1024 * 1024
    max_instances: int = 64
    max_image_pixels: int = 40_000_000
    timeout: float = 60.0
    retry_after: int = 1
    default_top_k: int = 5

    def __post_init__(self) -> None:
        counts = ("max_batch_size", "queue_size", "workers", "decode_threads", "max_request_bytes", "max_instances")
        for name in (*counts, "max_image_pixels", "retry_after", "default_top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be at least 1, got {self.threads_per_worker}")
        if self.max_wait_ms < 0 or self.timeout <= 0:
            raise ValueError("max_wait_ms must be >= 0 and timeout > 0")
        if not self.model_name or "/" in self.model_name or ":" in self.model_name:
            raise ValueError(f"model_name must be non-empty without '/' or ':', got {self.model_name!r}")

    @property
    def torch_threads(self) -> int:
        """Torch threads per inference worker: the given number, else the cores shared out evenly."""
        return self.threads_per_worker or max(1, _cpu_count() // self.workers)
