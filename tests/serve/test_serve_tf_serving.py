"""TF Serving's REST API with plain HTTP requests, as ``curl`` or ``requests`` users send them."""

from __future__ import annotations

import base64

import numpy as np
from serve_support import assert_close


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def test_status_and_metadata(server):
    status = server.request("GET", "/v1/models/irv2")
    assert status.status == 200
    assert status.json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert server.request("GET", "/v1/models/irv2/versions/1").status == 200
    metadata = server.request("GET", "/v1/models/irv2/metadata").json()
    assert metadata["model_spec"] == {"name": "irv2", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "image_classification", "image_feature_vector"}
    images = signatures["serving_default"]["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "299", "299", "3"]
    widths = {name: s["outputs"]["default"]["tensor_shape"]["dim"][1]["size"] for name, s in signatures.items()}
    assert widths == {"serving_default": "1001", "image_classification": "1001", "image_feature_vector": "1536"}


def test_predict_image_files(server, photo_files, expected):
    answer = server.request("POST", "/v1/models/irv2:predict", {"instances": [_b64(d) for d in photo_files.values()]})
    assert answer.status == 200, answer.body
    predictions = np.array(answer.json()["predictions"])
    assert predictions.shape == (len(photo_files), 1001)
    assert_close(predictions, expected["logits"])


def test_predict_float_arrays_and_mixed_rows(server, photo_files, expected):
    """Nested [299, 299, 3] lists, a named-input row and a b64 row in one request, via the versioned URL."""
    body = {
        "signature_name": "image_classification",
        "instances": [
            expected["images"][0].tolist(),
            {"images": expected["images"][1].tolist()},
            _b64(list(photo_files.values())[2]),
        ],
    }
    answer = server.request("POST", "/v1/models/irv2/versions/1:predict", body)
    assert answer.status == 200, answer.body
    assert_close(answer.json()["predictions"], expected["logits"][:3])


def test_feature_vector_signature_and_columnar_format(server, photo_files, expected):
    files = list(photo_files.values())[:2]
    body = {"signature_name": "image_feature_vector", "inputs": {"images": [_b64(d) for d in files]}}
    answer = server.request("POST", "/v1/models/irv2:predict", body)
    assert answer.status == 200, answer.body
    outputs = np.array(answer.json()["outputs"])  # the columnar form answers with "outputs"
    assert outputs.shape == (2, 1536)
    assert_close(outputs, expected["features"][:2])
    body = {"signature_name": "serving_default", "inputs": [_b64(files[0])]}
    assert_close(server.request("POST", "/v1/models/irv2:predict", body).json()["outputs"], expected["logits"][:1])
