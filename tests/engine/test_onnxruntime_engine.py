"""The ONNX Runtime engine: float32 equal to the PyTorch network, cached, followed when the weights change, and
refused clearly (int8 is OpenVINO's: tests/engine/test_openvino_engine.py).

The exported graph is real (torch's exporter) on full-size weights with BatchNorm statistics measured on real
photos; it is built once per module into a temporary ``IRV2_HOME``.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

import irv2
from bfloat16_support import BFLOAT16_HERE
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
def float_module(weights_dir):
    return irv2.load(weights_dir, engine="onnxruntime")


def test_float32_engine_matches_torch(float_module, batch, reference):
    module = float_module
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


def test_a_second_load_opens_the_cached_graph(weights_dir, float_module, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnxruntime_engine, "_export_graph", no_export)
    again = irv2.load(weights_dir, engine="onnxruntime")
    assert again.engine.path == float_module.engine.path
    assert float_module.engine.path.name.endswith(".float32.onnx")


def test_changed_weights_rebuild_the_engine(float_module, batch, monkeypatch):
    builds = []

    def build(model, image_size):
        builds.append(image_size)
        return float_module.engine.path

    monkeypatch.setattr(onnxruntime_engine, "build_engine_file", build)
    float_module(batch[:1])
    assert builds == []  # unchanged weights: the open session serves
    with torch.no_grad():
        float_module.model.classif.bias.add_(1.0)
    try:
        float_module(batch[:1])
        assert builds == [(299, 299)]
    finally:
        with torch.no_grad():
            float_module.model.classif.bias.sub_(1.0)


# Where the CPU has no bfloat16 instructions, irv2 refuses bfloat16 itself before asking which engine runs it.
_ONNXRUNTIME_BFLOAT16 = "runs dtype float32, not bfloat16" if BFLOAT16_HERE else "this CPU has no bfloat16 instructions"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "int8", "device": "cuda"}, "int8 runs on the CPU"),
        ({"dtype": "int8", "engine": "torch"}, "not int8; int8 runs on engine 'openvino'"),
        ({"dtype": "int8", "engine": "onnxruntime"}, "runs dtype float32, not int8; int8 runs on engine 'openvino'"),
        ({"dtype": "int8"}, r"not int8; int8 runs on engine 'openvino' \(IRV2_ENGINE=torch\)"),
        ({"dtype": "bfloat16", "engine": "onnxruntime"}, _ONNXRUNTIME_BFLOAT16),
        (
            {"engine": "onnxruntime", "tags": {"train"}},
            "graph runs in eager PyTorch",
        ),
        ({"engine": "tensorrt"}, "unknown engine 'tensorrt'"),
    ],
)
def test_refusals_say_what_to_do(weights_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        irv2.load(weights_dir, **kwargs)


def test_missing_onnxruntime_names_the_extra(weights_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what the import system reports for a missing module
    with pytest.raises(MissingDependencyError, match=r"pip install 'irv2\[onnx\]'"):
        irv2.load(weights_dir, engine="onnxruntime")


def _cli(*args, home):
    return run_irv2(*args, env=dict(os.environ, IRV2_HOME=str(home)))


def test_bench_measures_each_pairing_that_runs(irv2_home):
    """Every dtype x engine pairing that runs is measured; one that does not (bfloat16 on ONNX Runtime) is
    reported as skipped, with the reason, instead of failing the whole run."""
    bfloat16 = ["--dtype", "bfloat16"] if cpu_has_fast_bfloat16() else []
    run = _cli("bench", "--random", "--json", "-b", "1", "--seconds", "0.2", "--no-cold-start",
               "--dtype", "float32", *bfloat16, "--engine", "torch", "--engine", "onnxruntime",
               home=irv2_home)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    rows = report["results"]
    assert [(r["dtype"], r["engine"]) for r in rows] == [
        ("float32", "torch"), ("float32", "onnxruntime"),
    ] + [("bfloat16", "torch")] * bool(bfloat16)  # fmt: skip
    assert all(r["images_per_s"] > 0 for r in rows)
    if bfloat16:
        (skipped,) = report["skipped"]
        assert (skipped["dtype"], skipped["engine"]) == ("bfloat16", "onnxruntime")
        assert "runs dtype float32, not bfloat16" in skipped["reason"]
        # With nothing left to measure, the reason is the error.
        alone = _cli("bench", "--random", "-b", "1", "--no-cold-start", "--dtype", "bfloat16",
                     "--engine", "onnxruntime", home=irv2_home)  # fmt: skip
        assert (
            alone.returncode != 0
            and "runs dtype float32, not bfloat16" in alone.stderr
            and "Traceback" not in alone.stderr
        )
