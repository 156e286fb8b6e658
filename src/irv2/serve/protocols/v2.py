"""The Open Inference Protocol v2 (KServe, Triton) for one image model, with Triton's binary data extension.

``POST /v2/models/NAME[/versions/1]/infer`` takes exactly one input:

* ``images``: FP32 (or FP16/FP64) ``[B, H, W, 3]`` in [0, 1] at the module's size (299 x 299 for the TF-Hub
  weights); JSON ``data`` flat or nested, or binary;
* ``image_bytes``: BYTES ``[B]`` (any shape of B elements), each an encoded image file; binary elements are
  the raw file, JSON elements base64 strings (or ``{"b64": "..."}``).

Outputs, each only when asked for (``outputs`` omitted: ``logits``, ``probabilities`` and ``labels``, or
``features`` alone for a model without a classifier):

* ``logits`` FP32 ``[B, C]`` and ``probabilities`` FP32 ``[B, C]`` (softmax), C = 1001 with background at 0;
* ``features`` FP32 ``[B, 1536]``, the ``image_feature_vector`` signature;
* ``labels`` BYTES ``[B, k]``: the top k as ``"probability:index:label"`` strings, Triton's classification
  format; k is the output's ``classification`` parameter, default ``--top-k`` (5).

As in Triton, ``parameters: {"classification": k}`` on ``logits`` or ``probabilities`` turns that output into
BYTES ``[B, k]`` top-k strings of its own values. ``parameters: {"binary_data": true}`` on an output (or
``binary_data_output: true`` on the request) sends it in the binary extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._version import __version__
from ...api import Module
from ...errors import PayloadTooLarge, RequestError
from ..config import MODEL_VERSION, NUM_FEATURES, ServeConfig
from ..decode import b64decode, decode_image_file, float_images, image_shape
from . import Prepared, Reply, expect_object, json_reply, load_json
from .v2_tensors import (
    FLOAT_DTYPES,
    HEADER_LENGTH,
    BinaryReader,
    check_shape,
    decode_bytes_elements,
    encode_bytes_elements,
    flatten,
    floats_from_binary,
    split_body,
)

INPUTS = ("images", "image_bytes")
CLASS_OUTPUTS = ("logits", "probabilities", "labels")
OUTPUTS = (*CLASS_OUTPUTS, "features")
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration"]


@dataclass
class _Output:
    name: str
    binary: bool
    classification: int | None  # top-k strings instead of the tensor


def parse_infer(body: bytes, header_length: str | None, module: Module, config: ServeConfig) -> Prepared:
    """An ``/infer`` body (JSON, or JSON + binary tensors) → a :class:`Prepared` request."""
    json_part, binary = split_body(body, header_length)
    document = expect_object(load_json(json_part), "the inference request header")
    parameters = expect_object(document.get("parameters") or {}, "parameters")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise RequestError(f"the request needs exactly one input, {' or '.join(INPUTS)}")
    reader = BinaryReader(binary)
    tensor = expect_object(inputs[0], "inputs[0]")
    count, decode = _parse_input(tensor, reader, module, config)
    reader.check_consumed()
    outputs = _parse_outputs(document.get("outputs"), bool(parameters.get("binary_data_output", False)), module)
    request_id = document.get("id")

    def reply(results: dict[str, np.ndarray]) -> Reply:
        return _reply(results, outputs, request_id, module, config)

    return Prepared(
        count,
        decode,
        logits=any(o.name in CLASS_OUTPUTS for o in outputs),
        features=any(o.name == "features" for o in outputs),
        reply=reply,
    )


def _parse_input(tensor: dict[str, Any], reader: BinaryReader, module: Module, config: ServeConfig) -> tuple[int, Any]:
    name, datatype = tensor.get("name"), tensor.get("datatype")
    if name not in INPUTS:
        raise RequestError(f"unknown input {name!r}; this model takes {' or '.join(INPUTS)}")
    shape = check_shape(tensor.get("shape"), name)
    parameters = expect_object(tensor.get("parameters") or {}, f"{name}.parameters")
    size = parameters.get("binary_data_size")
    raw = reader.take(size, name) if size is not None else None
    if raw is None and "data" not in tensor:
        raise RequestError(f"{name}: no data (neither JSON data nor binary_data_size)")
    if name == "images":
        if datatype not in FLOAT_DTYPES:
            raise RequestError(f"images: datatype must be FP32 (or FP16, FP64), got {datatype!r}")
        if len(shape) != 4 or shape[1:] != image_shape(module):
            raise RequestError(f"images: shape must be [B, {', '.join(map(str, image_shape(module)))}], got {shape}")
        count = shape[0]
        _check_count(count, config)
        dtype = FLOAT_DTYPES[datatype]

        def decode_floats() -> np.ndarray:
            values = floats_from_binary(raw, dtype, shape, name) if raw is not None else tensor["data"]
            return float_images(values, module, name, shape=shape, dtype=dtype)

        return count, decode_floats
    if datatype != "BYTES":
        raise RequestError(f"image_bytes: datatype must be BYTES, got {datatype!r}")
    elements: list[Any] = decode_bytes_elements(raw, name) if raw is not None else list(flatten(tensor["data"]))
    count = len(elements)
    if count != int(np.prod(shape)):
        raise RequestError(f"image_bytes: {count} elements do not fill shape {shape}")
    _check_count(count, config)

    def decode_files() -> np.ndarray:
        images = []
        for index, element in enumerate(elements):
            what = f"image_bytes[{index}]"
            if raw is None:  # JSON: base64 text, bare or as TF Serving's {"b64": ...}
                element = b64decode(element.get("b64") if isinstance(element, dict) else element, what)
            images.append(decode_image_file(element, module, config.max_image_pixels, what))
        return np.stack(images)

    return count, decode_files


def _check_count(count: int, config: ServeConfig) -> None:
    if count < 1:
        raise RequestError("the request holds no images")
    if count > config.max_instances:
        raise PayloadTooLarge(f"{count} images in one request, more than --max-instances {config.max_instances}")


def _parse_outputs(requested: Any, default_binary: bool, module: Module) -> list[_Output]:
    if requested is None:
        names = CLASS_OUTPUTS if module.num_classes else ("features",)
        return [_Output(name, default_binary, None) for name in names]
    if not isinstance(requested, list) or not requested:
        raise RequestError("outputs must be a non-empty list of {name, parameters}")
    outputs: list[_Output] = []
    for entry in requested:
        entry = expect_object(entry, "outputs[]")
        name = entry.get("name")
        if name not in OUTPUTS:
            raise RequestError(f"unknown output {name!r}; this model has {', '.join(OUTPUTS)}")
        if name in CLASS_OUTPUTS and not module.num_classes:
            raise RequestError(f"output {name!r}: this model has no classifier, only features")
        if any(o.name == name for o in outputs):
            raise RequestError(f"output {name!r} requested twice")
        parameters = expect_object(entry.get("parameters") or {}, f"{name}.parameters")
        binary = parameters.get("binary_data", default_binary)
        if not isinstance(binary, bool):
            raise RequestError(f"{name}: binary_data must be true or false")
        k = parameters.get("classification")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise RequestError(f"{name}: classification must be a positive integer, got {k!r}")
        if k is not None and name == "features":
            raise RequestError("features: classification applies to logits, probabilities and labels only")
        outputs.append(_Output(name, binary, k))
    return outputs


def _reply(
    results: dict[str, np.ndarray], outputs: list[_Output], request_id: Any, module: Module, config: ServeConfig
) -> Reply:
    header: dict[str, Any] = {"model_name": config.model_name, "model_version": MODEL_VERSION}
    if request_id is not None:
        header["id"] = request_id
    header["outputs"] = []
    chunks: list[bytes] = []
    logits = results.get("logits")
    probabilities = softmax(logits) if logits is not None else None
    labels = module.labels or [str(i) for i in range(module.num_classes)]
    for output in outputs:
        values = {"logits": logits, "probabilities": probabilities, "features": results.get("features")}
        if output.name == "labels":
            k = output.classification or config.default_top_k
            tensor: np.ndarray = classification_strings(probabilities, k, labels)
        elif output.classification is not None:
            tensor = classification_strings(values[output.name], output.classification, labels)
        else:
            tensor = values[output.name]
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": "BYTES" if tensor.dtype == object else "FP32",
            "shape": list(tensor.shape),
        }
        if output.binary:
            raw = encode_bytes_elements(tensor.ravel()) if tensor.dtype == object else tensor.astype("<f4").tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif tensor.dtype == object:
            entry["data"] = [element.decode() for element in tensor.ravel()]
        else:
            entry["data"] = tensor.ravel().tolist()
        header["outputs"].append(entry)
    reply = json_reply(header)
    if not chunks:
        return reply
    return Reply(
        reply.body + b"".join(chunks),
        content_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(reply.body))},
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[B, C]`` logits, float32, shifted by the row maximum to avoid overflow."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def classification_strings(values: np.ndarray, k: int, labels: list[str]) -> np.ndarray:
    """The top ``k`` of each row of ``values`` ``[B, C]`` as ``b"value:index:label"`` (Triton's format), ``[B, k]``.

    Values are printed with six decimals, as Triton's ``std::to_string`` prints them.
    """
    k = min(k, values.shape[1])
    # argsort of the negated values is stable, so ties keep the lower index first, as torch.topk does on CPU.
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]
    strings = np.empty(top.shape, dtype=object)
    for row, indices in enumerate(top):
        for column, index in enumerate(indices):
            strings[row, column] = f"{values[row, index]:f}:{index}:{labels[index]}".encode()
    return strings


# -- metadata ---------------------------------------------------------------------------------------------


def server_metadata() -> dict[str, Any]:
    """``GET /v2``."""
    return {"name": "irv2", "version": __version__, "extensions": EXTENSIONS}


def model_metadata(module: Module, config: ServeConfig) -> dict[str, Any]:
    """``GET /v2/models/NAME``: inputs and outputs with their datatypes and shapes (-1: any size)."""
    outputs = [{"name": "features", "datatype": "FP32", "shape": [-1, NUM_FEATURES]}]
    if module.num_classes:
        outputs = [
            {"name": "logits", "datatype": "FP32", "shape": [-1, module.num_classes]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, module.num_classes]},
            {"name": "labels", "datatype": "BYTES", "shape": [-1, -1]},
            *outputs,
        ]
    return {
        "name": config.model_name,
        "versions": [MODEL_VERSION],
        "platform": "pytorch",
        "inputs": [
            {"name": "images", "datatype": "FP32", "shape": [-1, *image_shape(module)]},
            {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": outputs,
    }


def model_config(module: Module, config: ServeConfig) -> dict[str, Any]:
    """``GET /v2/models/NAME/config``: the model as a Triton ``config.pbtxt`` would describe it (in JSON)."""
    metadata = model_metadata(module, config)
    types = {"FP32": "TYPE_FP32", "BYTES": "TYPE_STRING"}

    def tensors(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for entry in entries:
            dims = entry["shape"][1:]  # Triton leaves the batch axis out when max_batch_size > 0
            spec = {"name": entry["name"], "data_type": types[entry["datatype"]], "dims": dims or [1]}
            if not dims:
                spec["reshape"] = {"shape": []}  # Triton's way of saying "[B], one element per image"
            out.append(spec)
        return out

    return {
        "name": config.model_name,
        "platform": "pytorch",
        "backend": "irv2",
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": config.max_batch_size,
        "input": tensors(metadata["inputs"]),
        "output": tensors(metadata["outputs"]),
        "dynamic_batching": {"max_queue_delay_microseconds": int(config.max_wait_ms * 1000)},
        "instance_group": [
            {"count": config.workers, "kind": "KIND_GPU" if module.device_type == "cuda" else "KIND_CPU"}
        ],
    }
