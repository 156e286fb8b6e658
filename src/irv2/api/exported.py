"""Modules from irv2's own exports: an ``irv2 export`` ONNX file runs on ONNX Runtime, an OpenVINO IR folder on
OpenVINO, without torch.

An export carries what a module answers with besides its outputs (labels, classes, preprocessing, image size,
provenance) in its metadata: ONNX ``metadata_props`` or the IR's ``rt_info`` under ``irv2``, each value a JSON
string (``irv2.export.export_metadata`` writes them). Its graph has TF-Hub's interface itself (``images`` NHWC
in [0, 1]), so the module hands the caller's batch to the runtime as it is. It holds no PyTorch network:
``module.model`` (fine-tuning, end points, export, explain) raises an error saying to load the original weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine.catalog import ENGINES
from ..engine.precision import Precision, device_type
from ..errors import CheckpointError, OptionError
from ..extras import require_extra
from ..labels import labels_for
from ..preprocessing import Preprocessing
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo

ONNX_SUFFIX = ".onnx"
IR_GRAPH = "model.xml"
# An exported file holds float32 weights: int8 is quantized from the weights and calibration images at load.
_NEEDS_WEIGHTS = ("int8",)


def export_kind(path: Path) -> str | None:
    """``onnx`` for an ONNX file, ``openvino`` for an IR folder (``model.xml`` inside), else None."""
    if path.suffix.lower() == ONNX_SUFFIX and path.is_file():
        return "onnx"
    if path.is_dir() and (path / IR_GRAPH).is_file():
        return "openvino"
    return None


def load_exported(
    path: Path, kind: str, *, precision: Precision, engine: str | None, device: Any, train: bool
) -> Module:
    """The module that runs the export at ``path`` on its own runtime, at ``precision``."""
    spec = next(spec for spec in ENGINES.values() if spec.runs_export == kind)
    name = spec.name
    dtypes = [dtype for dtype in spec.dtypes if dtype not in _NEEDS_WEIGHTS]
    if train:
        raise OptionError(
            f"tags: {path} is an exported inference graph; the {{'train'}} graph needs the original weights"
        )
    if device_type(device) != "cpu":
        raise OptionError(f"device: {path} runs on the CPU ({name}); for a GPU load the original weights")
    # An engine named here must be the export's runtime; IRV2_ENGINE (a process-wide default) is not consulted.
    if engine is not None and engine.lower() not in (name, "auto"):
        raise OptionError(f"engine {engine!r}: {path} is an {kind} export, which runs on engine {name!r}")
    if precision.name not in dtypes:
        raise OptionError(f"dtype {precision.name}: {path} runs in {' or '.join(dtypes)} on {name}")
    require_extra(spec.extra, f"an exported {kind} file")  # type: ignore[arg-type]  # a runtime's record has one
    Engine = spec.engine_class()
    runner = Engine(None, precision, path=path, exported=True)
    try:
        runner.build()  # open it now: a file the runtime cannot read fails here, not at the first call
    except OptionError:
        raise
    except Exception as exc:  # the runtimes raise their own types for unreadable files
        raise CheckpointError(path, f"{Engine.runtime} cannot read it ({exc})") from None
    info = _info_of(path, _read_metadata(path, kind, runner))
    runner.num_classes = info.num_classes
    runner.image_size = info.image_size
    from ..hub.digests import source_digest

    return Module(None, info, runner, weights_sha256=source_digest(path))


def _read_metadata(path: Path, kind: str, runner: Any) -> dict[str, Any]:
    """The export's irv2 metadata, each value parsed from JSON; CheckpointError when it has none."""
    raw: dict[str, str] = {}
    try:
        if kind == "onnx":
            raw = dict(runner.session.get_modelmeta().custom_metadata_map)
        else:
            import openvino as ov

            info = ov.Core().read_model(str(path / IR_GRAPH)).get_rt_info()
            section = info["irv2"] if "irv2" in list(info.keys()) else {}
            raw = {key: section[key].astype(str) for key in section}
    except Exception as exc:  # the runtimes raise their own types for unreadable files
        raise CheckpointError(path, f"the {kind} runtime cannot read it ({exc})") from None
    try:
        metadata = {key: json.loads(value) for key, value in raw.items()}
    except ValueError as exc:
        raise CheckpointError(path, f"its irv2 metadata is not JSON ({exc})") from None
    if metadata.get("architecture") != "inception_resnet_v2":
        raise CheckpointError(
            path,
            f"not an irv2 export (no inception_resnet_v2 metadata): irv2.load reads the {kind} files that "
            "irv2 export writes",
        )
    return metadata


def _info_of(path: Path, metadata: dict[str, Any]) -> ModuleInfo:
    num_classes = int(metadata.get("num_classes") or 0)
    try:
        preprocessing = Preprocessing.from_dict(metadata.get("preprocessing"), image_size=metadata.get("image_size"))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(path, f"its preprocessing cannot be used ({exc})") from None
    return ModuleInfo(
        num_classes=num_classes,
        labels=metadata.get("labels") or (labels_for(num_classes) if num_classes else None),
        default_signature=CLASSIFICATION if num_classes else FEATURE_VECTOR,
        preprocessing=preprocessing,
        provenance={**(metadata.get("provenance") or {}), "loaded_from": str(path), "export": metadata.get("producer")},
    )
