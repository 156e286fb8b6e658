"""The Open Inference Protocol v2 endpoints through the real Triton client (``tritonclient.http``).

tritonclient sends inputs and asks for outputs in Triton's binary tensor data extension by default; each
test also covers the pure-JSON forms. Outputs must match ``module(...)`` within 1e-4 of the largest logit.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
import tritonclient.http as triton
from serve_support import assert_close
from tritonclient.utils import InferenceServerException

import irv2


@pytest.fixture(scope="module")
def client(server):
    with triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=300.0) as client:
        yield client


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_health_and_metadata(client, serve_module):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("irv2")
    assert not client.is_model_ready("resnet50")
    server = client.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"] and "classification" in server["extensions"]
    metadata = client.get_model_metadata("irv2")
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]} == {"images": "FP32", "image_bytes": "BYTES"}
    shapes = {o["name"]: o["shape"] for o in metadata["outputs"]}
    assert shapes == {"logits": [-1, 1001], "probabilities": [-1, 1001], "labels": [-1, -1], "features": [-1, 1536]}
    config = client.get_model_config("irv2")
    assert config["max_batch_size"] == 4 and config["input"][0]["dims"] == [299, 299, 3]
    with pytest.raises(InferenceServerException, match="not found"):
        client.get_model_metadata("resnet50")


def test_fp32_images_binary_in_and_out(client, expected, serve_module):
    images = expected["images"][:3]
    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)  # binary_data=True: Triton's binary extension
    result = client.infer("irv2", [tensor])  # no outputs named: logits, probabilities and labels, binary
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["logits", "probabilities", "labels"]
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    assert_close(result.as_numpy("logits"), expected["logits"][:3])
    assert_close(result.as_numpy("probabilities"), _softmax(expected["logits"][:3]))
    labels = result.as_numpy("labels")
    assert labels.shape == (3, 5)
    for row, predictions in zip(labels, irv2.top_k(expected["logits"][:3], k=5), strict=True):
        parsed = [item.decode().split(":", 2) for item in row]
        assert [int(index) for _, index, _ in parsed] == [p.index for p in predictions]
        assert [label for _, _, label in parsed] == [p.label for p in predictions]
        np.testing.assert_allclose([float(score) for score, _, _ in parsed], [p.score for p in predictions], atol=2e-6)


def test_fp32_images_as_json(client, expected):
    images = expected["images"][3:5]
    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=False)  # flat JSON list of 2 x 268203 numbers
    outputs = [
        triton.InferRequestedOutput("logits", binary_data=False),
        triton.InferRequestedOutput("features", binary_data=False),
    ]
    result = client.infer("irv2", [tensor], outputs=outputs)
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["logits", "features"]
    assert all("data" in o for o in response["outputs"])
    assert_close(result.as_numpy("logits"), expected["logits"][3:5])
    assert_close(result.as_numpy("features"), expected["features"][3:5])


def test_image_bytes_binary(client, photo_files, expected):
    files = np.array(list(photo_files.values()), dtype=object)
    tensor = triton.InferInput("image_bytes", [len(files)], "BYTES")
    tensor.set_data_from_numpy(files)  # length-prefixed raw image files in the binary part
    outputs = [
        triton.InferRequestedOutput("logits"),
        triton.InferRequestedOutput("features", binary_data=False),
        triton.InferRequestedOutput("probabilities", class_count=3),  # Triton's classification extension
    ]
    result = client.infer("irv2", [tensor], outputs=outputs, request_id="photos-1")
    assert result.get_response()["id"] == "photos-1"
    assert_close(result.as_numpy("logits"), expected["logits"])
    assert_close(result.as_numpy("features"), expected["features"])
    top3 = result.as_numpy("probabilities")
    assert top3.shape == (len(files), 3)
    assert [int(item.decode().split(":")[1]) for item in top3[0]] == [
        p.index for p in irv2.top_k(expected["logits"][:1], 3)[0]
    ]


def test_image_bytes_as_base64_json(client, photo_files, expected):
    encoded = np.array([base64.b64encode(data) for data in photo_files.values()], dtype=object)
    tensor = triton.InferInput("image_bytes", [len(encoded)], "BYTES")
    tensor.set_data_from_numpy(encoded, binary_data=False)  # JSON strings: base64, as KServe sends images
    outputs = [
        triton.InferRequestedOutput("logits", binary_data=False),
        triton.InferRequestedOutput("labels", class_count=2),
    ]
    result = client.infer("irv2", [tensor], outputs=outputs)
    assert_close(result.as_numpy("logits"), expected["logits"])
    assert result.as_numpy("labels").shape == (len(encoded), 2)


def test_errors_reach_the_client(client):
    tensor = triton.InferInput("images", [1, 224, 224, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 224, 224, 3), np.float32))
    with pytest.raises(InferenceServerException, match=r"shape must be \[B, 299, 299, 3\]"):
        client.infer("irv2", [tensor])
    tensor = triton.InferInput("images", [1, 299, 299, 3], "INT32")
    tensor.set_data_from_numpy(np.zeros((1, 299, 299, 3), np.int32))
    with pytest.raises(InferenceServerException, match="datatype must be FP32"):
        client.infer("irv2", [tensor])
    tensor = triton.InferInput("image_bytes", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"not an image at all"], dtype=object))
    with pytest.raises(InferenceServerException, match="not a recognised image"):
        client.infer("irv2", [tensor])
    tensor = triton.InferInput("images", [1, 299, 299, 3], "FP32")
    tensor.set_data_from_numpy(np.full((1, 299, 299, 3), 255.0, np.float32))
    with pytest.raises(InferenceServerException, match=r"in \[0, 1\].*divide by 255"):
        client.infer("irv2", [tensor])
    tensor.set_data_from_numpy(np.zeros((1, 299, 299, 3), np.float32))
    with pytest.raises(InferenceServerException, match="unknown output"):
        client.infer("irv2", [tensor], outputs=[triton.InferRequestedOutput("scores")])
    assert client.is_server_ready()
