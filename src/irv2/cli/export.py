"""``irv2 export --weights HANDLE --format onnx|torchscript|savedmodel|openvino|litert|executorch -o OUT``: one call to
``irv2.export``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import textwrap
from pathlib import Path

from ..errors import ExportError, MissingDependencyError
from ..export import FORMATS, FORMATS_TABLE, check_export, export
from ..export.formats import EXPORT_DTYPES, format_for_suffix
from .common import CommandError, add_calibration_argument, calibration_paths, load_module, os_failure

DESCRIPTION = """\
Export weights to a deployment format, with TF-Hub's interface: input `images` float32 [B, H, W, 3]
(channel last, the weights' size: 299 x 299 for TF-Hub's) with values in [0, 1]; outputs `logits`
[B, num_classes] and `features` [B, 1536] (only `features` for a feature-vector module). The batch size is
free.

formats:
{formats}

The export is written under a temporary name, read back with its own runtime and compared with irv2 on a
photo (within 1e-4 relative), then renamed into place: a failed export leaves nothing behind. Prints the
path written on stdout.

exit status: 0 written; 1 the weights could not be loaded, a dependency is missing, or the export failed
or did not match; 2 a usage error: no format, OUT's folder missing, or OUT exists (pass --force)."""


def _formats_text() -> str:
    lines = []
    for spec in FORMATS_TABLE.values():
        needs = f" (needs: pip install 'irv2[{spec.extra}]')" if spec.extra else ""
        lines.extend(
            textwrap.wrap(spec.summary + needs, 92, initial_indent=f"  {spec.name:<13}", subsequent_indent=" " * 15)
        )
    return "\n".join(lines)


def _folder_formats() -> list[str]:
    return [spec.title for spec in FORMATS_TABLE.values() if spec.folder is not None]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export weights to ONNX, TorchScript, a TensorFlow SavedModel, OpenVINO IR, LiteRT or ExecuTorch",
        description=DESCRIPTION.format(formats=_formats_text()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-w",
        "--weights",
        metavar="HANDLE",
        help="weights to export: a local TF-Slim checkpoint, TF-Hub module folder or archive, irv2 module folder, "
        ".safetensors or Keras .h5 file; or a registered handle or URL, fetched once and cached (`irv2 info "
        "HANDLE`). Default: TF-Hub's google/imagenet/inception_resnet_v2/classification/1",
    )
    parser.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        help="what to write (default: from OUT's suffix: "
        + ", ".join(f"{s} {spec.name}" for spec in FORMATS_TABLE.values() for s in spec.suffixes)
        + ")",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="the file (or folder: " + ", ".join(_folder_formats()) + ") to write",
    )
    parser.add_argument(
        "--dynamic-size",
        action="store_true",
        help="let height and width vary too (each at least 75), not only the batch ("
        + ", ".join(spec.name for spec in FORMATS_TABLE.values() if spec.dynamic_size and not spec.any_size)
        + "; "
        + ", ".join(spec.name for spec in FORMATS_TABLE.values() if spec.any_size)
        + " always does)",
    )
    int8_formats = ", ".join(spec.name for spec in FORMATS_TABLE.values() if spec.int8)
    parser.add_argument(
        "--dtype",
        choices=EXPORT_DTYPES,
        default="float32",
        help=f"int8 ({int8_formats}): weights and activations quantized on --calibration images, float32 images in "
        "and outputs out; prints the int8 file's error and top-1 agreement against float32 on those images",
    )
    add_calibration_argument(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace OUT if it exists (a file, or a folder of the same format: " + ", ".join(_folder_formats()) + ")",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip reading the export back and comparing it with irv2 (faster; not recommended)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    implied = format_for_suffix(Path(args.output))
    named = args.format or (implied.name if implied is not None else None)
    if named in ("savedmodel", "litert"):
        _import_quietly("tensorflow")
    elif named == "executorch":
        # torchao, which ExecuTorch imports, reports each GPU kernel library it cannot load on a CPU machine.
        _import_quietly("executorch.exir", "executorch.backends.xnnpack.partition.xnnpack_partitioner")
    # Checked before the weights load (seconds to minutes): a wrong path or a missing extra fails at once.
    try:
        format = check_export(args.output, format=args.format, overwrite=args.force, dtype=args.dtype)
    except MissingDependencyError:
        raise  # an environment problem, not a usage error: exit status 1
    except ExportError as exc:  # no format, a missing folder, an existing OUT: the command line needs changing
        raise CommandError(str(exc), status=2) from None
    calibration = None
    if args.dtype == "int8":
        if not args.calibration:
            raise CommandError(
                "--dtype int8 needs --calibration PATH (image files, folders or @lists; 32-128 typical of your "
                "task): their activation ranges fix the quantization",
                status=2,
            )
        calibration = calibration_paths(args.calibration)
    elif args.calibration:
        raise CommandError("--calibration calibrates --dtype int8; this export is float32", status=2)
    module = load_module(args.weights, quiet=args.quiet, engine="plain")  # only its network is exported
    try:
        result = export(
            module,
            args.output,
            format=format,
            dynamic_size=args.dynamic_size,
            overwrite=args.force,
            verify=not args.no_verify,
            dtype=args.dtype,
            calibration=calibration,
        )
    except OSError as exc:
        raise os_failure(exc, f"{args.output}: cannot write") from None
    if not args.quiet:
        checked = ", ".join(f"{name} {error:.1e}" for name, error in result.errors.items())
        check = f"; max relative error vs irv2: {checked}" if checked else "; not verified"
        if result.dtype == "int8":
            images = len(calibration or [])
            check = f"; int8 against irv2's float32 on {images} calibration images: max relative error {checked}"
            if result.top1_agreement is not None:
                check += f", top-1 agreement {result.top1_agreement:.1%}"
        classes = f"{module.num_classes} classes" if module.num_classes else "features only"
        kind = format if result.dtype == "float32" else f"{format} {result.dtype}"
        print(f"irv2: wrote {result.path} ({kind}, {classes}){check}", file=sys.stderr)
    print(result.path)
    return 0


def _import_quietly(*modules: str) -> None:
    """Import an exporter's runtime with its start-up notes kept off the user's stderr.

    TensorFlow 2.21 writes absl and oneDNN notes straight to file descriptor 2 while it is imported, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says, and ExecuTorch's torchao prints a line per GPU library it cannot load, so for
    the import only, descriptor 2 points at /dev/null. The CLI owns its process. A failed import is not
    reported here: ``check_export`` names the extra to install.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later C++ notes (graph optimisation, threads)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            for module in modules:
                with contextlib.suppress(ImportError):
                    importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
