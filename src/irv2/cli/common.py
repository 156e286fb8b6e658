"""What ``classify`` and ``features`` share: loading the weights and the arguments that choose how to run."""

from __future__ import annotations

import argparse
import sys

import torch

from .. import Module, load
from ..engine import PRECISIONS


class CommandError(Exception):
    """A failure to report as ``irv2: error: <message>`` on stderr, without a traceback, exiting ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def warn(message: str) -> None:
    """A warning for the user on stderr (never stdout, which holds only results)."""
    print(f"irv2: warning: {message}", file=sys.stderr, flush=True)


def load_module(
    handle: str | None,
    *,
    device: str | None = None,
    quiet: bool = False,
    dtype: str | None = None,
    compile: bool = False,
    engine: str | None = None,
    calibration: list[str] | None = None,
) -> Module:
    """``irv2.load(handle, device=device, dtype=dtype, compile=compile, engine=engine, ...)``; no handle means
    irv2's default weights (fetched once, cached). ``calibration`` is PATH arguments (files, folders, @lists)
    naming the images that calibrate int8.

    Irv2Error (unreadable weights, unknown handle, failed download) passes through for ``main`` to report;
    a device or precision that cannot take the model becomes a CommandError. ``quiet`` hides the download
    progress bar.
    """
    if device is not None:
        _check_device(device)
    # Subnormal floats make CPU convolutions many times slower (measured 5-50x with random weights whose
    # activations fade); TensorFlow flushes them to zero on CPU too. The CLI owns its process, so set it here.
    torch.set_flush_denormal(True)
    images = _calibration_paths(calibration) if calibration else None
    try:
        return load(
            handle,
            device=device,
            dtype=dtype,
            compile=compile,
            engine=engine,
            calibration=images,
            progress=False if quiet else None,
        )
    except ValueError as exc:  # a precision the device or engine cannot run
        options = f"--dtype {dtype}" + (f" --engine {engine}" if engine else "")
        raise CommandError(f"{options}: {exc}", status=2) from None
    except RuntimeError as exc:  # torch could not move the model to the device (out of memory, driver)
        raise CommandError(f"cannot load the weights onto {device}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"{handle}: cannot read the weights ({exc.strerror or exc})") from None


def speed_options(args: argparse.Namespace) -> dict:
    """The ``load_module`` keywords that ``add_speed_arguments`` parsed."""
    return {"dtype": args.dtype, "compile": args.compile, "engine": args.engine, "calibration": args.calibration}


def _calibration_paths(arguments: list[str]) -> list[str]:
    from ..batch import expand_inputs

    inputs = expand_inputs(arguments)
    bad = [i for i in inputs if i.error or i.member is not None]
    if bad:
        problem = bad[0].error or "images inside tar shards cannot calibrate; extract a few"
        raise CommandError(f"--calibration {bad[0].path}: {problem}", status=2)
    if not inputs:
        raise CommandError(f"--calibration {' '.join(arguments)}: no images found", status=2)
    return [i.path for i in inputs]


def _check_device(device: str) -> None:
    kind = torch.device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {device}: CUDA is not available in this PyTorch installation or machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise CommandError(f"--device {device}: Apple MPS is not available here")


# -- arguments shared by the subcommands that read images ------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _whole_number(text, minimum=1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _whole_number(text, minimum=0)


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def device_name(text: str) -> str:
    """argparse type: a torch device string such as ``cpu``, ``cuda``, ``cuda:1`` or ``mps``."""
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:1, mps)") from None
    return text


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH..., --weights, --batch-size, --device and --quiet, as ``classify`` and ``features`` take them."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files, folders (searched recursively for jpg/jpeg/png/gif/bmp/webp/tif/tiff), "
        "glob patterns, tar shards in WebDataset layout (SHARD.tar), @LIST to read one path per line from the "
        "file LIST, or - to read them from stdin",
    )
    parser.add_argument(
        "-w",
        "--weights",
        metavar="HANDLE",
        help="weights to load: a local TF-Slim checkpoint, TF-Hub module folder or archive, irv2 module folder, "
        ".safetensors or Keras .h5 file; or a registered handle or URL, fetched once and cached (`irv2 info "
        "HANDLE`). Default: TF-Hub's google/imagenet/inception_resnet_v2/classification/1",
    )
    parser.add_argument(
        "-b", "--batch-size", type=positive_int, default=8, metavar="N", help="images per forward pass (default 8)"
    )
    parser.add_argument(
        "--device", type=device_name, metavar="DEV", help="torch device to run on: cpu, cuda, cuda:1, mps"
    )
    add_speed_arguments(parser)
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        metavar="N",
        help="threads decoding images while the network runs (default: one per core, at most 8; 0: none)",
    )
    parser.add_argument(
        "--exact-decode",
        action="store_true",
        help="decode large JPEGs at full size, reproducing TF-Slim's preprocessing bit for bit (default: "
        "decode them at 1/2-1/8 scale first, still at least 342 px, then crop and resize exactly; ~5x faster "
        "on 6 MP photos, a slightly smoother image)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings or summary on stderr")


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """--dtype and --compile, as every command that runs the network takes them."""
    parser.add_argument(
        "--dtype",
        choices=PRECISIONS,
        default="float32",
        help="precision: float32 (default, exact), tf32 (CUDA), bfloat16 (CPUs with AVX512-BF16/AMX, GPUs; "
        "logits within ~1%% of float32), float16 (GPUs), int8 (CPU, ONNX Runtime; needs --calibration)",
    )
    parser.add_argument(
        "--engine",
        choices=("torch", "torchscript", "onnxruntime"),
        help="torch (default), torchscript (CPU: oneDNN Graph, faster for many images after a few seconds of "
        "compiling) or onnxruntime (CPU float32/int8; exported once and cached; irv2[onnx])",
    )
    parser.add_argument(
        "--calibration",
        action="append",
        metavar="PATH",
        help="images that calibrate --dtype int8 (a file, folder or @list; repeatable): 32-128 typical of your task",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network: minutes to compile on first use (cached on disk), faster after",
    )
