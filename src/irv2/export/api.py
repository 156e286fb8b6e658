"""``irv2.export``: write a module as ONNX, TorchScript, a TensorFlow SavedModel, OpenVINO IR, LiteRT or
ExecuTorch, checked against irv2.

Every format keeps TF-Hub's interface: ``images`` float32 ``[B, H, W, 3]`` (channel last, the module's size:
299 x 299 for the TF-Hub weights) with values in [0, 1] in; ``logits`` ``[B, num_classes]`` and ``features``
``[B, 1536]`` out. An export is written next to
its destination under a temporary name, read back with the format's own runtime (onnxruntime,
``torch.jit.load``, ``tf.saved_model.load``, OpenVINO), compared with irv2 on real photos, and only then renamed into
place: a failed or inexact export never leaves a file behind.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..api import Module, load
from ..atomic import atomic_path
from ..disk_full import on_disk_full, size_text, unchanged
from ..engine.io_names import EXPORT_INPUT as INPUT_NAME
from ..engine.io_names import LOGITS
from ..engine.runtime_engine import float32_size
from ..errors import ExportError, Irv2Error, OutputExistsError
from ..extras import require_extra
from ..model import NUM_FEATURES
from .formats import EXPORT_DTYPES, FORMATS, FORMATS_TABLE, ExportFormat, format_for_suffix

if TYPE_CHECKING:
    from .wrapper import ExportWrapper


# max |export - irv2| / max |irv2| per output. Float32 ports land near 1e-6; 1e-4 leaves room for other CPUs'
# kernels and still catches any real mistake (a wrong padding or a missing BatchNorm is off by 1e-1 or more).
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote. ``os.fspath(result)`` is the path.

    Attributes:
        path: the file (ONNX, TorchScript, LiteRT, ExecuTorch) or folder (SavedModel, OpenVINO IR) written.
        format: ``onnx``, ``torchscript``, ``savedmodel``, ``openvino``, ``litert`` or ``executorch``.
        errors: per output (``logits``, ``features``), the largest ``max |export - irv2| / max |irv2|`` over
            the check batches, as the format's runtime computed it; empty when ``verify=False``. For int8, the
            same measure against irv2's float32 on the calibration images.
        dtype: ``float32``, or ``int8`` for a quantized export.
        top1_agreement: for int8, the fraction of calibration images whose top class is float32's; None
            otherwise (and for a feature-vector module).
    """

    path: Path
    format: str
    errors: dict[str, float] = field(default_factory=dict)
    dtype: str = "float32"
    top1_agreement: float | None = None

    def __fspath__(self) -> str:
        return str(self.path)


def export(
    module: Module | str | os.PathLike[str] | None,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    dynamic_size: bool = False,
    overwrite: bool = False,
    verify: bool = True,
    dtype: str = "float32",
    calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None = None,
) -> ExportResult:
    """Export ``module`` (or the weights ``irv2.load`` finds for a handle) to ``path``.

    The artefact takes ``images`` float32 ``[B, H, W, 3]`` in [0, 1] at the module's size (299 x 299 for the
    TF-Hub weights), any batch size B, and returns
    ``logits`` ``[B, num_classes]`` (1001 for the TF-Hub weights, any width for fine-tuned ones) and
    ``features`` ``[B, 1536]``; a feature-vector module (``num_classes == 0``) gives ``features`` only.

    Args:
        module: a loaded ``irv2.Module`` (exported in eval mode, float32, on CPU; the caller's module is not
            changed), or a handle for ``irv2.load`` (None: the default TF-Hub weights).
        path: the ``.onnx`` file, TorchScript ``.pt`` file, SavedModel folder or OpenVINO IR folder
            (``model.xml`` and ``model.bin``) to write.
        format: ``onnx`` (needs ``irv2[onnx]``), ``torchscript``, ``savedmodel`` (needs
            ``irv2[tensorflow]``), ``openvino`` (needs ``irv2[openvino]``), ``litert`` (``irv2[litert]``) or
            ``executorch`` (``irv2[executorch]``); None infers it from a ``.onnx``, ``.tflite``, ``.pte``
            or ``.pt`` suffix.
        dynamic_size: also let height and width vary (each at least 75) in ONNX, the SavedModel and
            OpenVINO IR; TorchScript always accepts any size.
        overwrite: replace an existing file of the same kind (or folder of the same format: a SavedModel, an
            OpenVINO IR); otherwise refuse.
        verify: read the export back with its runtime and require every output within ``TOLERANCE``
            (1e-4, relative to the output's largest magnitude) of irv2 on the bundled photo, at batch
            sizes 2 and 1, and at 263 x 320 where the size is free (``dynamic_size``, TorchScript). An int8
            export is measured instead: its error and top-1 agreement against float32 on the calibration
            images, reported in the result, never refused.
        dtype: ``float32``, or ``int8`` for ``litert`` and ``executorch``: weights and activations quantized
            on ``calibration``, with float32 images in and float32 outputs out.
        calibration: for int8, the images whose activation ranges fix the quantization, typical of what the
            export will classify: image paths (preprocessed by ``module.preprocess``'s recipe) or an array
            ``[N, H, W, 3]`` in [0, 1] at the module's size; 32-128 images are plenty.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        DiskFullError: the disk (or quota) filled up; nothing was written at ``path``.
        MissingDependencyError: the format's extra is not installed.
        ExportError: anything else that stops the export, including a failed check.
    """
    format = check_export(path, format=format, overwrite=overwrite, dtype=dtype)
    if dtype == "int8" and calibration is None:
        raise ExportError(
            "an int8 export needs calibration images, typical of what it will classify: pass calibration= "
            "(image paths, or an array [N, H, W, 3] in [0, 1]) to irv2.export, or --calibration PATH... to "
            "irv2 export (files or folders; 32-128 images are plenty)"
        )
    spec = FORMATS_TABLE[format]
    if dynamic_size and not spec.dynamic_size:
        free = ", ".join(name for name, other in FORMATS_TABLE.items() if other.dynamic_size and not other.any_size)
        raise ExportError(
            f"a {format} export takes the module's own image size; --dynamic-size (dynamic_size=True) is for {free}"
        )
    target = Path(path)
    if not isinstance(module, Module):
        module = load(module, engine="plain")  # only its network is exported: no engine to build
    from .wrapper import check_images, export_wrapper

    wrapper = export_wrapper(module)
    metadata = export_metadata(module, format=format, dynamic_size=dynamic_size)
    int8 = _calibration(calibration, module) if dtype == "int8" else None
    if int8 is not None:
        metadata["dtype"] = "int8"
    # Every float32 format holds the network's weights in float32, a few buffers and the graph besides; int8
    # holds them in about a quarter of that (a third is asked for, with room for the graph).
    size = float32_size(module.model) // (3 if int8 is not None else 1)
    room = f"free about {size_text(size)} in {target.parent} and export again"
    full = on_disk_full(target, kept=f"no part of the export ({unchanged(target)})", resume=room)
    # Written and checked under a temporary name: a failed or inexact export leaves nothing behind.
    with _runtime_failures(format), full, atomic_path(target) as scratch:
        spec.write(wrapper, module, scratch, dynamic_size, metadata, int8)
        if int8 is not None:  # measured against float32 on the calibration images, never refused
            return _measured_int8(wrapper, target, scratch, spec, int8)
        images = check_images(module.expected_image_size, any_size=dynamic_size or spec.any_size)
        errors = _verify(wrapper, scratch, spec, images) if verify else {}
    return ExportResult(target, format, errors)


@contextlib.contextmanager
def _runtime_failures(format: str) -> Iterator[None]:
    """An exporter or runtime failure (torch.export, onnxruntime, TensorFlow, OpenVINO, LiteRT, ExecuTorch) as one
    ExportError line for the user: the exception's first line, the operator it names (a converter's message
    often names it lines further down), and the converter's version; the original exception is chained for
    whoever debugs it."""
    try:
        yield
    except (Irv2Error, OSError):
        raise
    except Exception as exc:
        text = str(exc).strip()
        lines = text.splitlines()
        details = [f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__]
        match = _OPERATOR.search(text)
        operator = match and (match.group("name") or match.group("name2"))
        if operator and operator not in details[0]:
            details.append(f"operator {operator}")
        details.append(_converter_version(FORMATS_TABLE[format].converter))
        raise ExportError(f"the {format} export failed ({'; '.join(details)}); nothing was written") from exc


# How converters name an operator they cannot take: MLIR's "'tf.Foo' op is neither a custom op ...", torch's and
# ExecuTorch's "operator aten::foo", OpenVINO's "Operation type Foo".
_OPERATOR = re.compile(r"'(?P<name>[\w.:]+)' op\b|\b(?:[Oo]perator|Operation type)[: ]+'?(?P<name2>[\w.:]+)")


def _converter_version(module: str) -> str:
    """``tensorflow 2.21.0``: the converter as the user's environment has it, for the bug report."""
    version = getattr(sys.modules.get(module), "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            version = "version unknown"
    return f"{module} {version}"


def check_export(
    path: str | os.PathLike[str], *, format: str | None = None, overwrite: bool = False, dtype: str = "float32"
) -> str:
    """Everything ``export`` can check before loading any weights; returns the format.

    Raises ``ExportError`` for an unknown format or a missing folder, ``OutputExistsError`` for a destination
    that exists (without ``overwrite``) or that ``overwrite`` must not replace, ``MissingDependencyError``
    for a missing extra.
    """
    target = Path(path)
    if format is None:
        implied = format_for_suffix(target)
        if implied is None:
            raise ExportError(f"{target}: cannot tell the format from the name; choose one of {', '.join(FORMATS)}")
        format = implied.name
    if format not in FORMATS_TABLE:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    spec = FORMATS_TABLE[format]
    if dtype not in EXPORT_DTYPES:
        raise ExportError(f"unknown export dtype {dtype!r}; choose {' or '.join(EXPORT_DTYPES)}")
    if dtype == "int8" and not spec.int8:
        int8 = ", ".join(name for name, other in FORMATS_TABLE.items() if other.int8)
        raise ExportError(
            f"no int8 export for {format}: choose one of {int8}, or export float32 (OpenVINO's int8 is made "
            "where the file is loaded: irv2.load(dtype='int8', calibration=...))"
        )
    if spec.extra is not None:
        require_extra(spec.extra, f"exporting to {format}")
    if not target.parent.is_dir():
        raise ExportError(f"{target}: folder {target.parent} does not exist")
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"{target}: already exists; pass --force (overwrite=True) to replace it")
        if spec.folder is not None:
            if not target.is_dir() or (any(target.iterdir()) and not (target / spec.folder).is_file()):
                article = "an" if spec.title[0] in "AEIOU" else "a"
                raise OutputExistsError(f"{target}: exists and is not {article} {spec.title} folder; not replacing it")
        elif not target.is_file():
            raise OutputExistsError(f"{target}: exists and is not a file; not replacing it with a {format} file")
    return format


def export_metadata(module: Module, *, format: str, dynamic_size: bool) -> dict[str, Any]:
    """What travels with an export (``irv2.json``, or ONNX ``metadata_props`` with each value as JSON)."""
    any_size = dynamic_size or FORMATS_TABLE[format].any_size
    size: list[Any] = ["height", "width"] if any_size else list(module.expected_image_size)
    outputs = {"features": ["batch", NUM_FEATURES]}
    if module.num_classes:
        outputs = {"logits": ["batch", module.num_classes], **outputs}
    return {
        "producer": f"irv2 {__version__}",
        "architecture": "inception_resnet_v2",
        "inputs": {INPUT_NAME: {"dtype": "float32", "shape": ["batch", *size, 3], "layout": "NHWC", "range": [0, 1]}},
        "outputs": outputs,
        "num_classes": module.num_classes,
        "labels": module.labels if module.num_classes else None,
        "image_size": list(module.expected_image_size),
        "preprocessing": module.preprocessing.to_dict(),
        "provenance": module.info.provenance,
    }


def _calibration(calibration: Any, module: Module) -> np.ndarray:
    from ..api.load import calibration_images
    from ..engine.calibration import check_calibration

    try:
        images = calibration_images(calibration, module.preprocessing)
        # The few-images warning points at the line that called irv2.export.
        return check_calibration(images, module.expected_image_size, stacklevel=4)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def _measured_int8(
    wrapper: ExportWrapper, target: Path, scratch: Path, spec: ExportFormat, images: np.ndarray
) -> ExportResult:
    """The int8 file at ``scratch`` run in its own runtime on ``images``, against irv2's float32 on them."""
    from .wrapper import reference_outputs, relative_error

    expected = reference_outputs(wrapper, images)
    actual = spec.read(scratch, images, wrapper)
    errors = {name: relative_error(np.asarray(actual[name]), value) for name, value in expected.items()}
    agreement = None
    if LOGITS in expected:
        agreement = float(np.mean(actual[LOGITS].argmax(1) == expected[LOGITS].argmax(1)))
    return ExportResult(target, spec.name, errors, dtype="int8", top1_agreement=agreement)


def _verify(wrapper: ExportWrapper, path: Path, spec: ExportFormat, batches: list[np.ndarray]) -> dict[str, float]:
    from .wrapper import reference_outputs, relative_error

    errors = dict.fromkeys(wrapper.output_names, 0.0)
    for images in batches:
        expected = reference_outputs(wrapper, images)
        actual = spec.read(path, images, wrapper)
        if set(actual) != set(expected):
            raise ExportError(f"the export gives outputs {sorted(actual)}, expected {sorted(expected)}")
        for name, value in expected.items():
            errors[name] = max(errors[name], relative_error(np.asarray(actual[name]), value))
    worst = max(errors, key=errors.__getitem__)
    if not errors[worst] <= TOLERANCE:  # also catches NaN
        raise ExportError(
            f"the export does not reproduce irv2: {worst} differs by {errors[worst]:.2g} (relative; limit "
            f"{TOLERANCE:g}); nothing was written"
        )
    return errors
