"""ExecuTorch (.pte) export lowered to XNNPACK, read back with ExecuTorch's own runtime, never with irv2's model
code: float32 against TensorFlow on TF-written weights, int8 with its error and size, and a feature-vector
module at 160 px."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from executorch.runtime import Runtime
from export_support import assert_exported, assert_matches_module, relative_error

import irv2
from irv2.api.module import FEATURE_VECTOR, Module, ModuleInfo
from irv2.export import export
from irv2.export.executorch import read_executorch_metadata
from irv2.preprocessing import preprocess_for_eval

pytestmark = pytest.mark.slow

# XNNPACK's float32 kernels against TensorFlow's and irv2's: what this format reaches.
FLOAT32_TOLERANCE = 1e-5


def _run(path, images: np.ndarray) -> list[np.ndarray]:
    method = Runtime.get().load_program(str(path)).load_method("forward")
    return [np.array(value) for value in method.execute([torch.from_numpy(np.ascontiguousarray(images))])]


def test_float32_matches_tensorflow(hub_pte, tf_outputs, photos):
    path, result = hub_pte
    assert_exported(result, path, "executorch")
    logits, features = _run(path, photos)
    assert relative_error(logits, tf_outputs[0]) < FLOAT32_TOLERANCE
    assert relative_error(features, tf_outputs[1]) < FLOAT32_TOLERANCE
    assert np.array_equal(logits.argmax(1), tf_outputs[0].argmax(1))


def test_the_program_says_what_it_returns(hub_pte):
    metadata = read_executorch_metadata(hub_pte[0])
    assert metadata["output_names"] == ["logits", "features"]
    assert metadata["labels"][0] == "background" and len(metadata["labels"]) == 1001
    assert metadata["inputs"]["images"]["shape"] == ["batch", 299, 299, 3]


def test_feature_vector_module_at_its_own_size_exports_its_features(tmp_path, features_module, photo_arrays):
    """The two shapes a module of one's own changes, in one program (each lowering costs half a minute): the
    features alone, without logits, at 160 px. The class count and labels of a fine-tuned head go through the
    metadata every format shares (tests/export/test_export_onnx.py and the SavedModel's tests hold them)."""
    module = Module(features_module.model, ModuleInfo(0, None, default_signature=FEATURE_VECTOR, image_size=160))
    result = export(module, tmp_path / "features.pte")
    images = np.stack([preprocess_for_eval(image, size=(160, 160)) for image in list(photo_arrays.values())[:3]])
    (features,) = _run(result.path, images)
    errors = assert_matches_module({"features": features}, module, images)
    assert errors["features"] <= FLOAT32_TOLERANCE, errors
    metadata = read_executorch_metadata(result.path)
    assert metadata["output_names"] == ["features"] and metadata["labels"] is None
    assert metadata["inputs"]["images"]["shape"] == ["batch", 160, 160, 3]


def test_int8_is_small_and_reports_its_error_honestly(tmp_path, hub_pte, tf_files, tf_outputs, photos):
    module = irv2.load(tf_files["hub_classification"], engine="plain")
    result = export(module, tmp_path / "int8.pte", dtype="int8", calibration=photos)
    assert (result.format, result.dtype) == ("executorch", "int8")
    assert result.path.stat().st_size <= 0.3 * hub_pte[0].stat().st_size
    logits, _ = _run(result.path, photos)
    assert logits.dtype == np.float32  # fed and read like the float32 program
    # The error it reports is the one ExecuTorch gives on those images (irv2's float32 is TensorFlow's to 1e-5).
    measured = relative_error(logits, tf_outputs[0])
    assert 0 < result.errors["logits"] < 0.5
    assert abs(measured - result.errors["logits"]) < 1e-3 * max(measured, 1e-3) + 1e-4
    assert result.top1_agreement == float(np.mean(logits.argmax(1) == tf_outputs[0].argmax(1)))
