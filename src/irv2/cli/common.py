"""What ``classify`` and ``features`` share: loading the weights, and decoding inputs batch by batch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import Irv2Error, Module, load, load_image
from .inputs import Input

# What one unreadable image may raise besides ImageError (which covers decoding): a file system error, an
# array that does not fit the module, or an image too big for the memory left. None of them may stop the
# other images.
_IMAGE_ERRORS = (Irv2Error, OSError, ValueError, MemoryError)


class CommandError(Exception):
    """A failure to report as ``irv2: error: <message>`` on stderr, without a traceback, exiting ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def warn(message: str) -> None:
    """A warning for the user on stderr (never stdout, which holds only results)."""
    print(f"irv2: warning: {message}", file=sys.stderr, flush=True)


def load_module(handle: str | None, *, device: str | None = None, quiet: bool = False) -> Module:
    """``irv2.load(handle, device=device)``; no handle means irv2's default weights (fetched once, cached).

    Irv2Error (unreadable weights, unknown handle, failed download) passes through for ``main`` to report;
    a device that cannot take the model becomes a CommandError. ``quiet`` hides the download progress bar.
    """
    if device is not None:
        _check_device(device)
    # Subnormal floats make CPU convolutions many times slower (measured 5-50x with random weights whose
    # activations fade); TensorFlow flushes them to zero on CPU too. The CLI owns its process, so set it here.
    torch.set_flush_denormal(True)
    try:
        return load(handle, device=device, progress=False if quiet else None)
    except RuntimeError as exc:  # torch could not move the model to the device (out of memory, driver)
        raise CommandError(f"cannot load the weights onto {device}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"{handle}: cannot read the weights ({exc.strerror or exc})") from None


@dataclass
class Decoded:
    """An input after decoding: the image ``[299, 299, 3]`` float32 in [0, 1], or why there is none."""

    input: Input
    image: np.ndarray | None
    error: str | None


def decode_batches(inputs: Sequence[Input], batch_size: int) -> Iterator[list[Decoded]]:
    """Decode ``inputs`` ``batch_size`` at a time, in order.

    Only one batch of preprocessed images is alive at a time, and each full-size photo is released as soon
    as it is cropped and resized, so memory stays bounded by the largest photo, not by the number of files.
    """
    for start in range(0, len(inputs), batch_size):
        yield [_decode(item) for item in inputs[start : start + batch_size]]


def stack_images(batch: Sequence[Decoded]) -> np.ndarray | None:
    """The decoded images of ``batch`` as ``[B, 299, 299, 3]``, or None when none decoded."""
    images = [d.image for d in batch if d.image is not None]
    return np.stack(images) if images else None


def _decode(item: Input) -> Decoded:
    if item.error is not None:
        return Decoded(item, None, item.error)
    try:
        return Decoded(item, load_image(item.path), None)
    except _IMAGE_ERRORS as exc:
        return Decoded(item, None, error_text(item.path, exc))


def error_text(path: str, exc: BaseException) -> str:
    """The message of ``exc`` without the leading ``"<path>: "`` irv2 puts there (the row names the path)."""
    if isinstance(exc, MemoryError):
        return "not enough memory to decode this image"
    message = str(exc) or type(exc).__name__
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _check_device(device: str) -> None:
    kind = torch.device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {device}: CUDA is not available in this PyTorch installation or machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise CommandError(f"--device {device}: Apple MPS is not available here")


# -- arguments shared by the subcommands that read images ------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
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
        "glob patterns, or - to read one path per line from stdin",
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings or summary on stderr")
