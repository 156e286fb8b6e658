"""A local HTTP server whose every answer a test controls, and small helpers for the hub tests.

The server listens on 127.0.0.1 only (the hub tests never touch any other address). Each path is a
``Route``: the bytes to serve and how to misbehave (an error status, a wrong or truncated body, a stall,
no Range support), or a redirect elsewhere. The server records every request so tests can count downloads
and read headers. Several servers (each its own port, so its own origin; optionally named ``localhost`` or
speaking TLS) let redirects cross hosts the way tfhub.dev -> Kaggle -> storage does.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from irv2.hub import Source
from irv2.hub.cache import part_path


@dataclass
class Route:
    body: bytes
    status: int = 200  # anything but 200: answer with this error instead
    ranges: bool = True  # honour "Range: bytes=N-" with 206 and advertise Accept-Ranges
    truncate_at: int | None = None  # close the connection after this many body bytes (full length declared)
    stall_s: float = 0.0  # sleep this long before answering at all
    stall_after: int | None = None  # send this many body bytes, then sleep stall_s
    chunk_delay_s: float = 0.0  # pause between 64 KiB chunks (makes downloads overlap)
    location: str | None = None  # answer ``status`` (a 3xx) with this Location header, absolute or relative


def redirect(location: str, status: int = 302) -> Route:
    return Route(b"", status=status, location=location)


@dataclass
class Request:
    path: str
    range: str | None
    user_agent: str | None
    host: str | None = None


@dataclass
class LocalServer:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r.path == path)


def handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            headers = self.headers
            server.requests.append(Request(path, headers.get("Range"), headers.get("User-Agent"), headers.get("Host")))
            route = server.routes.get(path)
            if route is None:
                self.send_error(404)
                return
            if route.location is not None:
                self.send_response(route.status)
                self.send_header("Location", route.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.status != 200:
                self.send_error(route.status)
                return
            if route.stall_s and route.stall_after is None:
                server.stop.wait(route.stall_s)
                return
            body, status, start = route.body, 200, 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and route.ranges:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_error(416)
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) - start))
            if route.ranges:
                self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            payload = body[start:]
            if route.truncate_at is not None:
                payload = payload[: route.truncate_at]
            if route.stall_after is not None:
                self.wfile.write(payload[: route.stall_after])
                self.wfile.flush()
                server.stop.wait(route.stall_s)
                return
            try:
                for i in range(0, len(payload), 1 << 16):
                    self.wfile.write(payload[i : i + (1 << 16)])
                    if route.chunk_delay_s:
                        self.wfile.flush()
                        server.stop.wait(route.chunk_delay_s)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_part(source: Source, data: bytes) -> Path:
    """Leave ``data`` as the interrupted download of ``source`` (its ``.part`` file); returns its path."""
    part = part_path(source)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data)
    return part


def make_source(urls: list[str], checksum: str | None, *, name: str = "test-weights", size: int | None = None):
    return Source(
        name=name,
        aliases=(),
        urls=tuple(urls),
        filename="weights.bin",
        checksum=checksum,
        size_bytes=size,
        format="auto",
        num_classes=1001,
        label_offset=0,
    )


def self_signed_certificate(folder: Path) -> tuple[Path, Path] | None:
    """``(certificate, key)`` for 127.0.0.1, made by the openssl command; None where it is not installed."""
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
