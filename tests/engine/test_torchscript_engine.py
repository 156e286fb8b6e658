"""The TorchScript engine (oneDNN Graph): the plain network's function, in float32 and bfloat16, kept in step.

Reference: the plain ``InceptionResNetV2`` (``engine="plain"``), on real photos with weights whose BatchNorm
statistics fit them (``random_module``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import irv2
from bfloat16_support import BFLOAT16_HERE, assert_refused
from cli_runner import run_irv2
from irv2.engine.torchscript_engine import TorchScriptEngine


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_float32_matches_the_plain_network(weights_dir, batch, reference):
    module = irv2.load(weights_dir, engine="torchscript")
    assert isinstance(module.engine, TorchScriptEngine)
    logits, features = reference
    # Several calls and two batch shapes: oneDNN Graph compiles on the second call of each shape.
    for _ in range(3):
        assert _relative(module(batch), logits) < 1e-5
    assert _relative(module(batch, signature=irv2.FEATURE_VECTOR), features) < 1e-5
    with torch.inference_mode():
        one = module(torch.from_numpy(batch[:1]))
    assert isinstance(one, torch.Tensor) and _relative(one.numpy(), logits[:1]) < 1e-5
    # The process-wide switch is back where the caller had it.
    assert not torch.jit.onednn_fusion_enabled()


def test_bfloat16_is_close_to_float32(weights_dir, batch, reference):
    if not BFLOAT16_HERE:
        return assert_refused(irv2.load, weights_dir, engine="torchscript", dtype="bfloat16")
    module = irv2.load(weights_dir, engine="torchscript", dtype="bfloat16")
    logits, _ = reference
    for _ in range(2):
        got = module(batch)
    assert _relative(got, logits) < 0.03
    assert (got.argmax(1) == logits.argmax(1)).all()


def test_changed_weights_are_traced_again(weights_dir, batch):
    module = irv2.load(weights_dir, engine="torchscript")
    before = module(batch[:2])
    trace = module.engine._traced
    np.testing.assert_allclose(module(batch[:2]), before, rtol=1e-5, atol=1e-5)  # oneDNN Graph from call 2
    assert module.engine._traced is trace, "unchanged weights must keep the trace"
    with torch.no_grad():
        module.model.classif.bias[7] += 5.0
    after = module(batch[:2])
    np.testing.assert_allclose(after[:, 7] - before[:, 7], 5.0, rtol=1e-5)
    np.testing.assert_allclose(np.delete(after, 7, axis=1), np.delete(before, 7, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "cuda"}, "runs on cpu, not cuda"),  # refused before any weights are read: no GPU needed
        ({"tags": {"train"}}, "runs in eager PyTorch"),
        ({"dtype": "int8"}, "not int8; int8 runs on engine 'openvino'"),
    ],
)
def test_refusals(weights_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        irv2.load(weights_dir, engine="torchscript", **kwargs)


def test_cli_classify_and_bench_with_torchscript(weights_dir, photo_arrays, reference, tmp_path):
    """``irv2 classify --engine torchscript`` gives the default engine's top classes; bench measures it."""
    from PIL import Image

    for name, image in photo_arrays.items():
        Image.fromarray(image).save(tmp_path / f"{name}.png")
    run = run_irv2("classify", tmp_path, "-w", weights_dir, "-f", "json", "-k", "1", "-q", "--engine", "torchscript")
    assert run.returncode == 0, run.stderr
    top = {json.loads(line)["path"]: json.loads(line)["predictions"][0]["index"] for line in run.stdout.splitlines()}
    expected = {str(tmp_path / f"{name}.png"): int(reference[0][i].argmax()) for i, name in enumerate(photo_arrays)}
    assert top == expected
    bad = run_irv2("classify", tmp_path, "-w", weights_dir, "--engine", "torchscript", "--dtype", "int8")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert (
        "--dtype int8 --engine torchscript: engine 'torchscript' runs dtype float32, bfloat16, not int8" in bad.stderr
    )
    bench = run_irv2("bench", "--random", "--json", "-b", "2", "--seconds", "0.2", "--no-cold-start",
                     "--engine", "torchscript", "--dtype", "float32")  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    (row,) = json.loads(bench.stdout)["results"]
    assert (row["engine"], row["batch_size"]) == ("torchscript", 2) and row["images_per_s"] > 0


def test_threads_share_one_trace(weights_dir, batch, reference, monkeypatch):
    """A server's worker threads calling at once: one trace, every answer right, the switch restored."""
    from concurrent.futures import ThreadPoolExecutor

    from irv2.engine import torchscript_engine

    traces = []
    trace = torchscript_engine._trace
    monkeypatch.setattr(torchscript_engine, "_trace", lambda *args: traces.append(1) or trace(*args))
    module = irv2.load(weights_dir, engine="torchscript")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: module(batch[i % 2 : i % 2 + 2]), range(8)))
    for i, logits in enumerate(results):
        assert _relative(logits, reference[0][i % 2 : i % 2 + 2]) < 1e-5
    assert len(traces) == 1
    assert not torch.jit.onednn_fusion_enabled()
