"""The ONNX Runtime engine: float32 equal to the PyTorch network, int8 close to it, cached, and refused clearly.

The exported and quantized graphs are real (torch's exporter, onnxruntime's quantizer) on full-size weights
with BatchNorm statistics measured on real photos; each is built once per module into a temporary
``IRV2_HOME``.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

import irv2
from cli_runner import run_irv2
from irv2.engine import onnxruntime_engine
from irv2.engine.onnxruntime_engine import OnnxRuntimeEngine
from irv2.engine.precision import cpu_has_fast_bfloat16
from irv2.errors import MissingDependencyError
from irv2.export.wrapper import relative_error
from requires import require

require("onnxruntime", "the ONNX Runtime engine: pip install 'irv2[onnx]'")


@pytest.fixture(scope="module", autouse=True)
def irv2_home(engine_home):
    return engine_home


@pytest.fixture(scope="module")
def calibration(batch) -> np.ndarray:
    """Eight images: four of the five photos and their mirror images (``camera`` is held out)."""
    seen = batch[:4]
    return np.concatenate([seen, seen[:, :, ::-1]])


@pytest.fixture(scope="module")
def int8_module(weights_dir, calibration):
    return irv2.load(weights_dir, dtype="int8", calibration=calibration)


def test_float32_engine_matches_torch(weights_dir, batch, reference):
    module = irv2.load(weights_dir, engine="onnxruntime")
    assert isinstance(module.engine, OnnxRuntimeEngine) and module.precision == "float32"
    logits, features = reference
    assert relative_error(module(batch), logits) < 1e-5
    assert relative_error(module(batch, signature=irv2.FEATURE_VECTOR), features) < 1e-5
    # A tensor in, a tensor out, as with the PyTorch engine; batch 1 through the dynamic batch axis.
    with torch.inference_mode():
        one = module(torch.from_numpy(batch[:1]))
    assert isinstance(one, torch.Tensor) and relative_error(one.numpy(), logits[:1]) < 1e-5
    # The module hands the engine its [0, 1] images (scaled in numpy, off PyTorch's threads): the same
    # float32 operations as the PyTorch path's 2x - 1, so the same logits bit for bit, the input untouched.
    images = torch.from_numpy(batch[:2].copy())
    nchw = images.permute(0, 3, 1, 2)
    contiguous = nchw.contiguous()  # also an input whose NCHW view is contiguous: scaled in place, it would change
    for view in (nchw, contiguous):
        before = view.clone()
        got = module.engine.forward_images(view)
        assert torch.equal(got, module.engine.forward(2.0 * before - 1.0))
        assert torch.equal(view, before)


def test_int8_is_close_to_float32(int8_module, batch, reference):
    """Quantized on four photos, measured on all five (one unseen): the same top class, logits within 10%.

    A mis-scaled input or a wrong calibration range moves the logits by their own size, not by a few percent.
    """
    assert int8_module.precision == "int8"
    logits, features = reference
    quantized = int8_module(batch)
    assert relative_error(quantized, logits) < 0.1
    assert (quantized.argmax(1) == logits.argmax(1)).all()
    got = int8_module(batch, signature=irv2.FEATURE_VECTOR)
    cosine = (got * features).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(features, axis=1)
    assert cosine.min() > 0.99
    assert int8_module.engine.path.name.endswith(".int8.onnx")
    assert os.path.getsize(int8_module.engine.path) < 0.4 * 224e6  # int8 weights: a quarter of float32


def test_the_engine_is_cached_per_weights_and_calibration(weights_dir, calibration, int8_module, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnxruntime_engine, "_export_graph", no_export)
    again = irv2.load(weights_dir, dtype="int8", calibration=calibration)
    assert again.engine.path == int8_module.engine.path
    # Other calibration images make another int8 graph: the cache must not hand back the first one.
    with pytest.raises(AssertionError, match="exported again"):
        irv2.load(weights_dir, dtype="int8", calibration=calibration[::-1].copy())


def test_changed_weights_rebuild_the_engine(int8_module, batch, monkeypatch):
    builds = []

    def build(model, precision, calibration, image_size):
        builds.append(precision)
        return int8_module.engine.path

    monkeypatch.setattr(onnxruntime_engine, "build_engine_file", build)
    int8_module(batch[:1])
    assert builds == []  # unchanged weights: the open session serves
    with torch.no_grad():
        int8_module.model.classif.bias.add_(1.0)
    try:
        int8_module(batch[:1])
        assert builds == ["int8"]
    finally:
        with torch.no_grad():
            int8_module.model.classif.bias.sub_(1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "int8"}, "int8 needs calibration images"),
        ({"dtype": "int8", "device": "cuda"}, "int8 runs on the CPU"),
        ({"dtype": "int8", "engine": "torch"}, "not int8; int8 runs on engine 'onnxruntime'"),
        ({"dtype": "bfloat16", "engine": "onnxruntime"}, "engine 'onnxruntime' runs dtype float32, int8, not bfloat16"),
        (
            {"engine": "onnxruntime", "tags": {"train"}},
            "graph runs in eager PyTorch",
        ),
        ({"engine": "tensorrt"}, "unknown engine 'tensorrt'"),
        ({"dtype": "int8", "calibration": np.zeros((4, 299, 299))}, "must be a batch [N, H, W, 3]"),
        ({"dtype": "int8", "calibration": np.full((8, 299, 299, 3), 255.0)}, "values in [0, 1]"),
        ({"dtype": "int8", "calibration": np.zeros((8, 160, 160, 3))}, "must be 299 x 299, the module's input size"),
    ],
)
def test_refusals_say_what_to_do(weights_dir, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        irv2.load(weights_dir, **kwargs)


def test_few_calibration_images_warn(weights_dir, batch, monkeypatch):
    monkeypatch.setattr(onnxruntime_engine, "build_engine_file", lambda *args: None)
    monkeypatch.setattr(onnxruntime_engine, "open_session", lambda path: object())
    with pytest.warns(RuntimeWarning, match="calibrated on 2 images"):
        irv2.load(weights_dir, dtype="int8", calibration=batch[:2])


def test_missing_onnxruntime_names_the_extra(weights_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what the import system reports for a missing module
    with pytest.raises(MissingDependencyError, match=r"pip install 'irv2\[onnx\]'"):
        irv2.load(weights_dir, engine="onnxruntime")


def _cli(*args, home):
    return run_irv2(*args, env=dict(os.environ, IRV2_HOME=str(home)))


def test_cli_int8_classify(weights_dir, photo_arrays, tmp_path, irv2_home, reference):
    """``irv2 classify --dtype int8 --calibration DIR``: calibrated on the user's folder, the same top class."""
    from PIL import Image

    photos, calibration = tmp_path / "photos", tmp_path / "calibration"
    photos.mkdir()
    calibration.mkdir()
    for name, image in photo_arrays.items():
        Image.fromarray(image).save(photos / f"{name}.png")
        Image.fromarray(image[:, ::-1]).save(calibration / f"{name}-mirror.png")
        Image.fromarray(image).save(calibration / f"{name}.png")
    args = ("classify", photos, "-w", weights_dir, "-f", "json", "-k", "1", "-q", "--dtype", "int8")
    run = _cli(*args, "--calibration", calibration, home=irv2_home)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    names = list(photo_arrays)
    top = {row["path"].rsplit("/", 1)[-1].removesuffix(".png"): row["predictions"][0]["index"] for row in rows}
    assert top == {name: int(reference[0][i].argmax()) for i, name in enumerate(names)}
    missing = _cli(*args, home=irv2_home)
    assert missing.returncode == 2 and "int8 needs calibration images" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = _cli(*args, "--calibration", tmp_path / "nowhere", home=irv2_home)
    assert empty.returncode == 2 and "--calibration" in empty.stderr and "Traceback" not in empty.stderr


def test_bench_measures_int8(irv2_home):
    """Every dtype x engine pairing that runs is measured; one that does not (bfloat16 on ONNX Runtime) is
    reported as skipped, with the reason, instead of failing the whole run."""
    bfloat16 = ["--dtype", "bfloat16"] if cpu_has_fast_bfloat16() else []
    run = _cli("bench", "--random", "--json", "-b", "1", "--seconds", "0.2", "--no-cold-start",
               "--dtype", "int8", "--dtype", "float32", *bfloat16, "--engine", "torch", "--engine", "onnxruntime",
               home=irv2_home)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    rows = report["results"]
    assert [(r["dtype"], r["engine"]) for r in rows] == [
        ("int8", "onnxruntime"), ("float32", "torch"), ("float32", "onnxruntime"),
    ] + [("bfloat16", "torch")] * bool(bfloat16)  # fmt: skip
    assert all(r["images_per_s"] > 0 for r in rows)
    if bfloat16:
        (skipped,) = report["skipped"]
        assert (skipped["dtype"], skipped["engine"]) == ("bfloat16", "onnxruntime")
        assert "runs dtype float32, int8, not bfloat16" in skipped["reason"]
        # With nothing left to measure, the reason is the error.
        alone = _cli("bench", "--random", "-b", "1", "--no-cold-start", "--dtype", "bfloat16",
                     "--engine", "onnxruntime", home=irv2_home)  # fmt: skip
        assert alone.returncode != 0 and "runs dtype float32, int8" in alone.stderr and "Traceback" not in alone.stderr
