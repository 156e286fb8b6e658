"""Fixtures of the hub tests: a controllable HTTP server on 127.0.0.1 and an isolated, online irv2 cache."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hub_helpers import LocalServer, handler_for


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    local = LocalServer(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = handler_for(local)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield local
    local.stop.set()  # wake stalled handlers
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def irv2_home(tmp_path, monkeypatch):
    """Every hub test gets its own empty cache, online, with no proxy in the way of 127.0.0.1."""
    home = tmp_path / "irv2-home"
    monkeypatch.setenv("IRV2_HOME", str(home))
    for name in ("IRV2_OFFLINE", "IRV2_LOCK_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return home


@pytest.fixture
def payload() -> bytes:
    """Random bytes standing in for a weights file (the hub never parses what it downloads)."""
    return os.urandom(300_000)
