"""Graceful shutdown: SIGTERM while a request is in flight; it is answered, then exit 0.

(Ctrl-C, SIGINT, is the same path: the session server of conftest.py is stopped with it and must exit 0.)
"""

from __future__ import annotations

import base64
import re
import signal
import threading
import time

import pytest
from serve_support import ServerProcess, assert_close, request

PREDICT = "/v1/models/irv2:predict"


def _in_flight(server: ServerProcess) -> float:
    text = server.request("GET", "/metrics").body.decode()
    return float(re.search(r"^irv2_http_requests_in_flight (\S+)$", text, re.M)[1])


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_then_exits_0(serve_weights, photo_files, expected):
    names = list(photo_files)
    body = {"instances": [{"b64": base64.b64encode(photo_files[n]).decode()} for n in names]}
    with ServerProcess(serve_weights, "--max-batch-size", "2") as server:
        answers: dict = {}
        client = threading.Thread(target=lambda: answers.update(a=server.request("POST", PREDICT, body)))
        client.start()
        deadline = time.monotonic() + 60
        while _in_flight(server) < 2:  # this /metrics request and the prediction
            assert time.monotonic() < deadline and client.is_alive(), "the prediction never got in flight"
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        client.join(120)
        assert server.proc.wait(120) == 0, "".join(server.lines[-10:])
    answer = answers["a"]
    assert answer.status == 200
    assert_close(answer.json()["predictions"], expected["logits"])
    events = [r.get("event") for r in server.records()]
    assert events.index("shutdown") < events.index("stopped")
    access = [r for r in server.records() if r.get("event") == "access" and r["path"] == PREDICT]
    assert access and access[0]["status"] == 200
    with pytest.raises(ConnectionRefusedError):
        request(server.port, "GET", "/v2/health/live", timeout=5)
