"""Prometheus metrics for ``/metrics``, on a registry of the app's own (two apps in one process never collide).

Names (all prefixed ``irv2_``): ``http_requests_total{endpoint,method,status}``,
``http_request_duration_seconds{endpoint}``, ``http_requests_in_flight``, ``batch_size`` (images per forward
pass), ``inference_duration_seconds`` (per forward pass), ``images_total`` (images run through the model)
and ``queue_depth`` (images admitted and waiting), plus the ``process_*`` metrics of prometheus_client.
``endpoint`` is the route pattern (``/v2/models/{name}/infer``), never the raw path, so a scan of random
URLs cannot grow the label set; unknown paths count as ``unmatched``.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

# Latency of one request on CPU runs from milliseconds (health checks) to seconds (a queued batch).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The server's metrics; :meth:`exposition` renders them in Prometheus' text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "irv2_http_requests",
            "HTTP requests answered, by route, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "irv2_http_request_duration_seconds",
            "Time from receiving a request to answering it",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("irv2_http_requests_in_flight", "Requests being handled", registry=self.registry)
        self.batch_size = Histogram(
            "irv2_batch_size", "Images per forward pass", buckets=_BATCH_BUCKETS, registry=self.registry
        )
        self.inference = Histogram(
            "irv2_inference_duration_seconds",
            "Time of one forward pass",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.images = Counter("irv2_images", "Images run through the model", registry=self.registry)
        self.queue_depth = Gauge(
            "irv2_queue_depth", "Images admitted and not yet in a forward pass", registry=self.registry
        )

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, images: int, seconds: float) -> None:
        """Record one forward pass (called from the inference threads; prometheus_client is thread-safe)."""
        self.batch_size.observe(images)
        self.inference.observe(seconds)
        self.images.inc(images)

    def set_queue_depth(self, images: int) -> None:
        """The batcher's current queue depth in images."""
        self.queue_depth.set(images)

    def exposition(self) -> bytes:
        """All metrics in the Prometheus text exposition format."""
        return generate_latest(self.registry)
