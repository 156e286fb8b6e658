"""Serving irv2 over HTTP: TF Serving's REST API, the Open Inference Protocol v2 (KServe, Triton), Grad-CAM
explanations, a web page.

>>> import irv2, irv2.serve
>>> irv2.serve.serve(irv2.load(), host="0.0.0.0", port=8501)        # blocks until SIGTERM / Ctrl-C
>>> app = irv2.serve.create_app(irv2.load())                        # an aiohttp app, to embed or test

Needs the ``serve`` extra (``pip install 'irv2[serve]'``: aiohttp, prometheus-client). Importing this
package costs nothing: aiohttp loads when ``serve`` or ``create_app`` is first called.

Layout: ``config`` (options), ``app`` (routes, middlewares), ``protocols`` (``tf_serving``, ``v2`` and
``explain``, KServe's ``:explain`` verb over ``irv2.explain``: wire formats without aiohttp), ``decode``
(images and limits), ``batcher`` (dynamic batching, bounded queue, inference threads), ``metrics``
(Prometheus), ``logs`` (JSON logs), ``server`` (signals, shutdown), ``static/index.html`` (the page at ``/``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ServeConfig

if TYPE_CHECKING:
    from aiohttp import web

    from ..api import Module

__all__ = ["ServeConfig", "create_app", "serve"]


def serve(module: Module, **options: Any) -> None:
    """Serve ``module`` until SIGTERM or SIGINT, then drain and return; see :func:`irv2.serve.server.serve`.

    Options: ``host`` ("127.0.0.1"), ``port`` (8501; 0 picks one), ``config`` (:class:`ServeConfig`),
    ``log_format`` ("json" or "text"), ``reuse_port`` (False). Call it from the main thread (signals).
    """
    from .server import serve as _serve

    _serve(module, **options)


def create_app(module: Module, config: ServeConfig | None = None, *, warm_up: bool = True) -> web.Application:
    """The aiohttp application serving ``module`` (see :func:`irv2.serve.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(module, config, warm_up=warm_up)
