"""Helpers for the server tests: ``irv2 serve`` in a subprocess, exactly as a user starts it, plain HTTP, checks.

The server listens on an ephemeral port (``--port 0``) and says which in its JSON ``listening`` log line,
which :class:`ServerProcess` waits for. Its stderr is read continuously so the pipe never fills up.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The session server's limits (tests/serve/conftest.py), which the tests probe.
MAX_IMAGE_PIXELS = 4_000_000
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_INSTANCES = 16


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | str | dict | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
    connection: http.client.HTTPConnection | None = None,
) -> Response:
    """One HTTP request to 127.0.0.1:``port``; a dict body is sent as JSON. Reuses ``connection`` if given."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        if connection is None:
            conn.close()


class ServerProcess:
    """``python -m irv2 serve --weights WEIGHTS --port 0 ARGS...``, started and waited for."""

    def __init__(
        self,
        weights: str | os.PathLike[str],
        *args: str,
        startup_timeout: float = 180.0,
        env: dict[str, str] | None = None,
    ) -> None:
        command = [sys.executable, "-m", "irv2", "serve", "--weights", str(weights), "--port", "0", *args]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.port: int | None = None
        self._started = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._started.wait(startup_timeout) or self.port is None:
            self.kill()
            raise RuntimeError(f"irv2 serve did not start (exit {self.proc.poll()}):\n{''.join(self.lines)}")

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            record = _parse(line)
            if record.get("event") == "listening":
                self.port = int(record["port"])
                self._started.set()
        self._started.set()  # exited: stop waiting (port stays None if it never listened)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, **options: Any) -> Response:
        assert self.port is not None
        return request(self.port, method, path, body, **options)

    def records(self) -> list[dict[str, Any]]:
        """The log lines so far, parsed (lines that are not JSON come back as ``{"raw": line}``)."""
        return [_parse(line) for line in list(self.lines)]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        """Signal the server and wait for it to exit; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _parse(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return {"raw": line}
    return record if isinstance(record, dict) else {"raw": line}


def artifacts_dir(default: Path) -> Path:
    """Where tests leave screenshots and load-test figures: ``$IRV2_TEST_ARTIFACTS``, else ``default``."""
    path = Path(os.environ.get("IRV2_TEST_ARTIFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def assert_close(actual: Any, reference: Any, tolerance: float = 1e-4) -> None:
    """Equal within ``tolerance`` relative to the reference's largest magnitude (the issue's criterion)."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape
    error = np.abs(actual - reference).max() / np.abs(reference).max()
    assert error <= tolerance, f"max relative error {error:.2e} > {tolerance:g}"


def v2_binary_request(images: np.ndarray, outputs: tuple[str, ...] = ("logits",)) -> tuple[bytes, dict[str, str]]:
    """A v2 ``/infer`` body for FP32 ``images`` in Triton's binary extension, binary outputs asked for."""
    header = {
        "inputs": [
            {
                "name": "images",
                "shape": list(images.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": images.nbytes},
            }
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
    }
    head = json.dumps(header).encode()
    body = head + np.ascontiguousarray(images, dtype="<f4").tobytes()
    return body, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def v2_binary_outputs(response: Response) -> dict[str, np.ndarray]:
    """The FP32 outputs of a binary-extension v2 response, by name."""
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.body[:length])
    outputs, offset = {}, length
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        outputs[output["name"]] = np.frombuffer(response.body[offset : offset + size], "<f4").reshape(output["shape"])
        offset += size
    return outputs
