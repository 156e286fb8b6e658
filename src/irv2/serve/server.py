"""Running the app: bind, log where, wait for SIGTERM/SIGINT, drain, exit.

Shutdown is graceful: on the first SIGTERM or SIGINT the listening socket closes, ``/v2/health/ready``
answers 503, every request already received is answered (up to ``timeout`` + 5 s), then the inference
threads finish and :func:`serve` returns (``irv2 serve`` exits 0). A second signal exits at once (status 1).

Workers are threads in this one process (``ServeConfig.workers``), so metrics and the queue are shared and
the weights are in memory once. For several processes, start several servers with ``reuse_port=True``
(``--reuse-port``) on the same port; each then has its own ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from ..api import Module
from . import logs
from .app import create_app
from .config import ServeConfig

log = logging.getLogger("irv2.serve")


def serve(
    module: Module,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    config: ServeConfig | None = None,
    log_format: str = "json",
    reuse_port: bool = False,
) -> None:
    """Serve ``module`` over HTTP until SIGTERM or SIGINT, then drain and return.

    It leaves the process's settings alone; ``irv2 serve``, which owns its process, first flushes PyTorch's
    subnormal floats to zero (:func:`irv2.process_settings.flush_denormals`), as every subcommand does.

    Args:
        module: what ``irv2.load`` returned.
        host, port: where to listen; port 0 picks a free port (the ``listening`` log line says which).
        config: batching, limits and names (:class:`ServeConfig`); defaults when None.
        log_format: ``json`` (one object per line on stderr) or ``text``.
        reuse_port: set SO_REUSEPORT so several server processes can share the port (Linux, BSD).
    """
    config = config or ServeConfig()
    logs.configure(log_format)
    asyncio.run(_serve(module, host, port, config, reuse_port))


def make_runner(app: web.Application, config: ServeConfig) -> web.AppRunner:
    """The aiohttp runner ``serve`` uses for ``app``: JSON access log, handler cancellation, drain timeout."""
    return web.AppRunner(
        app,
        access_log_class=logs.AccessLogger,
        access_log=logging.getLogger("irv2.serve.access"),
        # A client that hangs up cancels its handler, so its queued images are dropped instead of computed.
        handler_cancellation=True,
        # How long shutdown waits for in-flight requests: none may legitimately take longer than `timeout`.
        shutdown_timeout=config.timeout + 5.0,
    )


async def _serve(module: Module, host: str, port: int, config: ServeConfig, reuse_port: bool) -> None:
    runner = make_runner(create_app(module, config), config)
    await runner.setup()  # warm-up pass and inference threads start here, before the port opens
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        log.info(
            "listening on http://%s:%d (model %r)",
            _url_host(bound_host),
            bound_port,
            config.model_name,
            extra={
                "event": "listening",
                "host": bound_host,
                "port": bound_port,
                "url": f"http://{_url_host(bound_host)}:{bound_port}/",
                "model": config.model_name,
                "workers": config.workers,
                "torch_threads": config.torch_threads,
                "max_batch_size": config.max_batch_size,
                "device": module.device_type if not module.has_model else str(module.device),
            },
        )
        signum = await _first_signal()
        log.info(
            "received %s: draining in-flight requests",
            signal.Signals(signum).name,
            extra={"event": "shutdown", "signal": signal.Signals(signum).name},
        )
    finally:
        await runner.cleanup()
    log.info("stopped", extra={"event": "stopped"})


async def _first_signal() -> int:
    """Wait for SIGTERM or SIGINT; from then on, a second one exits the process at once."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[int] = loop.create_future()

    def on_signal(signum: int) -> None:
        if received.done():
            log.warning("second signal: exiting without draining", extra={"event": "forced_exit"})
            os._exit(1)
        received.set_result(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return await received


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
