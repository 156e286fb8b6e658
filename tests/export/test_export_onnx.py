"""ONNX export, read back with onnxruntime: the command line end to end, a features-only export whose
height and width are free, and a module of another size exported with free height and width."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
from export_support import FLOWERS, TOLERANCE, assert_matches_module, relative_error

from cli_runner import run_irv2
from irv2.api.module import Module, ModuleInfo
from irv2.export import export
from irv2.export.wrapper import export_wrapper, reference_outputs
from irv2.preprocessing import preprocess_for_eval


def _session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session: onnxruntime.InferenceSession, images: np.ndarray) -> dict[str, np.ndarray]:
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"images": images}), strict=True))


@pytest.fixture(scope="session")
def cli_onnx(tmp_path_factory, weights_dir, cli_env):
    """``irv2 export --weights DIR --format onnx -o OUT`` as a user runs it: (OUT, the finished process)."""
    out = tmp_path_factory.mktemp("onnx") / "irv2.onnx"
    result = run_irv2("export", "--weights", weights_dir, "--format", "onnx", "-o", out, env=cli_env)
    return out, result


@pytest.fixture(scope="session")
def features_onnx(tmp_path_factory, features_module):
    """The feature-vector module, height and width free; the test compares it with irv2 itself."""
    path = tmp_path_factory.mktemp("onnx") / "features.onnx"
    result = export(features_module, path, dynamic_size=True, verify=False)
    assert result.path == path and result.format == "onnx" and result.errors == {}
    return path


@pytest.fixture(scope="session")
def cli_session(cli_onnx) -> onnxruntime.InferenceSession:
    return _session(cli_onnx[0])


@pytest.fixture(scope="session")
def features_session(features_onnx) -> onnxruntime.InferenceSession:
    return _session(features_onnx)


def test_cli_exports_onnx_and_reports_its_error(cli_onnx):
    out, result = cli_onnx
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n"  # stdout holds only the result
    assert "wrote" in result.stderr and "max relative error vs irv2: logits" in result.stderr
    # Only our own summary line on stderr: no exporter progress, warnings or tracebacks.
    assert result.stderr.count("\n") == 1, result.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left beside it


def test_onnx_interface_is_tf_hubs(cli_session):
    session = cli_session
    (images,) = session.get_inputs()
    assert (images.name, images.type, images.shape) == ("images", "tensor(float)", ["batch", 299, 299, 3])
    outputs = {output.name: output.shape for output in session.get_outputs()}
    assert outputs == {"logits": ["batch", 1001], "features": ["batch", 1536]}


@pytest.mark.parametrize("batch", [slice(0, 1), slice(1, 4)], ids=["batch1", "batch3"])
def test_onnx_matches_irv2(cli_session, imagenet_module, images, batch):
    assert_matches_module(_run(cli_session, images[batch]), imagenet_module, images[batch])


def test_onnx_carries_labels_and_preprocessing(cli_onnx, cli_session, imagenet_module):
    model = onnx.load(cli_onnx[0], load_external_data=False)
    metadata = {prop.key: json.loads(prop.value) for prop in model.metadata_props}
    assert metadata["labels"] == imagenet_module.labels and len(metadata["labels"]) == 1001
    assert metadata["num_classes"] == 1001
    assert metadata["preprocessing"]["central_fraction"] == 0.875
    assert metadata["inputs"]["images"] == {
        "dtype": "float32", "shape": ["batch", 299, 299, 3], "layout": "NHWC", "range": [0, 1]
    }  # fmt: skip
    # onnxruntime exposes the same strings to any consumer.
    assert cli_session.get_modelmeta().custom_metadata_map["num_classes"] == "1001"


def test_onnx_without_dynamic_size_refuses_other_sizes(cli_session, odd_images):
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument):
        _run(cli_session, odd_images)


def test_features_only_onnx_has_one_output(features_session):
    session = features_session
    assert session.get_inputs()[0].shape == ["batch", "height", "width", 3]
    assert {output.name: output.shape for output in session.get_outputs()} == {"features": ["batch", 1536]}
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["num_classes"]) == 0 and json.loads(metadata["labels"]) is None


@pytest.mark.parametrize("which", ["299", "263x320"])
def test_features_only_onnx_takes_any_size(features_session, features_module, images, odd_images, which):
    batch = images[2:4] if which == "299" else odd_images
    assert_matches_module(_run(features_session, batch), features_module, batch)


def test_onnx_of_a_module_at_another_size_takes_any_size(tmp_path, flowers_module, photo_arrays, odd_images):
    """A 5-class module trained at 160 x 192 (not TF-Hub's 299), exported with free height and width: irv2's
    own check passed (160 x 192 at batches 2 and 1, 124 x 213), the graph and its metadata say any size, and
    it gives the network's outputs at 263 x 320 and at the smallest input too."""
    module = Module(flowers_module.model, ModuleInfo(5, FLOWERS, image_size=(160, 192)))
    result = export(module, tmp_path / "small.onnx", dynamic_size=True)
    assert set(result.errors) == {"logits", "features"} and max(result.errors.values()) <= TOLERANCE
    session = _session(result.path)
    assert session.get_inputs()[0].shape == ["batch", "height", "width", 3]
    assert {output.name: output.shape for output in session.get_outputs()} == {
        "logits": ["batch", 5], "features": ["batch", 1536]
    }  # fmt: skip
    metadata = {key: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items()}
    assert metadata["image_size"] == [160, 192] and metadata["labels"] == FLOWERS
    assert metadata["inputs"]["images"]["shape"] == ["batch", "height", "width", 3]
    smallest = np.stack([preprocess_for_eval(image, (75, 75)) for image in list(photo_arrays.values())[:2]])
    wrapper = export_wrapper(module)
    for images in (odd_images, smallest):
        got = _run(session, images)
        for name, value in reference_outputs(wrapper, images).items():
            assert relative_error(got[name], value) <= TOLERANCE, (name, images.shape)
