"""TensorFlow Serving's REST API for the TF-Hub module's signatures.

``POST /v1/models/NAME[/versions/1]:predict`` takes the row format ``{"instances": [...]}`` (answered with
``{"predictions": [...]}``) or the columnar format ``{"inputs": ...}`` (answered with ``{"outputs": ...}``).
An instance is a ``[H, W, 3]`` nested list of floats in [0, 1] at the module's size (299 x 299 for the TF-Hub
weights), or ``{"b64": "..."}``, a base64 image file (JPEG, PNG, ...) preprocessed as ``module.preprocess``
does; TF Serving's named-input form
``{"images": ...}`` is accepted too. ``signature_name`` picks the output: ``serving_default``,
``image_classification`` (1001 logits per image) or ``image_feature_vector`` (1536 features).
``GET /v1/models/NAME`` and ``GET /v1/models/NAME/metadata`` answer in TF Serving's JSON shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...api import CLASSIFICATION, FEATURE_VECTOR, Module
from ...errors import PayloadTooLarge, RequestError
from ..config import MODEL_VERSION, NUM_FEATURES, ServeConfig
from ..decode import b64decode, decode_image_file, float_images, image_shape
from . import Prepared, expect_object, json_reply, load_json

DEFAULT_SIGNATURE = "serving_default"


def signatures(module: Module) -> dict[str, str]:
    """Signature names this module answers to → the irv2 signature each runs."""
    default = CLASSIFICATION if module.num_classes else FEATURE_VECTOR
    names = {DEFAULT_SIGNATURE: default, "default": default, FEATURE_VECTOR: FEATURE_VECTOR}
    if module.num_classes:
        names[CLASSIFICATION] = CLASSIFICATION
    return names


def parse_predict(body: bytes, module: Module, config: ServeConfig) -> Prepared:
    """A ``:predict`` body → a :class:`Prepared` request (raises RequestError on anything malformed)."""
    document = expect_object(load_json(body), "the request")
    name = document.get("signature_name", DEFAULT_SIGNATURE)
    known = signatures(module)
    if name not in known:
        raise RequestError(f"unknown signature_name {name!r}; this model has {sorted(known)}")
    signature = known[name]
    if ("instances" in document) == ("inputs" in document):
        raise RequestError('the request needs exactly one of "instances" (row format) or "inputs" (columnar)')
    columnar = "inputs" in document
    rows = document["inputs"] if columnar else document["instances"]
    if columnar and isinstance(rows, dict):
        rows = _only_input(rows, "inputs")
    if not isinstance(rows, list) or not rows:
        key = "inputs" if columnar else "instances"
        raise RequestError(f'"{key}" must be a non-empty list of images')
    if len(rows) > config.max_instances:
        raise PayloadTooLarge(f"{len(rows)} instances in one request, more than --max-instances {config.max_instances}")
    output = "logits" if signature == CLASSIFICATION else "features"

    def decode() -> np.ndarray:
        return np.concatenate([_instance(row, i, module, config) for i, row in enumerate(rows)])

    def reply(outputs: dict[str, np.ndarray]) -> Any:
        return json_reply({"outputs" if columnar else "predictions": outputs[output].tolist()})

    return Prepared(len(rows), decode, logits=output == "logits", features=output == "features", reply=reply)


def _only_input(row: dict[str, Any], what: str) -> Any:
    """TF Serving's named-input form: the model has one input, so one key (``images`` or any name)."""
    if len(row) != 1:
        raise RequestError(f"{what}: the model has one input (images); got {sorted(row)}")
    return next(iter(row.values()))


def _instance(row: Any, index: int, module: Module, config: ServeConfig) -> np.ndarray:
    """One instance → ``[1, H, W, 3]``."""
    what = f"instance {index}"
    if isinstance(row, dict) and "b64" not in row:
        row = _only_input(row, what)
    if isinstance(row, dict):
        if set(row) != {"b64"}:
            raise RequestError(f'{what}: expected {{"b64": "<base64 image file>"}}')
        return decode_image_file(b64decode(row["b64"], what), module, config.max_image_pixels, what)[None]
    if isinstance(row, list):
        images = float_images(row, module, what)
        if len(images) != 1:
            raise RequestError(f"{what}: expected one image {image_shape(module)}, got a batch of {len(images)}")
        return images
    raise RequestError(f'{what}: expected a {image_shape(module)} list of floats in [0, 1] or {{"b64": "..."}}')


def model_status() -> dict[str, Any]:
    """``GET /v1/models/NAME``: one version, available."""
    return {
        "model_version_status": [
            {"version": MODEL_VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def model_metadata(module: Module, config: ServeConfig) -> dict[str, Any]:
    """``GET /v1/models/NAME/metadata``: the TF-Hub module's signatures as TF Serving describes a SavedModel."""
    widths = {CLASSIFICATION: module.num_classes, FEATURE_VECTOR: NUM_FEATURES}
    signature_defs = {
        name: {
            "inputs": {"images": _tensor_info("images", [-1, *image_shape(module)])},
            "outputs": {"default": _tensor_info(f"{signature}/default", [-1, widths[signature]])},
            "method_name": "tensorflow/serving/predict",
            "defaults": {},
        }
        for name, signature in signatures(module).items()
        if name != "default"  # an alias, not a signature of the module
    }
    return {
        "model_spec": {"name": config.model_name, "signature_name": "", "version": MODEL_VERSION},
        "metadata": {"signature_def": {"signature_def": signature_defs}},
    }


def _tensor_info(name: str, shape: list[int]) -> dict[str, Any]:
    return {
        "dtype": "DT_FLOAT",
        "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in shape], "unknown_rank": False},
        "name": f"{name}:0",
    }
