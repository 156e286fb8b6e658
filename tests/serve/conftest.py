"""Fixtures for the server tests: random full-size weights, real photos as files, the library's answers for
them, and one ``irv2 serve`` subprocess shared by the session.

The server is compared with the library (``module(images)``) on the same weights: what the HTTP layers add
(decoding, batching, the wire formats) must not change the logits by more than float noise.
"""

from __future__ import annotations

import io
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from serve_support import MAX_IMAGE_PIXELS, MAX_INSTANCES, MAX_REQUEST_BYTES, ServerProcess, artifacts_dir

import irv2
from random_module import random_module


@pytest.fixture(scope="session")
def serve_weights(tmp_path_factory, photo_arrays):
    """A native irv2 module of a random 1001-class network (BatchNorm statistics measured on the photos)."""
    module = random_module(photo_arrays)
    # A random head spreads the softmax almost evenly (top-1 about 0.2 %); scaled by 15 its top classes get
    # tens of percent, as trained weights do, so the web page's bars and the probabilities mean something.
    with torch.no_grad():
        module.model.classif.weight *= 15.0
        module.model.classif.bias *= 15.0
    path = tmp_path_factory.mktemp("serve-weights") / "random-irv2"
    irv2.save(module, path)
    return path


@pytest.fixture(scope="session")
def serve_module(serve_weights) -> irv2.Module:
    """The same weights loaded in the test process: the reference the server's answers must match."""
    return irv2.load(serve_weights)


@pytest.fixture(scope="session")
def photo_files(photo_arrays) -> dict[str, bytes]:
    """Each photo as an image file: JPEG, except the grayscale camera as PNG."""
    files = {}
    for name, array in photo_arrays.items():
        buffer = io.BytesIO()
        if name == "camera":
            Image.fromarray(array[..., 0]).save(buffer, "PNG")
        else:
            Image.fromarray(array).save(buffer, "JPEG", quality=90)
        files[name] = buffer.getvalue()
    return files


@pytest.fixture(scope="session")
def expected(serve_module, photo_files) -> dict[str, np.ndarray]:
    """What the library gives for ``photo_files`` (in their order): images, logits and features."""
    images = np.stack([irv2.load_image(data) for data in photo_files.values()])
    return {
        "images": images,
        "logits": serve_module(images),
        "features": serve_module(images, signature=irv2.FEATURE_VECTOR),
    }


@pytest.fixture(scope="session")
def server(serve_weights):
    """One ``irv2 serve`` for the session, with small limits the tests probe; Ctrl-C (SIGINT) must stop it with 0."""
    process = ServerProcess(
        serve_weights,
        "--max-batch-size",
        "4",
        "--max-wait-ms",
        "20",
        "--max-image-pixels",
        str(MAX_IMAGE_PIXELS),
        "--max-request-bytes",
        str(MAX_REQUEST_BYTES),
        "--max-instances",
        str(MAX_INSTANCES),
        "--timeout",
        "300",
    )
    with process:
        yield process
        assert process.stop(signal.SIGINT) == 0, "".join(process.lines[-20:])


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """Directory for test artefacts (screenshot, load-test figures): ``$IRV2_TEST_ARTIFACTS`` or a temp dir."""
    return artifacts_dir(tmp_path_factory.mktemp("serve-artifacts"))
