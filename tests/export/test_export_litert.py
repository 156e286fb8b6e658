"""LiteRT (.tflite) export, read back with LiteRT's own ``Interpreter``, never with irv2's model code: float32
against TensorFlow on TF-written weights, int8 with its error and size, and a feature-vector module at
160 px."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from export_support import assert_exported, assert_matches_module, export_hub_module, relative_error
from PIL import Image

import irv2
from cli_runner import run_irv2
from irv2.api.module import FEATURE_VECTOR, Module, ModuleInfo
from irv2.export import ExportError, export
from irv2.export.litert import read_litert_metadata
from irv2.preprocessing import preprocess_for_eval

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow]  # TensorFlow converts

# LiteRT's float32 kernels (XNNPACK) against TensorFlow's and irv2's: what this format reaches.
FLOAT32_TOLERANCE = 1e-5


def _interpreter(path) -> Interpreter:
    return Interpreter(model_path=str(path))


def _run(path, images: np.ndarray) -> dict[str, np.ndarray]:
    runner = _interpreter(path).get_signature_runner("serving_default")
    return {name: np.array(value) for name, value in runner(images=images).items()}


@pytest.fixture(scope="session")
def hub_tflite(tmp_path_factory, tf_files, cli_env):
    """``irv2 export`` of the TF-written TF-Hub module to a .tflite file, as a user runs it: (path, process)."""
    return export_hub_module(tmp_path_factory.mktemp("litert"), "irv2.tflite", tf_files, cli_env)


def test_float32_matches_tensorflow(hub_tflite, tf_outputs, photos):
    path, result = hub_tflite
    assert_exported(result, path, "litert")
    outputs = _run(path, photos)
    assert set(outputs) == {"logits", "features"}
    assert relative_error(outputs["logits"], tf_outputs[0]) < FLOAT32_TOLERANCE
    assert relative_error(outputs["features"], tf_outputs[1]) < FLOAT32_TOLERANCE
    assert np.array_equal(outputs["logits"].argmax(1), tf_outputs[0].argmax(1))


def test_the_file_says_what_to_feed_it(hub_tflite):
    path, _ = hub_tflite
    interpreter = _interpreter(path)
    (signature,) = interpreter.get_signature_list().values()
    assert signature == {"inputs": ["images"], "outputs": ["features", "logits"]}
    (image_input,) = interpreter.get_input_details()
    assert image_input["dtype"] == np.float32 and list(image_input["shape_signature"]) == [-1, 299, 299, 3]
    metadata = read_litert_metadata(path)
    assert metadata["labels"][0] == "background" and len(metadata["labels"]) == 1001
    assert metadata["inputs"]["images"] == {
        "dtype": "float32",
        "shape": ["batch", 299, 299, 3],
        "layout": "NHWC",
        "range": [0, 1],
    }
    assert metadata["preprocessing"]["image_size"] == [299, 299]


def test_int8_is_small_and_reports_its_error_honestly(tmp_path, hub_tflite, tf_files, photo_arrays, cli_env):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, array in photo_arrays.items():
        Image.fromarray(array).save(photos / f"{name}.png")
    out = tmp_path / "int8.tflite"
    args = ("--dtype", "int8", "--calibration", photos, "-o", out)
    result = run_irv2("export", "--weights", tf_files["hub_classification"], *args, env=cli_env)
    assert result.returncode == 0, result.stderr
    report = re.search(
        r"\(litert int8, 1001 classes\); int8 against irv2's float32 on 5 calibration images: max relative error "
        r"logits (\S+), features (\S+), top-1 agreement (\S+)%",
        result.stderr,
    )
    assert report, result.stderr
    assert out.stat().st_size <= 0.3 * hub_tflite[0].stat().st_size
    interpreter = _interpreter(out)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32  # fed like the float32 file
    assert any(tensor["dtype"] == np.int8 for tensor in interpreter.get_tensor_details())
    # What it printed is what LiteRT gives on those images, against irv2's float32.
    module = irv2.load(tf_files["hub_classification"], engine="plain")
    images = np.stack([module.preprocess(path) for path in sorted(photos.iterdir())])
    logits, expected = _run(out, images)["logits"], module(images)
    measured = relative_error(logits, expected)
    assert 0 < measured < 0.5
    assert float(report[1]) == pytest.approx(measured, rel=0.06)  # printed to two significant digits
    assert float(report[3]) == pytest.approx(100 * np.mean(logits.argmax(1) == expected.argmax(1)), abs=0.05)


def test_feature_vector_module_at_its_own_size_exports_its_features(tmp_path, features_module, photo_arrays):
    """The two shapes a module of one's own changes, in one file: the features alone, without logits, at 160 px.
    The class count and labels of a fine-tuned head go through the metadata every format shares
    (tests/export/test_export_onnx.py and the SavedModel's tests hold them)."""
    module = Module(features_module.model, ModuleInfo(0, None, default_signature=FEATURE_VECTOR, image_size=160))
    result = export(module, tmp_path / "features.tflite")
    (image_input,) = _interpreter(result.path).get_input_details()
    assert list(image_input["shape_signature"]) == [-1, 160, 160, 3]
    images = np.stack([preprocess_for_eval(image, size=(160, 160)) for image in list(photo_arrays.values())[:3]])
    outputs = _run(result.path, images)
    assert set(outputs) == {"features"}
    errors = assert_matches_module(outputs, module, images)
    assert errors["features"] <= FLOAT32_TOLERANCE, errors
    assert read_litert_metadata(result.path)["labels"] is None


def test_int8_needs_calibration_images(tmp_path, flowers_module):
    with pytest.raises(ExportError, match="int8 export needs calibration images"):
        export(flowers_module, tmp_path / "int8.tflite", dtype="int8")
    assert list(tmp_path.iterdir()) == []


def test_cli_int8_without_calibration_says_how_to_give_it(tmp_path, weights_dir, cli_env):
    result = run_irv2("export", "--weights", weights_dir, "--dtype", "int8", "-o", tmp_path / "m.tflite", env=cli_env)
    assert result.returncode == 2
    assert "--dtype int8 needs --calibration PATH" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_int8_is_refused_where_the_format_has_none(tmp_path, flowers_module):
    with pytest.raises(ExportError, match="no int8 export for onnx: choose one of litert, executorch"):
        export(flowers_module, tmp_path / "m.onnx", dtype="int8", calibration=np.zeros((1, 299, 299, 3), np.float32))
