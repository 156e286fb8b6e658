"""The export formats, as one table: each format's name, file suffixes, pip extra, writer and reader.

``irv2.export`` and ``irv2 export`` know formats only through this table; adding a format is adding a record.
Writers and readers import their runtimes (onnx, TensorFlow) only when called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..api import Module
from .wrapper import ExportWrapper

# write(wrapper, module, path, dynamic_size, metadata): make the export at ``path``.
Writer = Callable[[ExportWrapper, Module, Path, bool, dict[str, Any]], None]
# read(path, images [B, H, W, 3], wrapper): load the export with its own runtime, run it, {output name: array}.
Reader = Callable[[Path, np.ndarray, ExportWrapper], dict[str, np.ndarray]]


@dataclass(frozen=True)
class ExportFormat:
    """One deployment format.

    Attributes:
        name: what users write (``format="onnx"``, ``--format onnx``).
        summary: one line for help texts.
        suffixes: the file names that imply it (``.onnx``); empty for a folder format named explicitly.
        extra: the pip extra it needs (``pip install 'irv2[onnx]'``), or None.
        folder: whether the export is a folder (SavedModel) rather than one file.
        any_size: whether every export of it takes any image size, ``dynamic_size`` or not (TorchScript).
        write, read: see :data:`Writer` and :data:`Reader`.
    """

    name: str
    summary: str
    suffixes: tuple[str, ...]
    extra: str | None
    folder: bool
    any_size: bool
    write: Writer
    read: Reader


def _write_onnx(wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict) -> None:
    from .onnx import write_onnx

    # ONNX metadata values are strings; JSON keeps lists and nested records readable with one json.loads.
    props = {key: json.dumps(value) for key, value in metadata.items()}
    write_onnx(wrapper, path, image_size=module.expected_image_size, dynamic_size=dynamic_size, metadata=props)


def _read_onnx(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .onnx import run_onnx

    return run_onnx(path, images)


def _write_torchscript(wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict) -> None:
    from .torchscript import write_torchscript

    write_torchscript(
        wrapper, path, image_size=module.expected_image_size, metadata_json=json.dumps(metadata, indent=2)
    )


def _read_torchscript(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .torchscript import run_torchscript

    return run_torchscript(path, images, output_names=wrapper.output_names)


def _write_savedmodel(wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict) -> None:
    from .savedmodel import write_savedmodel

    write_savedmodel(
        wrapper.model,
        path,
        image_size=None if dynamic_size else module.expected_image_size,
        labels=module.labels if module.num_classes else None,
        metadata_json=json.dumps(metadata, indent=2),
    )


def _read_savedmodel(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .savedmodel import run_savedmodel

    return run_savedmodel(path, images)


FORMATS_TABLE: dict[str, ExportFormat] = {
    spec.name: spec
    for spec in (
        ExportFormat(
            "onnx",
            "one .onnx file, checked with onnxruntime; labels and preprocessing in its metadata_props",
            (".onnx",),
            "onnx",
            folder=False,
            any_size=False,
            write=_write_onnx,
            read=_read_onnx,
        ),
        ExportFormat(
            "torchscript",
            "one .pt file for torch.jit.load (Python) or libtorch (C++); any image size",
            (".pt", ".ts"),
            None,
            folder=False,
            any_size=True,
            write=_write_torchscript,
            read=_read_torchscript,
        ),
        ExportFormat(
            "savedmodel",
            "a TensorFlow 2 SavedModel folder for tf.saved_model.load and hub.KerasLayer, signatures "
            "serving_default, image_classification and image_feature_vector",
            (),
            "tensorflow",
            folder=True,
            any_size=False,
            write=_write_savedmodel,
            read=_read_savedmodel,
        ),
    )
}
FORMATS = tuple(FORMATS_TABLE)


def format_for_suffix(path: Path) -> ExportFormat | None:
    """The format whose suffix ``path`` has, or None."""
    suffix = path.suffix.lower()
    return next((spec for spec in FORMATS_TABLE.values() if suffix in spec.suffixes), None)
