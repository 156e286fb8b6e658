"""The OpenVINO engine: float32 exact to the plain network, bfloat16 and int8 (NNCF) close to it; converted once
and cached, a damaged cache entry rebuilt and never trusted; ``engine="auto"`` picking by the measured rule.

The converted and quantized models are real (OpenVINO's converter, NNCF) on full-size weights with BatchNorm
statistics measured on real photos; each is built once per module into a temporary ``IRV2_HOME``.
"""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
import torch

import irv2
from irv2.engine import catalog, openvino_engine
from irv2.engine.openvino_engine import OpenVinoEngine
from irv2.engine.precision import Precision, cpu_has_fast_bfloat16
from irv2.errors import MissingDependencyError
from irv2.export.wrapper import relative_error
from requires import require

require("openvino", "the OpenVINO engine: pip install 'irv2[openvino]'")


@pytest.fixture(scope="module", autouse=True)
def irv2_home(engine_home):
    return engine_home


@pytest.fixture(scope="module")
def float_module(weights_dir):
    return irv2.load(weights_dir, engine="openvino")


def test_float32_is_exact_to_the_plain_network(float_module, batch, reference):
    assert isinstance(float_module.engine, OpenVinoEngine) and float_module.engine_name == "openvino"
    logits, features = reference
    assert relative_error(float_module(batch), logits) < 1e-5
    assert relative_error(float_module(batch, signature=irv2.FEATURE_VECTOR), features) < 1e-5
    with torch.inference_mode():
        one = float_module(torch.from_numpy(batch[:1]))
    assert isinstance(one, torch.Tensor) and relative_error(one.numpy(), logits[:1]) < 1e-5
    # End points come from a torch engine over the same weights; default stays the engine's own output.
    outputs = float_module(batch, as_dict=True)
    assert np.array_equal(outputs["default"], float_module(batch))
    assert outputs["InceptionResnetV2/Mixed_6a"].shape == (len(batch), 17, 17, 1088)


@pytest.mark.skipif(not cpu_has_fast_bfloat16(), reason="this CPU has no bfloat16 instructions (AVX512-BF16, AMX)")
def test_bfloat16_is_close(weights_dir, batch, reference, float_module):
    module = irv2.load(weights_dir, engine="openvino", dtype="bfloat16")
    assert module.precision == "bfloat16"
    logits = module(batch)
    assert relative_error(logits, reference[0]) < 0.02
    assert (logits.argmax(1) == reference[0].argmax(1)).all()
    assert module.engine.path == float_module.engine.path  # the same float IR, compiled with the bf16 hint


@pytest.mark.slow
def test_int8_by_nncf_is_close(weights_dir, batch, reference, irv2_home, capfd):
    """Quantized on four photos and their mirror images, measured on all five (one unseen): the same top class,
    logits within 10%, features nearly parallel; NNCF's progress stays off stdout."""
    seen = batch[:4]
    calibration = np.concatenate([seen, seen[:, :, ::-1]])
    module = irv2.load(weights_dir, engine="openvino", dtype="int8", calibration=calibration)
    assert capfd.readouterr().out == ""
    logits, features = reference
    quantized = module(batch)
    assert relative_error(quantized, logits) < 0.1
    assert (quantized.argmax(1) == logits.argmax(1)).all()
    got = module(batch, signature=irv2.FEATURE_VECTOR)
    cosine = (got * features).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(features, axis=1)
    assert cosine.min() > 0.99
    assert module.engine.path.name.endswith(".int8.openvino")
    assert module.run_settings()["calibration_sha256"] is not None


def test_a_second_load_does_not_convert_again(weights_dir, float_module, monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(openvino_engine, "convert", no_conversion)
    again = irv2.load(weights_dir, engine="openvino")
    assert again.engine.path == float_module.engine.path


def test_a_damaged_cache_entry_is_rebuilt_never_trusted(weights_dir, float_module, batch, reference):
    path = float_module.engine.path
    weights = path / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # zeroed weights: valid to OpenVINO, wrong numbers
    weights.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=r"damaged cached OpenVINO model \(model.bin does not match its sha256\)"):
        rebuilt = irv2.load(weights_dir, engine="openvino")
    assert relative_error(rebuilt(batch), reference[0]) < 1e-5
    (path / "sha256.json").unlink()
    with pytest.warns(RuntimeWarning, match="no readable sha256.json"):
        irv2.load(weights_dir, engine="openvino")
    assert json.loads((path / "sha256.json").read_text()).keys() == {"model.xml", "model.bin"}
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".build-")] == []  # no scratch left


def test_changed_weights_convert_again(float_module, batch):
    before = float_module(batch[:1])
    with torch.no_grad():
        float_module.model.classif.bias.add_(1.0)
    try:
        assert np.allclose(float_module(batch[:1]), before + 1.0, atol=1e-4)
    finally:
        with torch.no_grad():
            float_module.model.classif.bias.sub_(1.0)


def _installed(monkeypatch, *present: str) -> None:
    """Pretend only the extras ``present`` are installed."""
    monkeypatch.setattr(catalog, "missing_modules", lambda extra: [] if extra in present else [extra])


@pytest.mark.parametrize(
    ("dtype", "present", "expected", "notice"),
    [
        ("float32", ("onnx", "openvino"), "onnxruntime", None),
        ("float32", ("openvino",), "openvino", "faster here is 'onnxruntime'"),
        ("float32", (), "torch", "faster here is 'onnxruntime'"),
        ("bfloat16", ("onnx", "openvino"), "openvino", None),
        ("bfloat16", ("onnx",), "torch", "faster here is 'openvino'"),
        ("int8", ("onnx", "openvino"), "openvino", None),
        ("int8", ("onnx",), "onnxruntime", r"faster here is 'openvino' \(pip install 'irv2\[openvino\]'\)"),
    ],
)
def test_auto_picks_by_the_measured_rule(monkeypatch, recwarn, dtype, present, expected, notice):
    _installed(monkeypatch, *present)
    precision = Precision(dtype, torch.float32)
    assert catalog.auto_engine(precision, torch.device("cpu")) == expected
    notices = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
    if notice is None:
        assert notices == []
    else:
        assert len(notices) == 1 and "\n" not in notices[0]
        assert re.search(notice, notices[0])


def test_auto_elsewhere_is_pytorch(monkeypatch):
    _installed(monkeypatch, "onnx", "openvino")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert catalog.auto_engine(Precision("float32", torch.float32), cuda) == "torch"
    assert catalog.auto_engine(Precision("float16", torch.float16), cuda) == "torch"
    assert catalog.auto_engine(Precision("float32", torch.float32), cpu, train=True) == "torch"


def test_auto_int8_without_any_engine_names_both(monkeypatch):
    _installed(monkeypatch)
    with pytest.raises(MissingDependencyError, match=r"'openvino' \(pip install 'irv2\[openvino\]'\), 'onnxruntime'"):
        catalog.auto_engine(Precision("int8", torch.float32), torch.device("cpu"))


def test_auto_through_load(weights_dir, monkeypatch):
    _installed(monkeypatch, "openvino")
    module = irv2.load(weights_dir, engine="auto", dtype="float32")
    assert module.engine_name == "openvino"
    module = irv2.load(weights_dir, engine="auto", tags={"train"})
    assert module.engine_name == "torch"  # the train graph needs autograd


def test_missing_openvino_names_the_extra(weights_dir, monkeypatch):
    monkeypatch.setattr("irv2.extras.missing_modules", lambda extra: ["openvino"] if extra == "openvino" else [])
    with pytest.raises(MissingDependencyError, match=r"pip install 'irv2\[openvino\]'"):
        irv2.load(weights_dir, engine="openvino")


def test_refusals(weights_dir):
    with pytest.raises(ValueError, match="engine 'openvino' runs on cpu, not cuda"):
        irv2.load(weights_dir, engine="openvino", device="cuda")
    with pytest.raises(ValueError, match="int8 needs calibration images"):
        irv2.load(weights_dir, engine="openvino", dtype="int8")


def test_auto_int8_without_nncf_falls_back_to_onnxruntime(monkeypatch, recwarn):
    _installed(monkeypatch, "onnx", "openvino")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "nncf" else real(name, *args))
    assert catalog.auto_engine(Precision("int8", torch.float32), torch.device("cpu")) == "onnxruntime"
    assert catalog.auto_engine(Precision("bfloat16", torch.float32), torch.device("cpu")) == "openvino"
    assert any("faster here is 'openvino'" in str(w.message) for w in recwarn)
