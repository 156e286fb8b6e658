"""The OpenVINO engine: float32 exact to the plain network, bfloat16 and int8 (NNCF) close to it; converted once
and cached, a damaged cache entry rebuilt and never trusted; ``engine="auto"`` picking by the measured rule.

The converted and quantized models are real (OpenVINO's converter, NNCF) on full-size weights with BatchNorm
statistics measured on real photos; each is built once per module into a temporary ``IRV2_HOME``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import irv2
from cli_runner import run_irv2
from irv2.engine import catalog, openvino_engine
from irv2.engine.openvino_engine import OpenVinoEngine
from irv2.engine.precision import Precision, cpu_has_fast_bfloat16
from irv2.errors import MissingDependencyError
from irv2.export.wrapper import relative_error
from irv2.preprocessing import preprocess_for_eval
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
    # End points come from the plain network; default stays the engine's own output.
    outputs = float_module(batch, signature="image_classification", as_dict=True)
    assert np.array_equal(outputs["default"], float_module(batch))
    assert outputs["InceptionResnetV2/Mixed_6a"].shape == (len(batch), 17, 17, 1088)


def test_convert_reads_the_builders_graph_at_any_size(plain, photo_arrays, monkeypatch):
    """``convert`` at 160 x 192: OpenVINO reads the ONNX builder's graph, its PyTorch front end (which traces)
    is not called; input ``x`` ``[?, 3, 160, 192]``, TF-Hub's output names, one conv per branch as the traced
    graph had them, and the plain network's outputs within 1e-5 in float32."""
    import openvino as ov

    def no_tracing(*args, **kwargs):
        raise AssertionError("convert must not trace the network with ov.convert_model")

    monkeypatch.setattr(ov, "convert_model", no_tracing)
    ir = openvino_engine.convert(plain.model, (160, 192))
    (x_input,) = ir.inputs
    assert x_input.get_names() == {"x"} and x_input.get_partial_shape() == ov.PartialShape([-1, 3, 160, 192])
    outputs = [(output.get_names(), output.get_partial_shape()) for output in ir.outputs]
    assert outputs == [({"logits"}, ov.PartialShape([-1, 1001])), ({"features"}, ov.PartialShape([-1, 1536]))]
    assert sum(op.get_type_name() == "Convolution" for op in ir.get_ordered_ops()) == 244
    compiled = ov.Core().compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    images = np.stack([preprocess_for_eval(image, (160, 192)) for image in list(photo_arrays.values())[:2]])
    x = np.ascontiguousarray(2.0 * images.transpose(0, 3, 1, 2) - 1.0, dtype=np.float32)
    results = compiled({"x": x})
    with torch.inference_mode():
        feature_map = plain.model.forward_features(torch.from_numpy(x))
        expected = {
            "logits": plain.model.forward_head(feature_map),
            "features": plain.model.forward_head(feature_map, pre_logits=True),
        }
    for name, value in expected.items():
        assert relative_error(np.array(results[compiled.output(name)]), value.numpy()) < 1e-5, name


def test_a_batch_runs_across_streams_as_single_images_would(float_module, batch, reference):
    """A batch is split across OpenVINO's THROUGHPUT streams (two on two cores) through an async infer queue,
    from any thread at once; each image's logits are what a single (LATENCY) call gives."""
    engine = float_module.engine
    streams = engine._streams(engine.compiled)
    assert streams >= min(2, torch.get_num_threads())
    singles = np.concatenate([float_module(batch[i : i + 1]) for i in range(len(batch))])
    assert relative_error(singles, reference[0]) < 1e-5
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: float_module(batch), range(3)))
    for logits in results:
        assert relative_error(logits, singles) < 1e-6
    features = float_module(batch[:3], signature=irv2.FEATURE_VECTOR)
    assert relative_error(features, reference[1][:3]) < 1e-5


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
    """Quantized on four photos, measured on all five (one unseen): the same top class, logits within 10%,
    features nearly parallel; NNCF's progress stays off stdout.

    The four are the first four in name order, as ``--calibration FOLDER`` reads them, so that
    test_cli_int8_classify finds this quantization in the cache instead of running NNCF again."""
    with pytest.warns(RuntimeWarning, match="calibrated on 4 images"):
        module = irv2.load(weights_dir, engine="openvino", dtype="int8", calibration=batch[:4])
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


@pytest.mark.slow
def test_cli_int8_classify(weights_dir, photo_arrays, tmp_path, irv2_home, reference):
    """``irv2 classify --dtype int8 --calibration DIR`` with the engine left to irv2 (OpenVINO + NNCF here):
    calibrated on the user's folder, the same top class on every photo."""
    from PIL import Image

    photos, calibration = tmp_path / "photos", tmp_path / "calibration"
    photos.mkdir()
    calibration.mkdir()
    for name, image in photo_arrays.items():
        Image.fromarray(image).save(photos / f"{name}.png")
    for name in list(photo_arrays)[:4]:
        Image.fromarray(photo_arrays[name]).save(calibration / f"{name}.png")
    env = {key: value for key, value in os.environ.items() if key != "IRV2_ENGINE"}
    env["IRV2_HOME"] = str(irv2_home)
    args = ("classify", photos, "-w", weights_dir, "-f", "json", "-k", "1", "-q", "--dtype", "int8")
    run = run_irv2(*args, "--calibration", calibration, env=env)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    top = {row["path"].rsplit("/", 1)[-1].removesuffix(".png"): row["predictions"][0]["index"] for row in rows}
    assert top == {name: int(reference[0][i].argmax()) for i, name in enumerate(photo_arrays)}
    missing = run_irv2(*args, env=env)
    assert missing.returncode == 2 and "int8 needs calibration images" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = run_irv2(*args, "--calibration", tmp_path / "nowhere", env=env)
    assert empty.returncode == 2 and "--calibration" in empty.stderr and "Traceback" not in empty.stderr


def test_bench_measures_int8(monkeypatch, irv2_home):
    """``irv2 bench --dtype int8`` loads OpenVINO's int8, calibrated on the bundled photo, and names it in its
    row (NNCF is replaced by the float model here: bench's plumbing is under test, not the quantizer)."""
    from irv2.bench import BenchConfig, run_bench

    calibrations = []

    def fake_quantize(ir, calibration):
        calibrations.append(calibration.shape)
        return ir

    monkeypatch.setattr(openvino_engine, "_quantize", fake_quantize)
    config = BenchConfig(random_weights=True, dtypes=["int8"], batch_sizes=[1], min_seconds=0.1, cold_start=False)
    report = run_bench(config)
    assert [(row["dtype"], row["engine"]) for row in report["results"]] == [("int8", "openvino")]
    assert calibrations == [(1, 299, 299, 3)]


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
        ("float32", ("openvino",), "openvino", "'onnxruntime' is faster here"),
        ("float32", (), "torch", r"'onnxruntime' is faster here \(pip install 'irv2\[onnx\]'; engine='torch'"),
        ("bfloat16", ("onnx", "openvino"), "openvino", None),
        ("bfloat16", ("onnx",), "torch", r"'openvino' is faster here \(pip install 'irv2\[openvino\]'"),
        ("int8", ("onnx", "openvino"), "openvino", None),
    ],
)
def test_auto_picks_by_the_measured_rule(monkeypatch, capsys, recwarn, dtype, present, expected, notice):
    _installed(monkeypatch, *present)
    precision = Precision(dtype, torch.float32)
    assert catalog.auto_engine(precision, torch.device("cpu")) == expected
    # A notice is one plain line on stderr, "irv2: ...", never a Python warning with a source line.
    assert [w for w in recwarn if issubclass(w.category, RuntimeWarning)] == []
    captured = capsys.readouterr()
    assert captured.out == ""
    if notice is None:
        assert captured.err == ""
    else:
        assert captured.err.startswith("irv2: running ") and captured.err.count("\n") == 1
        assert re.search(notice, captured.err)


def test_auto_elsewhere_is_pytorch(monkeypatch):
    _installed(monkeypatch, "onnx", "openvino")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert catalog.auto_engine(Precision("float32", torch.float32), cuda) == "torch"
    assert catalog.auto_engine(Precision("float16", torch.float16), cuda) == "torch"
    assert catalog.auto_engine(Precision("float32", torch.float32), cpu, train=True) == "torch"


def test_auto_int8_without_openvino_names_it(monkeypatch):
    _installed(monkeypatch, "onnx")
    with pytest.raises(MissingDependencyError, match=r"int8 on cpu needs one of the engines 'openvino' \(pip install"):
        catalog.auto_engine(Precision("int8", torch.float32), torch.device("cpu"))


def test_a_notice_is_said_once_per_process(monkeypatch, capsys):
    _installed(monkeypatch)
    for _ in range(3):
        catalog.auto_engine(Precision("float32", torch.float32), torch.device("cpu"))
    assert capsys.readouterr().err.count("irv2: running float32 on engine 'torch'") == 1


def test_engine_left_unset_is_auto_unless_irv2_engine_says(weights_dir, monkeypatch, capsys):
    """What users get by default: the automatic choice; ``$IRV2_ENGINE`` pins another, checked like
    ``engine=`` and named in its errors."""
    _installed(monkeypatch, "openvino")
    monkeypatch.delenv("IRV2_ENGINE")
    assert irv2.load(weights_dir).engine_name == "openvino"
    assert "irv2: running float32 on engine 'openvino': 'onnxruntime' is faster" in capsys.readouterr().err
    assert irv2.load(weights_dir, tags={"train"}).engine_name == "torch"  # the train graph needs autograd
    monkeypatch.setenv("IRV2_ENGINE", "plain")
    assert irv2.load(weights_dir).engine_name == "plain"
    assert irv2.load(weights_dir, engine="openvino").engine_name == "openvino"  # engine= wins
    monkeypatch.setenv("IRV2_ENGINE", "tensorrt")
    with pytest.raises(ValueError, match=r"unknown engine 'tensorrt' \(IRV2_ENGINE=tensorrt\); use one of 'torch'"):
        irv2.load(weights_dir)
    monkeypatch.setenv("IRV2_ENGINE", "openvino")
    with pytest.raises(ValueError, match=r"runs on cpu, not cuda \(IRV2_ENGINE=openvino\)"):
        irv2.load(weights_dir, device="cuda")


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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "cuda"}, "engine 'openvino' runs on cpu, not cuda"),
        ({"dtype": "int8"}, "int8 needs calibration images"),
        ({"dtype": "int8", "calibration": np.zeros((4, 299, 299))}, r"must be a batch \[N, H, W, 3\]"),
        ({"dtype": "int8", "calibration": np.full((8, 299, 299, 3), 255.0)}, r"values in \[0, 1\]"),
        ({"dtype": "int8", "calibration": np.zeros((8, 160, 160, 3))}, "must be 299 x 299, the module's input size"),
    ],
)
def test_refusals(weights_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        irv2.load(weights_dir, engine="openvino", **kwargs)


def test_few_calibration_images_warn(weights_dir, batch, monkeypatch):
    monkeypatch.setattr(OpenVinoEngine, "build", lambda self: None)
    with pytest.warns(RuntimeWarning, match="calibrated on 2 images"):
        irv2.load(weights_dir, engine="openvino", dtype="int8", calibration=batch[:2])


def test_auto_int8_without_nncf_names_it(monkeypatch):
    _installed(monkeypatch, "onnx", "openvino")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "nncf" else real(name, *args))
    with pytest.raises(MissingDependencyError, match="int8 on cpu needs one of the engines 'openvino'"):
        catalog.auto_engine(Precision("int8", torch.float32), torch.device("cpu"))
    assert catalog.auto_engine(Precision("bfloat16", torch.float32), torch.device("cpu")) == "openvino"
