"""A bounded load test on loopback, malformed requests mixed in, and clients that hang up mid-request.

The load test's size is ``$IRV2_SERVE_LOAD_REQUESTS`` requests (default 48) from
``$IRV2_SERVE_LOAD_CONCURRENCY`` clients (default 16): on two CPU cores a forward pass takes about 0.2 s per
image, so the default keeps the suite short; docs/deploy.md gives figures from larger runs of this test.
Its figures (p50/p99 latency, throughput) are printed and written to ``load_test.json`` in the artefact
directory (``$IRV2_TEST_ARTIFACTS``, else a pytest temporary directory).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serve_support import assert_close, request

PREDICT = "/v1/models/irv2:predict"

MALFORMED = [
    b'{"instances": [{"b64": "',  # cut-off JSON
    json.dumps({"instances": [{"b64": base64.b64encode(b"GIF89a nothing more").decode()}]}).encode(),
    json.dumps({"instances": [[[0.5, 0.5, 0.5]]]}).encode(),  # wrong shape
    json.dumps({"signature_name": "nope", "instances": [[0]]}).encode(),
    b"\xff\xfe not even text",
]


def _load_figures(latencies: list[float], elapsed: float, total: int, concurrency: int) -> dict:
    ms = np.array(latencies) * 1000.0
    return {
        "requests": total,
        "good_requests": len(latencies),
        "malformed_requests": total - len(latencies),
        "concurrency": concurrency,
        "errors": 0,
        "elapsed_s": round(elapsed, 2),
        "throughput_rps": round(total / elapsed, 2),
        "good_images_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms": {q: round(float(np.percentile(ms, p)), 1) for q, p in (("p50", 50), ("p90", 90), ("p99", 99))}
        | {"max": round(float(ms.max()), 1)},
        "cpu_cores": os.cpu_count(),
        # Other work on the machine slows the server down; the load average says how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "server_flags": "--max-batch-size 4 --max-wait-ms 20 (one worker)",
        "command": f"IRV2_SERVE_LOAD_REQUESTS={total} IRV2_SERVE_LOAD_CONCURRENCY={concurrency} "
        "pytest tests/serve/test_serve_load.py -k load_with -s",
    }


@pytest.mark.slow
def test_load_with_malformed_requests_mixed_in(server, photo_files, expected, artifacts):
    total = int(os.environ.get("IRV2_SERVE_LOAD_REQUESTS", "48"))
    concurrency = int(os.environ.get("IRV2_SERVE_LOAD_CONCURRENCY", "16"))
    names = list(photo_files)
    good = [json.dumps({"instances": [{"b64": base64.b64encode(photo_files[n]).decode()}]}).encode() for n in names]
    local = threading.local()

    def send(i: int) -> tuple[int, float | None, str | None]:
        """Request ``i``: every fourth is malformed and must get a 400; the others must match the library."""
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        malformed = i % 4 == 3
        body = MALFORMED[i % len(MALFORMED)] if malformed else good[i % len(good)]
        started = time.perf_counter()
        answer = request(server.port, "POST", PREDICT, body, connection=local.conn)
        latency = time.perf_counter() - started
        if malformed:
            ok = answer.status == 400 and "error" in answer.json()
            return i, None, None if ok else f"malformed request {i}: {answer.status} {answer.body[:200]!r}"
        if answer.status != 200:
            return i, latency, f"request {i}: {answer.status} {answer.body[:200]!r}"
        try:
            assert_close(answer.json()["predictions"], expected["logits"][i % len(good)][None])
        except AssertionError as exc:
            return i, latency, f"request {i}: wrong logits ({exc})"
        return i, latency, None

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(send, range(total)))
    elapsed = time.perf_counter() - started
    errors = [error for _, _, error in results if error]
    assert not errors, errors[:5]
    figures = _load_figures([lat for _, lat, _ in results if lat is not None], elapsed, total, concurrency)
    (artifacts / "load_test.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nload test ({artifacts / 'load_test.json'}): {json.dumps(figures)}")
    assert server.request("GET", "/v2/health/ready").status == 200


def _raw(port: int, data: bytes, *, linger_reset: bool = False, wait: float = 0.0) -> None:
    """Send ``data`` on a fresh connection and hang up (with a TCP reset when ``linger_reset``)."""
    sock = socket.create_connection(("127.0.0.1", port))
    if linger_reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.sendall(data)
    time.sleep(wait)
    sock.close()


def test_clients_that_hang_up_leave_the_server_healthy(server, photo_files, expected):
    body = json.dumps({"instances": [{"b64": base64.b64encode(photo_files["coffee"]).decode()}]}).encode()
    head = f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    full = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    _raw(server.port, full[: len(full) // 2], wait=0.2)  # half a body, then gone
    _raw(server.port, full)  # a whole request, gone before the answer
    _raw(server.port, full, wait=0.3, linger_reset=True)  # gone with a reset while the image is computed
    _raw(server.port, head.encode())  # headers cut short
    _raw(server.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))  # a TLS hello: not HTTP
    _raw(server.port, (head + "Content-Length: 99999999999999999999\r\n\r\n").encode())
    assert server.proc.poll() is None
    assert server.request("GET", "/v2/health/ready").status == 200
    answer = server.request("POST", PREDICT, body)
    assert answer.status == 200
    assert_close(answer.json()["predictions"], expected["logits"][list(photo_files).index("coffee")][None])
