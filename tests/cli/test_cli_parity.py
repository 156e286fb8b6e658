"""The CLI end to end against TensorFlow: TF-written weights in, the same top-1 as a TensorFlow forward pass.

Slow layer: ``tf_files`` and ``tf_outputs`` (tests/conftest.py) build full-size weights with TensorFlow.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image


def test_classify_matches_tensorflow(irv2_cli, tf_files, tf_outputs, photo_arrays, tmp_path):
    paths = []
    for name in photo_arrays:  # the order of tf_outputs' rows
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(photo_arrays[name]).save(paths[-1])
    # Convert the TF-Slim V1 checkpoint once, as a user would, then classify with the native module.
    native = tmp_path / "native"
    convert = irv2_cli("convert", tf_files["v1"], native)
    assert convert.returncode == 0, convert.stderr
    run = irv2_cli("classify", *paths, "-w", native, "--format", "json", "--top", "5")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(p) for p in paths]

    # TensorFlow: TF-Slim eval preprocessing with TF ops, then Keras' network carrying the same weights.
    tf_logits = tf_outputs[0].astype(np.float64)
    tf_probs = np.exp(tf_logits - tf_logits.max(1, keepdims=True))
    tf_probs /= tf_probs.sum(1, keepdims=True)
    for row, probs in zip(rows, tf_probs, strict=True):
        top = row["predictions"]
        assert top[0]["index"] == int(np.argmax(probs)), row["path"]
        np.testing.assert_allclose([p["score"] for p in top], probs[[p["index"] for p in top]], atol=1e-5)
