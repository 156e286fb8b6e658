"""The wire formats without a server: v2 binary tensors, classification strings, base64, and the CLI's flags."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from serve_inprocess import StubModule

from irv2.cli.main import main
from irv2.errors import PayloadTooLarge, RequestError
from irv2.serve import ServeConfig
from irv2.serve.decode import b64decode, float_images
from irv2.serve.protocols import tf_serving, v2
from irv2.serve.protocols.v2_tensors import decode_bytes_elements, encode_bytes_elements


def _binary_body(header: dict, *chunks: bytes) -> tuple[bytes, str]:
    head = json.dumps(header).encode()
    return head + b"".join(chunks), str(len(head))


def test_bytes_tensor_round_trip_and_truncation():
    elements = [b"", b"\x00\xff" * 3, "ünïcode".encode()]
    raw = encode_bytes_elements(elements)
    assert raw[:4] == struct.pack("<I", 0)
    assert decode_bytes_elements(memoryview(raw), "x") == elements
    with pytest.raises(RequestError, match="runs past the end"):
        decode_bytes_elements(memoryview(raw[:-1]), "x")
    with pytest.raises(RequestError, match="4-byte length"):
        decode_bytes_elements(memoryview(raw + b"\x01\x00"), "x")


def test_classification_strings_follow_triton():
    values = np.array([[0.1, 0.7, 0.2, 0.7]], np.float32)
    strings = v2.classification_strings(values, 3, ["a", "b", "c", "d:e"])
    # Ties keep the lower index first; labels may contain colons; six decimals as std::to_string.
    assert strings.tolist() == [[b"0.700000:1:b", b"0.700000:3:d:e", b"0.200000:2:c"]]
    assert v2.classification_strings(values, 10, list("abcd")).shape == (1, 4)
    probabilities = v2.softmax(np.array([[1000.0, 1000.0]], np.float32))
    np.testing.assert_allclose(probabilities, [[0.5, 0.5]])


def test_v2_binary_parsing_refuses_inconsistent_sizes():
    module, config = StubModule(), ServeConfig()
    image = np.zeros((1, 299, 299, 3), "<f4").tobytes()
    tensor = {"name": "images", "shape": [1, 299, 299, 3], "datatype": "FP32"}
    body, length = _binary_body({"inputs": [{**tensor, "parameters": {"binary_data_size": len(image)}}]}, image, b"x")
    with pytest.raises(RequestError, match="1 bytes of binary data"):
        v2.parse_infer(body, length, module, config)
    body, length = _binary_body({"inputs": [{**tensor, "parameters": {"binary_data_size": 10**9}}]}, image)
    with pytest.raises(RequestError, match="runs past the end"):
        v2.parse_infer(body, length, module, config)
    body, length = _binary_body({"inputs": [{**tensor, "parameters": {"binary_data_size": 12}}]}, image[:12])
    prepared = v2.parse_infer(body, length, module, config)  # counting is cheap; decoding checks the bytes
    with pytest.raises(RequestError, match="12 bytes of binary data, shape"):
        prepared.decode()
    with pytest.raises(RequestError, match="whole number"):
        v2.parse_infer(body, "twelve", module, config)
    many = {"inputs": [{**tensor, "shape": [65, 299, 299, 3], "data": []}]}
    with pytest.raises(PayloadTooLarge):
        v2.parse_infer(json.dumps(many).encode(), None, module, config)


def test_v2_outputs_are_checked_before_any_work():
    module, config = StubModule(), ServeConfig()
    base = {"inputs": [{"name": "image_bytes", "shape": [1], "datatype": "BYTES", "data": ["AAAA"]}]}
    for outputs, message in [
        ([{"name": "logits"}, {"name": "logits"}], "twice"),
        ([{"name": "labels", "parameters": {"classification": 0}}], "positive integer"),
        ([{"name": "features", "parameters": {"classification": 3}}], "classification applies"),
        ([{"name": "logits", "parameters": {"binary_data": "yes"}}], "true or false"),
        ("logits", "non-empty list"),
    ]:
        with pytest.raises(RequestError, match=message):
            v2.parse_infer(json.dumps({**base, "outputs": outputs}).encode(), None, module, config)
    prepared = v2.parse_infer(json.dumps({**base, "outputs": [{"name": "features"}]}).encode(), None, module, config)
    assert (prepared.logits, prepared.features) == (False, True)


def test_tf_serving_signatures_choose_outputs():
    module, config = StubModule(), ServeConfig()
    for signature, wanted in [("image_feature_vector", (False, True)), ("serving_default", (True, False))]:
        body = json.dumps({"signature_name": signature, "instances": [[[[0.5] * 3] * 299] * 299]}).encode()
        prepared = tf_serving.parse_predict(body, module, config)
        assert (prepared.logits, prepared.features) == wanted
        assert prepared.decode().shape == (1, 299, 299, 3)


def test_base64_variants_and_float_checks():
    data = bytes(range(256))
    assert b64decode(base64.b64encode(data).decode(), "x") == data
    assert b64decode(base64.urlsafe_b64encode(data).decode().rstrip("="), "x") == data  # URL-safe, unpadded
    assert b64decode(base64.encodebytes(data).decode(), "x") == data  # with line breaks
    with pytest.raises(RequestError, match="base64 string"):
        b64decode(12, "x")
    with pytest.raises(RequestError, match="finite"):
        float_images(np.full((299, 299, 3), np.nan), StubModule(), "x")
    with pytest.raises(RequestError, match=r"\[0, 1\]"):
        float_images(np.full((299, 299, 3), -0.5), StubModule(), "x")


def test_cli_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for flag in ("--weights", "--host", "--port", "--model-name", "--max-batch-size", "--queue-size", "--workers"):
        assert flag in usage
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert main(["serve", "--model-name", "a/b"]) == 2  # refused before any weights are loaded
    assert "model_name must be" in capsys.readouterr().err
    assert main(["serve", "--max-request-bytes", "64M", "--max-wait-ms", "-1"]) == 2


def test_importing_irv2_does_not_import_the_server_stack():
    code = "import irv2, irv2.serve, irv2.cli.main, sys\n"
    code += "print(*(m in sys.modules for m in ('aiohttp', 'prometheus_client')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
