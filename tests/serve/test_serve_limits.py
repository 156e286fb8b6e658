"""Refusals: every bad request gets a 4xx with ``{"error": ...}`` and the server goes on serving.

Covers malformed bodies (400), oversized ones (413), decompression bombs (400, refused on the header),
unknown models, versions and paths (404), wrong methods (405), and the metrics and logs they leave.
"""

from __future__ import annotations

import base64
import http.client
import struct
import zlib

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_support import MAX_IMAGE_PIXELS, MAX_INSTANCES, MAX_REQUEST_BYTES

PREDICT = "/v1/models/irv2:predict"
INFER = "/v2/models/irv2/infer"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int, *, full: bool) -> bytes:
    """A 1-bit grayscale PNG of ``width`` x ``height`` black pixels.

    ``full``: the whole zlib stream (a real bomb: 20000 x 20000 is 50 MB of rows in about 50 kB); else only
    the first rows, enough for a header-level check to refuse it.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height if full else 4)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def _v2_bytes(data: bytes) -> dict:
    return {"inputs": [{"name": "image_bytes", "shape": [1], "datatype": "BYTES", "data": [_b64(data)["b64"]]}]}


BAD_REQUESTS = {
    "invalid JSON": (PREDICT, b'{"instances": [', "not valid JSON"),
    "not an object": (PREDICT, b"[1, 2, 3]", "must be a JSON object"),
    "no instances": (PREDICT, b'{"signature_name": "serving_default"}', "exactly one of"),
    "empty instances": (PREDICT, b'{"instances": []}', "non-empty list"),
    "wrong shape": (PREDICT, b'{"instances": [[[[0.5, 0.5, 0.5]]]]}', "shape [299, 299, 3]"),
    "ragged array": (PREDICT, b'{"instances": [[[0.5], [0.5, 0.5]]]}', "rectangular"),
    "strings as pixels": (PREDICT, b'{"instances": [[["a"]]]}', "numbers"),
    "unknown signature": (PREDICT, b'{"signature_name": "detect", "instances": [1]}', "unknown signature_name"),
    "not base64": (PREDICT, b'{"instances": [{"b64": "%%%"}]}', "not valid base64"),
    "not an image": (PREDICT, b'{"instances": [{"b64": "aGVsbG8gd29ybGQ="}]}', "not a recognised image"),
    "v2 no inputs": (INFER, b'{"inputs": []}', "exactly one input"),
    "v2 unknown input": (
        INFER,
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}',
        "unknown input",
    ),
    "v2 data does not fill shape": (
        INFER,
        b'{"inputs": [{"name": "images", "shape": [1, 299, 299, 3], "datatype": "FP32", "data": [0.5]}]}',
        "do not fill",
    ),
    "v2 bad binary header": (INFER, b'{"inputs": []}', "Inference-Header-Content-Length"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_400_with_a_json_error(server, case):
    path, body, message = BAD_REQUESTS[case]
    headers = {"Inference-Header-Content-Length": "999"} if case == "v2 bad binary header" else {}
    answer = server.request("POST", path, body, headers=headers)
    assert answer.status == 400, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    assert message in answer.json()["error"]


def test_truncated_image_is_400(server, photo_files):
    data = photo_files["chelsea"][: len(photo_files["chelsea"]) // 2]
    answer = server.request("POST", INFER, _v2_bytes(data))
    assert answer.status == 400 and "truncated" in answer.json()["error"]


def test_decompression_bombs_are_refused_before_decoding(server):
    bomb = bomb_png(20_000, 20_000, full=True)  # 400 MP declared, about 50 kB on the wire
    assert len(bomb) < 200_000
    answer = server.request("POST", PREDICT, {"instances": [_b64(bomb)]})
    assert answer.status == 400
    assert "decompression bomb" in answer.json()["error"]
    # Over the server's own --max-image-pixels (4 MP) but far under Pillow's limit: irv2's header check.
    answer = server.request("POST", INFER, _v2_bytes(bomb_png(3000, 3000, full=False)))
    assert answer.status == 400
    error = answer.json()["error"]
    assert "3000x3000" in error and f"{MAX_IMAGE_PIXELS:,}" in error
    assert server.request("GET", "/v2/health/ready").status == 200


def test_oversized_bodies_get_413(server, photo_files):
    # Declared too large: refused on the header, without waiting for the body.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", PREDICT)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 413 and "over the limit" in answer.read().decode()
    conn.close()
    # Sent chunked, so only counting the bytes can catch it.
    chunks = (b" " * 1024 * 1024 for _ in range(MAX_REQUEST_BYTES // (1024 * 1024) + 2))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", PREDICT, body=chunks, encode_chunked=True)
        answer = conn.getresponse()
        assert answer.status == 413 and "error" in answer.read().decode()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before the client has finished sending: also a refusal
    finally:
        conn.close()
    # Too many images in one request.
    body = {"instances": [_b64(photo_files["coffee"])] * (MAX_INSTANCES + 1)}
    answer = server.request("POST", PREDICT, body)
    assert answer.status == 413 and "--max-instances" in answer.json()["error"]
    assert server.request("GET", "/v2/health/ready").status == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/models/resnet:predict", 404),
        ("GET", "/v1/models/resnet", 404),
        ("GET", "/v1/models/irv2/versions/2", 404),
        ("POST", "/v2/models/resnet/infer", 404),
        ("GET", "/v2/models/irv2/versions/7/ready", 404),
        ("GET", "/no/such/path", 404),
        ("GET", PREDICT, 405),
        ("DELETE", "/v2/models/irv2", 405),
    ],
)
def test_unknown_models_paths_and_methods(server, method, path, status):
    body = b'{"instances": [[0]]}' if method == "POST" else None
    answer = server.request(method, path, body)
    assert answer.status == status
    assert answer.json()["error"]


def _samples(server) -> dict[tuple[str, tuple], float]:
    text = server.request("GET", "/metrics").body.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_move_and_logs_are_json(server, photo_files):
    before = _samples(server)
    names = {name for name, _ in before}
    for name in (
        "irv2_http_requests_total",
        "irv2_http_request_duration_seconds_bucket",
        "irv2_http_requests_in_flight",
        "irv2_batch_size_bucket",
        "irv2_inference_duration_seconds_count",
        "irv2_images_total",
        "irv2_queue_depth",
        "process_resident_memory_bytes",
    ):
        assert name in names
    assert server.request("POST", PREDICT, {"instances": [_b64(photo_files["rocket"])] * 2}).status == 200
    assert server.request("POST", PREDICT, b"{").status == 400
    after = _samples(server)

    def requests(status: str) -> float:
        key = (
            "irv2_http_requests_total",
            (("endpoint", "/v1/models/{name}:predict"), ("method", "POST"), ("status", status)),
        )
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert requests("200") == 1 and requests("400") == 1
    assert after[("irv2_images_total", ())] - before.get(("irv2_images_total", ()), 0.0) == 2
    assert after[("irv2_queue_depth", ())] == 0
    access = [r for r in server.records() if r.get("event") == "access"]
    assert any(r["path"] == PREDICT and r["status"] == 400 and r["method"] == "POST" for r in access)
    assert all(isinstance(r["duration_ms"], float) for r in access)


def test_model_answers_match_one_request_after_the_errors(server, photo_files, expected):
    """After all the refusals above, the same server still gives correct answers."""
    answer = server.request("POST", PREDICT, {"instances": [_b64(photo_files["astronaut"])]})
    assert answer.status == 200
    np.testing.assert_allclose(
        answer.json()["predictions"][0], expected["logits"][0], atol=1e-4 * np.abs(expected["logits"][0]).max()
    )


def test_page_is_served(server):
    page = server.request("GET", "/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b'<meta name="irv2-model" content="irv2">' in page.body
