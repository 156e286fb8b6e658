"""The ONNX graph written with ``onnx.helper`` from the fused network (``onnx_builder``), run by ONNX Runtime:
the plain network's logits and features, at 299 px and at other sizes, on a dynamic batch; a feature-vector
network has only ``features``; the export's interface (``images`` NHWC in [0, 1], free height and width,
metadata) gives what ``ExportWrapper`` gives.

Weights: the shared random network whose BatchNorm statistics are measured on real photos (``plain``), so the
folded BatchNorm constants are far from the identity and a wrong fold or pad shows.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from irv2.engine import onnx_builder
from irv2.engine.onnx_graph import FEATURES, LOGITS, OPSET
from irv2.export.wrapper import ExportWrapper, reference_outputs, relative_error
from irv2.preprocessing import preprocess_for_eval
from requires import require

onnx = require("onnx", "the ONNX Runtime engine's graph: pip install 'irv2[onnx]'")
onnxruntime = require("onnxruntime", "the ONNX Runtime engine: pip install 'irv2[onnx]'")


def _inputs(photo_arrays, size: tuple[int, int], count: int) -> np.ndarray:
    """``count`` photos as the network takes them: NCHW float32 in [-1, 1] at ``size`` (height, width)."""
    images = [preprocess_for_eval(image, size) for image in list(photo_arrays.values())[:count]]
    return np.ascontiguousarray(2.0 * np.stack(images).transpose(0, 3, 1, 2) - 1.0, dtype=np.float32)


def _plain_outputs(model, x: np.ndarray) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        feature_map = model.forward_features(torch.from_numpy(x))
        outputs = {FEATURES: model.forward_head(feature_map, pre_logits=True).numpy()}
        if model.num_classes:
            outputs[LOGITS] = model.forward_head(feature_map).numpy()
    return outputs


def _built(model, tmp_path, size: tuple[int, int]):
    """The graph for ``model`` at ``size``, checked by onnx, and an ONNX Runtime session on it."""
    path = tmp_path / "network.onnx"
    onnx_builder.write_network_onnx(model, path, size)
    onnx.checker.check_model(str(path))  # by path: the checker reads a file over protobuf's in-memory limit
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path, session


def _run(session, x: np.ndarray) -> dict[str, np.ndarray]:
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": x}), strict=True))


def _assert_matches(session, model, x: np.ndarray) -> None:
    expected = _plain_outputs(model, x)
    got = _run(session, x)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert relative_error(got[name], value) < 1e-5, (name, x.shape, relative_error(got[name], value))


@pytest.mark.parametrize("size", [(299, 299), (160, 192)], ids=["299", "160x192"])
def test_graph_matches_the_plain_network(plain, photo_arrays, tmp_path, size, monkeypatch):
    def no_exporter(*args, **kwargs):
        raise AssertionError("the builder must not need torch's ONNX exporter")

    monkeypatch.setattr(torch.onnx, "export", no_exporter)
    model = plain.model
    path, session = _built(model, tmp_path, size)
    (graph_input,) = session.get_inputs()
    assert graph_input.name == "x" and graph_input.shape == ["batch", 3, *size]
    assert [output.name for output in session.get_outputs()] == [LOGITS, FEATURES]
    header = onnx.load(str(path), load_external_data=False)
    assert [(opset.domain, opset.version) for opset in header.opset_import] == [("", OPSET)]
    # Batch 3, then batch 1 through the same session: the batch axis is dynamic.
    x = _inputs(photo_arrays, size, 3)
    _assert_matches(session, model, x)
    _assert_matches(session, model, x[1:2])


def test_feature_vector_network_has_only_features(plain, photo_arrays, tmp_path):
    """num_classes=0, at the smallest input the network takes (its last maps are 1 x 1, pools at the edge)."""
    model = copy.deepcopy(plain.model)
    model.reset_classifier(0)
    size = (75, 75)
    _, session = _built(model.eval(), tmp_path, size)
    assert [output.name for output in session.get_outputs()] == [FEATURES]
    x = _inputs(photo_arrays, size, 2)
    _assert_matches(session, model, x)


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "unmerged"])
def test_export_interface_takes_images_at_any_size(plain, photo_arrays, tmp_path, merge):
    """``interface="export"`` with ``dynamic_size``, written for 160 x 192: ``images`` NHWC in [0, 1] with free
    height and width and the metadata attached, giving ``ExportWrapper``'s outputs (the [0, 1] → [-1, 1]
    mapping inside the graph) at 160 x 192, at 299 and at the smallest input, where every map has shrunk to
    1 x 1; both ways of writing the branch openings (OpenVINO reads the unmerged one)."""
    path = tmp_path / "export.onnx"
    metadata = {"num_classes": "1001", "image_size": "[160, 192]"}
    onnx_builder.write_network_onnx(
        plain.model, path, (160, 192), interface="export", dynamic_size=True, metadata=metadata, merge=merge
    )
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    assert (graph_input.name, graph_input.shape) == ("images", ["batch", "height", "width", 3])
    outputs = {output.name: output.shape for output in session.get_outputs()}
    assert outputs == {LOGITS: ["batch", 1001], FEATURES: ["batch", 1536]}
    assert session.get_modelmeta().custom_metadata_map == metadata
    wrapper = ExportWrapper(plain.model).eval()
    photos = list(photo_arrays.values())
    for size, count in [((160, 192), 3), ((299, 299), 1), ((75, 75), 2)]:
        images = np.stack([preprocess_for_eval(image, size) for image in photos[:count]])
        expected = reference_outputs(wrapper, images)
        got = dict(zip(outputs, session.run(list(outputs), {"images": images}), strict=True))
        for name, value in expected.items():
            assert relative_error(got[name], value) < 1e-5, (name, size, relative_error(got[name], value))


def test_an_input_below_the_minimum_is_refused(plain, tmp_path):
    with pytest.raises(ValueError, match="at least 75"):
        onnx_builder.write_network_onnx(plain.model, tmp_path / "small.onnx", (74, 299))
    with pytest.raises(ValueError, match="interface must be 'engine' or 'export'"):
        onnx_builder.write_network_onnx(plain.model, tmp_path / "small.onnx", 299, interface="nhwc")
    assert not (tmp_path / "small.onnx").exists()
