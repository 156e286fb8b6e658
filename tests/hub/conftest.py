"""Fixtures of the hub tests: controllable HTTP(S) servers on 127.0.0.1 and an isolated, online irv2 cache."""

from __future__ import annotations

import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hub_helpers import LocalServer, handler_for


@pytest.fixture
def start_server():
    """Starts local servers on demand, each on its own port of 127.0.0.1 (so its own origin); all stop at
    teardown. ``name`` is the host name in its URLs (``localhost`` is another host to urllib); ``tls`` an
    ``ssl.SSLContext`` for https."""
    running = []

    def start(name: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> LocalServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        local = LocalServer(base=f"{scheme}://{name}:{httpd.server_address[1]}")
        httpd.RequestHandlerClass = handler_for(local)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((local, httpd, thread))
        return local

    yield start
    for local, httpd, thread in reversed(running):
        local.stop.set()  # wake stalled handlers
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server(start_server) -> LocalServer:
    return start_server()


@pytest.fixture(autouse=True)
def irv2_home(tmp_path, monkeypatch):
    """Every hub test gets its own empty cache, online, with no proxy in the way of 127.0.0.1."""
    home = tmp_path / "irv2-home"
    monkeypatch.setenv("IRV2_HOME", str(home))
    for name in ("IRV2_OFFLINE", "IRV2_LOCK_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return home


@pytest.fixture
def payload() -> bytes:
    """Random bytes standing in for a weights file (the hub never parses what it downloads)."""
    return os.urandom(300_000)
