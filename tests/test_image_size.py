"""A module owns its preprocessing: fine-tuned at 160 px, it is fed 160 px images by every path that feeds it
(``module.preprocess``, ``irv2 classify``, ``irv2 features``, Parquet jobs, the server, the ONNX Runtime engine,
exports), each giving what ``module(module.preprocess(path))`` gives."""

from __future__ import annotations

import base64
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image

import irv2
from cli_runner import run_irv2
from requires import require

SIZE = 160


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory, photo_arrays) -> list[str]:
    root = tmp_path_factory.mktemp("photos")
    paths = []
    for name, array in photo_arrays.items():
        Image.fromarray(array).save(root / f"{name}.jpg", quality=92)
        paths.append(str(root / f"{name}.jpg"))
    return paths


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, photo_arrays, weights_dir) -> str:
    """A module fine-tuned (linear mode) at 160 px on two classes of crops of the photos."""
    data = tmp_path_factory.mktemp("data")
    for label, names in {"animal": ("chelsea", "astronaut"), "thing": ("coffee", "rocket")}.items():
        (data / label).mkdir()
        for name in names:
            array = photo_arrays[name]
            for i, (top, left) in enumerate(((0, 0), (30, 40), (60, 10))):
                crop = array[top : top + array.shape[0] // 2, left : left + array.shape[1] // 2]
                Image.fromarray(np.ascontiguousarray(crop)).save(data / label / f"{name}{i}.png")
    out = tmp_path_factory.mktemp("tuned") / "module"
    irv2.finetune(data, out, weights=weights_dir, mode="linear", image_size=SIZE, epochs=2, batch_size=4, quiet=True)
    return str(out)


@pytest.fixture(scope="module")
def module(tuned):
    return irv2.load(tuned)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _expected_scores(module, paths, draft: bool = True) -> np.ndarray:
    return _softmax(module(np.stack([module.preprocess(p, draft=draft) for p in paths])))


def test_the_fine_tuned_module_records_its_size_and_recipe(module, tuned):
    assert module.expected_image_size == (SIZE, SIZE) == irv2.get_expected_image_size(module)
    assert module.preprocessing.to_dict()["image_size"] == [SIZE, SIZE]
    with open(f"{tuned}/irv2.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["preprocessing"]["image_size"] == [SIZE, SIZE] and saved["image_size"] == [SIZE, SIZE]


def test_preprocess_takes_paths_bytes_pil_images_and_arrays(module, photo_files, photo_arrays):
    path = photo_files[1]
    expected = module.preprocess(path)
    assert expected.shape == (SIZE, SIZE, 3) and expected.dtype == np.float32
    with open(path, "rb") as f:
        data = f.read()
    np.testing.assert_array_equal(module.preprocess(data), expected)
    with Image.open(path) as image:
        np.testing.assert_array_equal(module.preprocess(image), expected)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(module.preprocess(pixels), expected)
    # The recipe is TF-Slim's evaluation preprocessing at the module's size.
    np.testing.assert_array_equal(expected, irv2.load_image(path, size=SIZE))
    with pytest.raises(ValueError, match="channels first"):
        module.preprocess(pixels.transpose(2, 0, 1))


def test_the_cli_classifies_at_the_modules_size(tuned, module, photo_files):
    run = run_irv2("classify", *photo_files, "-w", tuned, "--format", "json", "-k", "2")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    expected = _expected_scores(module, photo_files)
    for row, scores in zip(rows, expected, strict=True):
        for prediction in row["predictions"]:
            assert prediction["score"] == pytest.approx(float(scores[prediction["index"]]), rel=1e-5)
    exact = run_irv2("classify", photo_files[0], "-w", tuned, "--format", "json", "-k", "2", "--exact-decode")
    (top,) = [json.loads(line)["predictions"][0] for line in exact.stdout.splitlines()]
    scores = _expected_scores(module, photo_files[:1], draft=False)[0]
    assert top["score"] == pytest.approx(float(scores[top["index"]]), rel=1e-5)


def test_features_and_parquet_jobs_at_the_modules_size(tuned, module, photo_files, tmp_path):
    run = run_irv2("features", *photo_files, "-w", tuned, "-o", tmp_path / "f.npz")
    assert run.returncode == 0, run.stderr
    images = np.stack([module.preprocess(p, draft=True) for p in photo_files])
    expected = module(images, signature=irv2.FEATURE_VECTOR)
    np.testing.assert_allclose(np.load(tmp_path / "f.npz")["features"], expected, rtol=1e-4, atol=1e-5)
    pq = require("pyarrow.parquet", "the batch jobs write Parquet: pip install 'irv2[parquet]'")
    job = run_irv2("classify", *photo_files, "-w", tuned, "-o", tmp_path / "c.parquet", "-k", "1")
    assert job.returncode == 0, job.stderr
    table = pq.read_table(tmp_path / "c.parquet").to_pylist()
    scores = _expected_scores(module, photo_files)
    for row, expected_row in zip(table, scores, strict=True):
        assert row["score"] == pytest.approx(float(expected_row[row["index"]]), rel=1e-5)


def test_the_server_takes_the_modules_size(module, photo_files):
    require("aiohttp", "the server: pip install 'irv2[serve]'")
    from serve.serve_inprocess import InProcessServer

    with InProcessServer(module) as server:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/v2/models/irv2", timeout=30) as response:
            metadata = json.load(response)
        assert metadata["inputs"][0]["shape"] == [-1, SIZE, SIZE, 3]
        with open(photo_files[2], "rb") as f:
            body = {"instances": [{"b64": base64.b64encode(f.read()).decode()}]}
        request = urllib.request.Request(
            f"{base}/v1/models/irv2:predict", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            (logits,) = json.load(response)["predictions"]
    expected = module(module.preprocess(photo_files[2])[None])[0]
    np.testing.assert_allclose(np.asarray(logits, np.float32), expected, rtol=1e-4, atol=1e-5)


def test_onnxruntime_engine_runs_at_the_modules_size(tuned, module, photo_files, tmp_path, monkeypatch):
    require("onnxruntime", "the ONNX Runtime engine: pip install 'irv2[onnx]'")
    monkeypatch.setenv("IRV2_HOME", str(tmp_path))
    engine = irv2.load(tuned, engine="onnxruntime")
    images = np.stack([module.preprocess(p) for p in photo_files[:2]])
    np.testing.assert_allclose(engine(images), module(images), rtol=1e-4, atol=1e-4)
