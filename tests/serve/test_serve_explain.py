"""``POST /v1/models/NAME:explain``: the Grad-CAM maps behind the web page's heatmap.

The server's maps are compared with ``irv2.explain`` run here on the same weights and the same photo; the
crop boxes with the central crop worked out by hand; the queue's handling of explanations (run alone, on an
inference thread) with a stand-in module.
"""

from __future__ import annotations

import asyncio
import base64
import threading

import numpy as np
import pytest
from serve_inprocess import StubModule
from serve_support import MAX_INSTANCES

import irv2
from irv2.preprocessing import Preprocessing
from irv2.serve import ServeConfig
from irv2.serve.batcher import Batcher
from irv2.serve.protocols.explain import crop_box

EXPLAIN = "/v1/models/irv2:explain"


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    return shifted / shifted.sum()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "crop"),
    [
        # chelsea is 300 x 451: TF's central_crop keeps int((300 - 262.5) / 2) = 18 rows off the top and
        # int((451 - 394.625) / 2) = 28 columns off the left, as many at the other side.
        ("chelsea", {"top": 18 / 300, "left": 28 / 451, "height": 264 / 300, "width": 395 / 451}),
        # camera, a grayscale PNG, is 512 x 512: 32 pixels off each side.
        ("camera", {"top": 32 / 512, "left": 32 / 512, "height": 448 / 512, "width": 448 / 512}),
    ],
)
def test_explain_answers_the_library_map_of_the_top_class(server, serve_module, photo_files, expected, name, crop):
    photo = photo_files[name]
    answer = server.request("POST", EXPLAIN, {"instances": [_b64(photo)]})
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    (found,) = answer.json()["explanations"]

    reference = irv2.explain(serve_module, serve_module.preprocess(photo)[None])[0]
    assert np.asarray(found["map"]).shape == reference.shape == (8, 8)
    np.testing.assert_allclose(found["map"], reference, rtol=0, atol=1e-6)
    assert np.max(found["map"]) == 1.0  # divided by its maximum

    logits = expected["logits"][list(photo_files).index(name)]
    top = int(np.argmax(logits))
    assert found["class"] == top
    assert found["label"] == irv2.labels()[top]
    assert found["score"] == pytest.approx(_softmax(logits)[top], abs=1e-5)
    assert found["image_size"] == [299, 299]
    assert found["crop"] == pytest.approx(crop, abs=1e-12)


@pytest.mark.slow
def test_explain_takes_float_images_a_target_and_the_versioned_path(server, serve_module, expected):
    images = expected["images"][:2]
    target = irv2.labels().index("tabby")
    answer = server.request(
        "POST",
        "/v1/models/irv2/versions/1:explain",
        {"instances": images.tolist(), "target": "tabby"},
    )
    assert answer.status == 200, answer.body
    found = answer.json()["explanations"]
    reference = irv2.explain(serve_module, images, target=target)
    assert len(found) == 2
    for row, ref in zip(found, reference, strict=True):
        np.testing.assert_allclose(row["map"], ref, rtol=0, atol=1e-6)
        assert (row["class"], row["label"]) == (target, "tabby")
        assert row["crop"] == {"top": 0.0, "left": 0.0, "height": 1.0, "width": 1.0}  # already the input
    probabilities = [_softmax(row)[target] for row in expected["logits"][:2]]
    assert [row["score"] for row in found] == pytest.approx(probabilities, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        ({}, 400, '"instances" must be a non-empty list'),
        ({"instances": []}, 400, '"instances" must be a non-empty list'),
        ({"instances": [{"b64": "@@@"}]}, 400, "instance 0: not valid base64"),
        ({"instances": [_b64(b"not an image")]}, 400, "instance 0: not a recognised image file"),
        ({"instances": [[0.5, 0.5]]}, 400, "instance 0: expected images of shape [299, 299, 3]"),
        ({"instances": [_b64(b"x")], "target": 1001}, 400, "target 1001: out of range"),
        ({"instances": [_b64(b"x")], "target": "tabbby"}, 400, "did you mean 'tabby'"),
        ({"instances": [_b64(b"x")], "taget": 5}, 400, "unknown field(s) ['taget']"),
        ({"instances": [_b64(b"x")] * (MAX_INSTANCES + 1)}, 413, "more than --max-instances"),
    ],
)
def test_bad_explain_requests_get_json_errors(server, body, status, message):
    answer = server.request("POST", EXPLAIN, body)
    assert answer.status == status, answer.body
    assert message in answer.json()["error"]


@pytest.mark.slow
def test_explain_routes_refuse_unknown_models_and_other_methods_and_are_counted(server):
    missing = server.request("POST", "/v1/models/other:explain", {"instances": [[0.0]]})
    assert missing.status == 404 and "'other' not found" in missing.json()["error"]
    wrong_method = server.request("GET", EXPLAIN)
    assert wrong_method.status == 405 and wrong_method.headers["Allow"] == "POST"
    assert server.request("POST", EXPLAIN, b"{").status == 400
    metrics = server.request("GET", "/metrics").body.decode()
    assert 'endpoint="/v1/models/{name}:explain",method="POST",status="400"' in metrics


@pytest.mark.parametrize(
    ("preprocessing", "size", "box"),
    [
        # TF-Slim: int((H - 0.875 H) / 2) off each side: 600 x 401 keeps rows 37..563 and columns 25..376.
        (Preprocessing(), (600, 401), (37 / 600, 25 / 401, 526 / 600, 351 / 401)),
        (Preprocessing(central_fraction=None), (600, 401), (0.0, 0.0, 1.0, 1.0)),
        # timm at 299, crop_pct 0.8975: the shorter side to floor(299 / 0.8975) = 333, the other to
        # int(333 * 400 / 300) = 444; the 299 x 299 centre starts at round(17.0) = 17 and round(72.5) = 72.
        (Preprocessing(recipe="timm", crop_pct=0.8975), (300, 400), (17 / 333, 72 / 444, 299 / 333, 299 / 444)),
        (Preprocessing(recipe="timm", crop_pct=0.8975), (400, 300), (72 / 444, 17 / 333, 299 / 444, 299 / 333)),
    ],
)
def test_crop_box_is_where_the_input_lies_in_the_photo(preprocessing, size, box):
    found = crop_box(preprocessing, *size)
    assert [found[key] for key in ("top", "left", "height", "width")] == pytest.approx(box, abs=1e-12)


def test_crop_box_matches_the_timm_recipe_on_a_marked_photo():
    """A photo whose pixel values are their own coordinates: the input's corners tell where it was cut."""
    preprocessing = Preprocessing(recipe="timm", crop_pct=0.8975)
    height, width = 300, 400
    rows = np.repeat(np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    cols = np.repeat(np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :], height, axis=0)
    image = preprocessing(np.stack([rows, cols, np.zeros_like(rows)], axis=-1))
    box = crop_box(preprocessing, height, width)
    # The first and last rows (columns) of the input sample the photo at the box's edges, to a pixel or so.
    assert image[0, 0, 0] == pytest.approx(box["top"], abs=2 / height)
    assert image[-1, 0, 0] == pytest.approx(box["top"] + box["height"], abs=2 / height)
    assert image[0, 0, 1] == pytest.approx(box["left"], abs=2 / width)
    assert image[0, -1, 1] == pytest.approx(box["left"] + box["width"], abs=2 / width)


def test_a_task_runs_alone_on_an_inference_thread():
    """A task queued between two plain requests is not batched with either, and runs off the event loop."""
    stub = StubModule()
    batcher = Batcher(stub, ServeConfig(max_batch_size=8, max_wait_ms=200))
    batcher.start()
    seen: dict = {}

    def task(images: np.ndarray) -> str:
        seen.update(thread=threading.current_thread().name, count=len(images))
        return "explained"

    async def main() -> list:
        image = np.zeros((1, 299, 299, 3), np.float32)
        jobs = [
            batcher.infer(batcher.admit(1), image, logits=True, features=False),
            batcher.infer(batcher.admit(1), image, logits=False, features=False, task=task),
            batcher.infer(batcher.admit(1), image, logits=True, features=False),
        ]
        return await asyncio.gather(*jobs)

    try:
        first, middle, last = asyncio.run(main())
    finally:
        batcher.close(10)
    assert middle == "explained"
    assert seen == {"thread": "irv2-infer-0", "count": 1}
    assert first["logits"].shape == last["logits"].shape == (1, 1001)
    assert stub.batches == [1, 1], "a plain request joined the task's turn"
    assert batcher.depth == 0
