"""What a request can do wrong, as exceptions that carry their HTTP status.

Protocol parsers and the batcher raise these; one middleware turns each into ``{"error": "..."}`` with its
status, so no handler builds an error response itself.
"""

from __future__ import annotations


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP status (400 unless said otherwise)."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(RequestError):
    """An unknown model name or version (404)."""

    status = 404


class PayloadTooLarge(RequestError):
    """A body over ``max_request_bytes`` or more images than ``max_instances`` (413)."""

    status = 413


class QueueFull(RequestError):
    """The bounded queue has no room for the request's images (503, with ``Retry-After``)."""

    status = 503


class ShuttingDown(RequestError):
    """The server is draining after SIGTERM and takes no new work (503)."""

    status = 503


class DeadlineExceeded(RequestError):
    """The request took longer than ``timeout`` (504)."""

    status = 504
