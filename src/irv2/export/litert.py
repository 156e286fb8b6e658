"""LiteRT (TensorFlow Lite): one ``.tflite`` file for phones and boards, read back with ``ai_edge_litert``.

The file has one signature, ``serving_default``: ``images`` float32 ``[batch, H, W, 3]`` (NHWC, values in
[0, 1], the module's size; the batch is free) in, ``logits`` ``[batch, num_classes]`` and ``features``
``[batch, 1536]`` out (``features`` only for a feature-vector module). What a consumer needs besides the graph
(labels, the preprocessing recipe, the size) is a JSON document in the model's ``metadata`` under ``irv2``;
:func:`read_litert_metadata` reads it without TensorFlow.

How it is made: the network is replayed in TensorFlow with the module's weights (the SavedModel export's
``_TFNetwork``, TF-Slim's own ops) and handed to TensorFlow's ``TFLiteConverter`` as a concrete function.
Why this route rather than litert-torch (PyTorch → ``torch.export`` → .tflite): it reuses the ``tensorflow``
extra the SavedModel export already needs and adds only the 59 MB runtime, where litert-torch brings jax,
transformers and its own converter; docs/deploy.md has the measured comparison.

int8 (``calibration`` images given): TensorFlow's full-integer post-training quantization, weights per channel
and activations per tensor from ranges measured on the calibration images, with float32 ``images`` in and float32
outputs out, so a consumer feeds the int8 file exactly what it feeds the float32 one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..model import InceptionResNetV2
from .wrapper import INPUT_NAME

__all__ = ["METADATA_NAME", "SIGNATURE", "read_litert_metadata", "run_litert", "write_litert"]

SIGNATURE = "serving_default"
METADATA_NAME = "irv2"  # the model's metadata entry holding irv2's JSON
_FILE_IDENTIFIER = b"TFL3"  # every .tflite flatbuffer carries it


def write_litert(
    model: InceptionResNetV2,
    path: Path,
    *,
    image_size: tuple[int, int],
    metadata: dict[str, Any],
    calibration: np.ndarray | None = None,
) -> None:
    """Convert ``model`` (eval, float32, CPU) to the ``.tflite`` file ``path``: float32, or int8 when
    ``calibration`` images (``[N, H, W, 3]`` in [0, 1]) are given."""
    import tensorflow as tf

    from .savedmodel import tf_serving_function

    serving, owner = tf_serving_function(tf, model, image_size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving.get_concrete_function()], owner)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ({INPUT_NAME: image[None]} for image in calibration)
        # Int8 kernels only (no float fallback); images in and outputs out stay float32.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        # The int8 calibrator runs TensorFlow's own tf.lite.Interpreter, which warns that it is deprecated.
        warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
        flatbuffer = converter.convert()
    path.write_bytes(_with_metadata(flatbuffer, json.dumps(metadata).encode("utf-8")))


def run_litert(path: Path, images: np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
    """Run the ``.tflite`` file with LiteRT's own ``Interpreter`` on ``images`` ``[B, H, W, 3]``:
    ``{output name: array}``."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner(SIGNATURE)
    return {name: np.array(value) for name, value in runner(**{INPUT_NAME: images}).items()}


def read_litert_metadata(path: Path) -> dict[str, Any]:
    """The ``irv2`` metadata of a ``.tflite`` file written by :func:`write_litert` (labels, preprocessing, size),
    read with the flatbuffer schema LiteRT ships: no TensorFlow, no interpreter."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == METADATA_NAME.encode():
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    raise ValueError(f"{path}: no {METADATA_NAME!r} metadata: not a .tflite file written by irv2 export")


def _with_metadata(flatbuffer: bytes, document: bytes) -> bytes:
    """``flatbuffer`` with ``document`` added as the model's ``irv2`` metadata entry (a buffer of its own)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(document, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(flatbuffer) + len(document) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())
