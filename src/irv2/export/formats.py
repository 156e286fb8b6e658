"""The export formats, as one table: each format's name, file suffixes or folder, pip extra, writer and reader.

``irv2.export`` and ``irv2 export`` know formats only through this table; adding a format is adding a record.
Writers and readers import their runtimes (onnx, TensorFlow, OpenVINO) only when called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api import Module

if TYPE_CHECKING:
    from .wrapper import ExportWrapper

# write(wrapper, module, path, dynamic_size, metadata, calibration): make the export at ``path``; int8 where
# calibration images ([N, H, W, 3] in [0, 1]) are given (only to a format with ``int8``), else float32.
Writer = Callable[["ExportWrapper", Module, Path, bool, dict[str, Any], "np.ndarray | None"], None]
# read(path, images [B, H, W, 3], wrapper): load the export with its own runtime, run it, {output name: array}.
Reader = Callable[[Path, np.ndarray, "ExportWrapper"], dict[str, np.ndarray]]
# The precisions an export can have: float32 everywhere, int8 where the format says so.
EXPORT_DTYPES = ("float32", "int8")


@dataclass(frozen=True)
class ExportFormat:
    """One deployment format.

    Attributes:
        name: what users write (``format="onnx"``, ``--format onnx``).
        title: its name in messages (``SavedModel``).
        summary: one line for help texts.
        suffixes: the file names that imply it (``.onnx``); empty for a folder format named explicitly.
        extra: the pip extra it needs (``pip install 'irv2[onnx]'``), or None.
        folder: for a folder format, the file every export of it holds (``saved_model.pb``), by which
            ``overwrite`` tells a folder it may replace; None for a one-file format.
        any_size: whether every export of it takes any image size, ``dynamic_size`` or not (TorchScript).
        dynamic_size: whether ``dynamic_size`` can free its height and width (not for the on-device formats,
            whose converters and runtimes plan memory for one image size).
        converter: the module that converts to it (``tensorflow``), named with its version when it fails.
        write, read: see :data:`Writer` and :data:`Reader`.
        int8: whether ``write`` makes int8 exports (from calibration images); False where the format has none
            here (OpenVINO's int8 is made at load: ``irv2.load(dtype="int8")``).
    """

    name: str
    title: str
    summary: str
    suffixes: tuple[str, ...]
    extra: str | None
    folder: str | None
    any_size: bool
    converter: str
    write: Writer
    read: Reader
    int8: bool = False
    dynamic_size: bool = True


def _write_onnx(
    wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict, calibration: None
) -> None:
    from .onnx import write_onnx

    # ONNX metadata values are strings; JSON keeps lists and nested records readable with one json.loads.
    props = {key: json.dumps(value) for key, value in metadata.items()}
    write_onnx(wrapper, path, image_size=module.expected_image_size, dynamic_size=dynamic_size, metadata=props)


def _read_onnx(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .onnx import run_onnx

    return run_onnx(path, images)


def _write_torchscript(
    wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict, calibration: None
) -> None:
    from .torchscript import write_torchscript

    write_torchscript(
        wrapper, path, image_size=module.expected_image_size, metadata_json=json.dumps(metadata, indent=2)
    )


def _read_torchscript(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .torchscript import run_torchscript

    return run_torchscript(path, images, output_names=wrapper.output_names)


def _write_savedmodel(
    wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict, calibration: None
) -> None:
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


def _write_openvino(
    wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict, calibration: None
) -> None:
    from .openvino import write_openvino

    write_openvino(wrapper, path, image_size=module.expected_image_size, dynamic_size=dynamic_size, metadata=metadata)


def _read_openvino(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .openvino import run_openvino

    return run_openvino(path, images)


def _write_litert(
    wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict, calibration: Any
) -> None:
    from .litert import write_litert

    write_litert(wrapper.model, path, image_size=module.expected_image_size, metadata=metadata, calibration=calibration)


def _read_litert(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .litert import run_litert

    return run_litert(path, images)


def _write_executorch(
    wrapper: ExportWrapper, module: Module, path: Path, dynamic_size: bool, metadata: dict, calibration: Any
) -> None:
    from .executorch import write_executorch

    write_executorch(wrapper, path, image_size=module.expected_image_size, metadata=metadata, calibration=calibration)


def _read_executorch(path: Path, images: np.ndarray, wrapper: ExportWrapper) -> dict[str, np.ndarray]:
    from .executorch import run_executorch

    return run_executorch(path, images)


FORMATS_TABLE: dict[str, ExportFormat] = {
    spec.name: spec
    for spec in (
        ExportFormat(
            "onnx",
            "ONNX",
            "one .onnx file, checked with onnxruntime; labels and preprocessing in its metadata_props",
            (".onnx",),
            "onnx",
            folder=None,
            any_size=False,
            converter="onnx",
            write=_write_onnx,
            read=_read_onnx,
        ),
        ExportFormat(
            "torchscript",
            "TorchScript",
            "one .pt file for torch.jit.load (Python) or libtorch (C++); any image size",
            (".pt", ".ts"),
            None,
            folder=None,
            any_size=True,
            converter="torch",
            write=_write_torchscript,
            read=_read_torchscript,
        ),
        ExportFormat(
            "savedmodel",
            "SavedModel",
            "a TensorFlow 2 SavedModel folder for tf.saved_model.load and hub.KerasLayer, signatures "
            "serving_default, image_classification and image_feature_vector",
            (),
            "tensorflow",
            folder="saved_model.pb",
            any_size=False,
            converter="tensorflow",
            write=_write_savedmodel,
            read=_read_savedmodel,
        ),
        ExportFormat(
            "openvino",
            "OpenVINO IR",
            "an OpenVINO IR folder (model.xml, model.bin; a model version for OpenVINO Model Server), checked "
            "with OpenVINO in float32; labels and preprocessing in its rt_info",
            (),
            "openvino",
            folder="model.xml",
            any_size=False,
            converter="openvino",
            write=_write_openvino,
            read=_read_openvino,
        ),
        ExportFormat(
            "litert",
            "LiteRT",
            "one .tflite file for LiteRT (TensorFlow Lite) on phones and boards, checked with ai_edge_litert; "
            "float32, or int8 with --dtype int8 --calibration; labels and preprocessing in its metadata",
            (".tflite",),
            "litert",
            folder=None,
            any_size=False,
            converter="tensorflow",
            write=_write_litert,
            read=_read_litert,
            int8=True,
            dynamic_size=False,
        ),
        ExportFormat(
            "executorch",
            "ExecuTorch",
            "one .pte program lowered to XNNPACK for ExecuTorch on phones and boards, checked with its runtime; "
            "float32, or int8 with --dtype int8 --calibration",
            (".pte",),
            "executorch",
            folder=None,
            any_size=False,
            converter="executorch",
            write=_write_executorch,
            read=_read_executorch,
            int8=True,
            dynamic_size=False,
        ),
    )
}
FORMATS = tuple(FORMATS_TABLE)


def format_for_suffix(path: Path) -> ExportFormat | None:
    """The format whose suffix ``path`` has, or None."""
    suffix = path.suffix.lower()
    return next((spec for spec in FORMATS_TABLE.values() if suffix in spec.suffixes), None)
