"""The aiohttp application: routes of both protocols, the web page, metrics, limits and JSON errors.

Every inference request goes the same way: size check, body read, parse (cheap: counts the images), queue
admission (503 when full), decode on a decode thread, batched inference on an inference thread, reply.
An explanation (``:explain``, the web page's heatmap) takes the same way, but runs alone, not batched.
All of it runs under one deadline (``timeout``, 504). Any refusal is ``{"error": "..."}`` with a 4xx/5xx
status from one middleware; the server itself never stops on a bad request.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
from aiohttp import web

from ..api import Module
from ..errors import NotFound, PayloadTooLarge, QueueFull, RequestError, ShuttingDown
from ..explain import overlay
from .batcher import Batcher, run_model
from .config import MODEL_VERSION, ServeConfig
from .metrics import Metrics
from .protocols import Prepared, Reply, explain, json_reply, tf_serving, v2
from .protocols.v2_tensors import HEADER_LENGTH

log = logging.getLogger("irv2.serve")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerState:
    """What the handlers share: the module, its batcher, the decode threads, metrics and the draining flag."""

    def __init__(self, module: Module, config: ServeConfig, *, warm_up: bool) -> None:
        self.module = module
        self.config = config
        self.metrics = Metrics()
        self.batcher = Batcher(module, config, self.metrics)
        self.decoder = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="irv2-decode")
        self.warm_up = warm_up
        self.draining = False  # set on SIGTERM: /v2/health/ready answers 503 while in-flight requests finish
        page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        page = page.replace("{{MODEL_NAME}}", html.escape(config.model_name, quote=True))
        # The heatmap's colours and opacity are irv2.explain's, so the page draws what `irv2 explain` writes.
        self.page = page.replace("{{HEATMAP_STYLE}}", json.dumps({"jet": overlay.JET, "alpha": overlay.DEFAULT_ALPHA}))


STATE = web.AppKey("irv2_state", ServerState)


def create_app(module: Module, config: ServeConfig | None = None, *, warm_up: bool = True) -> web.Application:
    """An aiohttp application serving ``module``; run it with ``irv2.serve.serve`` or any aiohttp runner.

    The inference threads start with the app and stop on its cleanup, after the last request is answered.
    ``warm_up`` runs one forward pass at startup so the first request does not pay for lazy initialisation.
    """
    config = config or ServeConfig()
    state = ServerState(module, config, warm_up=warm_up)
    app = web.Application(client_max_size=config.max_request_bytes, middlewares=[_metrics, _errors])
    app[STATE] = state
    app.on_startup.append(_start)
    app.on_shutdown.append(_drain)
    app.on_cleanup.append(_stop)
    name, version = "{name:[^/:]+}", "/versions/{version:[^/:]+}"
    routes = [web.get("/", _index), web.get("/metrics", _metrics_page)]
    for v in ("", version):
        routes += [
            web.get(f"/v1/models/{name}{v}", _tf_status),
            web.get(f"/v1/models/{name}{v}/metadata", _tf_metadata),
            web.post(f"/v1/models/{name}{v}:predict", _tf_predict),
            web.post(f"/v1/models/{name}{v}:explain", _explain),
            web.get(f"/v2/models/{name}{v}", _v2_model_metadata),
            web.get(f"/v2/models/{name}{v}/ready", _v2_model_ready),
            web.get(f"/v2/models/{name}{v}/config", _v2_model_config),
            web.post(f"/v2/models/{name}{v}/infer", _v2_infer),
        ]
    routes += [
        web.get("/v2", _v2_server_metadata),
        web.get("/v2/health/live", _v2_live),
        web.get("/v2/health/ready", _v2_ready),
    ]
    app.add_routes(routes)
    return app


# -- lifecycle ----------------------------------------------------------------------------------------------


async def _start(app: web.Application) -> None:
    state = app[STATE]
    if state.warm_up:
        zeros = np.zeros((1, *state.module.expected_image_size, 3), np.float32)
        await asyncio.to_thread(run_model, state.module, zeros)
    state.batcher.start()


async def _drain(app: web.Application) -> None:
    app[STATE].draining = True


async def _stop(app: web.Application) -> None:
    state = app[STATE]
    await asyncio.to_thread(state.batcher.close)
    state.decoder.shutdown(wait=False, cancel_futures=True)


# -- middlewares --------------------------------------------------------------------------------------------


@web.middleware
async def _metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route and status, and time it; a client that hangs up counts as 499."""
    metrics = request.app[STATE].metrics
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "unmatched"
    started = time.perf_counter()
    status = 500
    metrics.in_flight.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # nginx's "client closed request": aiohttp cancels the handler when the client goes
        raise
    finally:
        metrics.in_flight.dec()
        metrics.observe_request(endpoint, request.method, status, time.perf_counter() - started)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as ``{"error": "..."}``: ours (RequestError), aiohttp's (404, 405, 413) and crashes (500)."""
    try:
        return await handler(request)
    except RequestError as exc:
        response = _error(exc.status, str(exc))
        if isinstance(exc, QueueFull | ShuttingDown):
            response.headers["Retry-After"] = str(request.app[STATE].config.retry_after)
        if isinstance(exc, PayloadTooLarge):
            response.force_close()  # do not read (or wait for) the rest of an oversized body
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        response = _error(exc.status, message)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        if exc.status == 413:
            response.force_close()
        return response
    except Exception as exc:  # a bug, not the client's fault: say so, log the traceback, keep serving
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _response(reply: Reply) -> web.Response:
    return web.Response(body=reply.body, content_type=reply.content_type, headers=reply.headers)


# -- inference ----------------------------------------------------------------------------------------------


def _check_model(request: web.Request) -> ServerState:
    state = request.app[STATE]
    name = request.match_info["name"]
    if name != state.config.model_name:
        raise NotFound(f"model {name!r} not found; this server has {state.config.model_name!r}")
    version = request.match_info.get("version")
    if version is not None and version != MODEL_VERSION:
        raise NotFound(f"model {name!r} has no version {version!r}; it has {MODEL_VERSION!r}")
    return state


async def _infer(request: web.Request, parse: Callable[[bytes], Prepared]) -> web.Response:
    state = _check_model(request)
    try:
        return await asyncio.wait_for(_infer_within_deadline(request, state, parse), state.config.timeout)
    except asyncio.TimeoutError:  # not the builtin TimeoutError on Python 3.10
        raise RequestError(
            f"the request took longer than the server's timeout of {state.config.timeout:g} s", 504
        ) from None


async def _infer_within_deadline(
    request: web.Request, state: ServerState, parse: Callable[[bytes], Prepared]
) -> web.Response:
    limit = state.config.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refuse on the header, before reading a byte of the body.
        raise PayloadTooLarge(f"request body of {request.content_length} bytes is over the limit of {limit}")
    body = await request.read()  # aiohttp raises 413 itself past client_max_size (chunked bodies)
    loop = asyncio.get_running_loop()
    prepared = await loop.run_in_executor(state.decoder, parse, body)
    ticket = state.batcher.admit(prepared.count)
    try:
        images = await loop.run_in_executor(state.decoder, prepared.decode)
        outputs = await state.batcher.infer(
            ticket, images, logits=prepared.logits, features=prepared.features, task=prepared.task
        )
    finally:
        ticket.release()
    return _response(prepared.reply(outputs))


async def _tf_predict(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return await _infer(request, lambda body: tf_serving.parse_predict(body, state.module, state.config))


async def _explain(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return await _infer(request, lambda body: explain.parse_explain(body, state.module, state.config))


async def _v2_infer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    header_length = request.headers.get(HEADER_LENGTH)
    return await _infer(request, lambda body: v2.parse_infer(body, header_length, state.module, state.config))


# -- status and metadata ------------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=request.app[STATE].page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def _metrics_page(request: web.Request) -> web.Response:
    metrics = request.app[STATE].metrics
    return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.content_type})


async def _tf_status(request: web.Request) -> web.Response:
    _check_model(request)
    return _response(json_reply(tf_serving.model_status()))


async def _tf_metadata(request: web.Request) -> web.Response:
    state = _check_model(request)
    return _response(json_reply(tf_serving.model_metadata(state.module, state.config)))


async def _v2_server_metadata(request: web.Request) -> web.Response:
    return _response(json_reply(v2.server_metadata()))


async def _v2_live(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def _v2_ready(request: web.Request) -> web.Response:
    ready = not request.app[STATE].draining
    return web.json_response({"ready": ready}, status=200 if ready else 503)


async def _v2_model_metadata(request: web.Request) -> web.Response:
    state = _check_model(request)
    return _response(json_reply(v2.model_metadata(state.module, state.config)))


async def _v2_model_ready(request: web.Request) -> web.Response:
    state = _check_model(request)
    ready = not state.draining
    return web.json_response({"name": state.config.model_name, "ready": ready}, status=200 if ready else 503)


async def _v2_model_config(request: web.Request) -> web.Response:
    state = _check_model(request)
    return _response(json_reply(v2.model_config(state.module, state.config)))
