"""Dynamic batching, the bounded queue, deadlines and hung-up clients, on a stand-in module with fixed timing."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from serve_inprocess import InProcessServer, StubModule, expected_rows
from serve_support import request, v2_binary_outputs, v2_binary_request

INFER = "/v2/models/irv2/infer"


def _constant_images(values: list[float]) -> np.ndarray:
    return np.stack([np.full((299, 299, 3), v, np.float32) for v in values])


def test_concurrent_requests_share_forward_passes_and_get_their_own_rows():
    stub = StubModule(delay=0.2)
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    with InProcessServer(stub, max_batch_size=8, max_wait_ms=150) as server:

        def send(value: float) -> np.ndarray:
            body, headers = v2_binary_request(_constant_images([value]))
            answer = request(server.port, "POST", INFER, body, headers)
            assert answer.status == 200, answer.body
            return v2_binary_outputs(answer)["logits"]

        with ThreadPoolExecutor(len(values)) as pool:
            rows = list(pool.map(send, values))
    for value, row in zip(values, rows, strict=True):
        np.testing.assert_allclose(row, expected_rows(np.array([value])), rtol=1e-6)
    assert sum(stub.batches) == len(values)
    assert max(stub.batches) > 1, f"no request shared a forward pass: {stub.batches}"


def test_a_full_queue_answers_503_with_retry_after():
    stub = StubModule(delay=0.4)
    body, headers = v2_binary_request(_constant_images([0.5]))
    with InProcessServer(stub, max_batch_size=1, queue_size=1, max_wait_ms=0) as server:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: request(server.port, "POST", INFER, body, headers), range(6)))
        statuses = sorted(a.status for a in answers)
        assert set(statuses) == {200, 503}, statuses
        busy = next(a for a in answers if a.status == 503)
        assert busy.headers["Retry-After"] == "1"
        assert "busy" in busy.json()["error"]
        # With the queue drained, the next request goes through.
        assert request(server.port, "POST", INFER, body, headers).status == 200
        metrics = request(server.port, "GET", "/metrics").body.decode()
    assert 'endpoint="/v2/models/{name}/infer",method="POST",status="503"' in metrics
    assert "irv2_queue_depth 0.0" in metrics


def test_requests_past_their_deadline_get_504():
    stub = StubModule(delay=0.6)
    body, headers = v2_binary_request(_constant_images([0.5]))
    with InProcessServer(stub, timeout=0.2) as server:
        answer = request(server.port, "POST", INFER, body, headers)
        assert answer.status == 504
        assert "timeout of 0.2 s" in answer.json()["error"]
        assert request(server.port, "GET", "/v2/health/ready").status == 200


def test_work_of_clients_that_hung_up_is_dropped():
    """A request still queued when its client disconnects is never computed, and counts as 499."""
    stub = StubModule(delay=0.5)
    body, headers = v2_binary_request(_constant_images([0.25]))
    with InProcessServer(stub, max_batch_size=1, max_wait_ms=0) as server:
        first: dict = {}
        thread = threading.Thread(target=lambda: first.update(a=request(server.port, "POST", INFER, body, headers)))
        thread.start()
        assert stub.started.wait(10)  # the first request is being computed
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            sock.sendall(head.encode() + body)
            time.sleep(0.1)  # queued behind the first request by now
        thread.join(30)
        time.sleep(0.8)  # longer than a forward pass: the second would have run by now
        assert first["a"].status == 200
        assert stub.batches == [1], f"the abandoned request was computed: {stub.batches}"
        metrics = request(server.port, "GET", "/metrics").body.decode()
        assert 'status="499"' in metrics
        assert "irv2_queue_depth 0.0" in metrics
