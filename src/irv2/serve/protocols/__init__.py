"""The wire protocols: TF Serving's REST API (``tf_serving``), the Open Inference Protocol v2 (``v2``) and
KServe's ``:explain`` verb (``explain``: Grad-CAM maps for the web page's heatmap).

Each protocol is plain functions from request bytes to a :class:`Prepared` request and from outputs to a
:class:`Reply`, without aiohttp, so they are testable alone and the app only glues them to routes.
Parsing is two-staged on purpose: the cheap stage counts the images (so the queue can refuse a request
before any image is decoded), the expensive stage (:attr:`Prepared.decode`) runs on a decode thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import RequestError


@dataclass
class Reply:
    """A response body with its content type and extra headers."""

    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Prepared:
    """A parsed inference request.

    Attributes:
        count: images in the request, known before decoding.
        decode: decodes them to float32 ``[count, H, W, 3]`` in [0, 1] at the module's size (CPU-heavy; raises
            RequestError).
        logits, features: which model outputs the request needs.
        reply: builds the response from the batcher's ``{"logits": ..., "features": ...}`` rows, or from what
            ``task`` returned.
        task: for a request that is not a plain forward pass: run on an inference thread on the decoded
            images, alone (never batched with other requests); None for the batched forward pass.
    """

    count: int
    decode: Callable[[], np.ndarray]
    logits: bool
    features: bool
    reply: Callable[[Any], Reply]
    task: Callable[[np.ndarray], Any] | None = None


def load_json(data: bytes | memoryview, what: str = "request body") -> Any:
    """Parse JSON, or raise a 400 that says where it broke."""
    try:
        return json.loads(bytes(data))
    except UnicodeDecodeError:
        raise RequestError(f"{what} is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise RequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply") from None


def json_reply(document: Any) -> Reply:
    """``document`` as a compact JSON reply."""
    return Reply(json.dumps(document, separators=(",", ":")).encode())


def expect_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 400 naming ``what``."""
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
