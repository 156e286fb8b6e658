"""Structured logs: one JSON object per line on stderr (``--log-format json``, the default) or plain text.

Access log lines carry ``event: "access"`` with method, path, status, bytes, duration and the client's
address; server events (``listening``, ``shutdown``, errors) carry their own ``event``. Log shippers
(Loki, CloudWatch, Stackdriver, ``jq``) read them without a parsing rule.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

LOG_FORMATS = ("json", "text")
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, plus anything passed in ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_format: str = "json", level: int = logging.INFO) -> None:
    """Send the ``irv2.serve`` loggers to stderr in ``log_format``; only the server's own process calls this."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    logger = logging.getLogger("irv2.serve")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # aiohttp reports protocol errors of clients (garbage requests, resets) on its own loggers; keep them in
    # the same stream and format, at warning level (they are the client's fault, not the server's).
    for name in ("aiohttp.server", "aiohttp.web"):
        aiohttp_logger = logging.getLogger(name)
        aiohttp_logger.handlers[:] = [handler]
        aiohttp_logger.setLevel(logging.WARNING)
        aiohttp_logger.propagate = False


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log hook, writing one ``event: "access"`` record per answered request."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        fields = {
            "event": "access",
            "remote": request.remote,
            "method": request.method,
            "path": request.path_qs,
            "status": response.status,
            "bytes": response.body_length,
            "duration_ms": round(time * 1000.0, 2),
            "user_agent": request.headers.get("User-Agent", ""),
        }
        request_id = request.headers.get("X-Request-Id")
        if request_id:
            fields["request_id"] = request_id
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path_qs, response.status, time * 1000.0, extra=fields
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
