"""What the commands share: loading the weights, and the arguments that choose how to run them.

``--dtype`` and ``--engine`` take their names and help from ``irv2.engine`` (its ``PRECISIONS`` and
``ENGINES`` table), so every command speaks the same vocabulary as ``irv2.load``.
"""

from __future__ import annotations

import argparse
import re
import sys

from ..api import Module, load
from ..batch.stream import endpoint_of
from ..engine import ENGINES, PRECISIONS, engine_names
from ..engine.catalog import ALIASES as ENGINE_ALIASES
from ..engine.catalog import AUTO, ENGINE_VARIABLE
from ..engine.precision import SUMMARIES, dtype_name
from ..errors import CommandError, DiskFullError, Irv2Error, OptionError
from ..process_settings import flush_denormals

__all__ = ["CommandError"]  # re-exported: the subcommands raise it from here


def os_failure(error: OSError, what: str) -> Irv2Error:
    """What to report for ``error``: a full disk's DiskFullError as it is (it says what was kept and how to resume),
    any other ``OSError`` as the CommandError ``WHAT (its reason)``. Raise the result ``from None``."""
    if isinstance(error, DiskFullError):
        return error
    return CommandError(f"{what} ({error.strerror or error})")


def warn(message: str) -> None:
    """A warning for the user on stderr (never stdout, which holds only results)."""
    print(f"irv2: warning: {message}", file=sys.stderr, flush=True)


def load_module(
    handle: str | None,
    *,
    device: str | None = None,
    quiet: bool = False,
    dtype: str | None = None,
    engine: str | None = None,
    calibration: list[str] | None = None,
) -> Module:
    """``irv2.load(handle, device=device, dtype=dtype, engine=engine, ...)``; no handle means irv2's default
    weights (fetched once, cached). ``calibration`` is PATH arguments (files, folders, @lists) naming the
    images that calibrate int8.

    Irv2Error (unreadable weights, unknown handle, failed download) passes through for ``main`` to report;
    a device or precision that cannot take the model becomes a CommandError. ``quiet`` hides the download
    progress bar.
    """
    if device is not None:
        _check_device(device)
    flush_denormals()
    images = calibration_paths(calibration) if calibration else None
    try:
        module = load(
            handle,
            device=device,
            dtype=dtype,
            engine=engine,
            calibration=images,
            progress=False if quiet else None,
        )
        flush_denormals()  # torch may have come with the weights
        return module
    except ValueError as exc:  # a precision the device or engine cannot run
        options = f"--dtype {dtype}" + (f" --engine {engine}" if engine else "")
        message = str(exc).removeprefix(f"dtype {dtype}: ")  # the option is named once
        raise CommandError(f"{options}: {message}", status=2) from None
    except RuntimeError as exc:  # torch could not move the model to the device (out of memory, driver)
        raise CommandError(f"cannot load the weights onto {device}: {exc}") from None
    except OSError as exc:
        # A download or an engine build may meet a full disk: that error says what was kept and how to resume.
        raise os_failure(exc, f"{handle}: cannot read the weights") from None


def require_classifier(module: Module, weights: str | None) -> None:
    """CommandError for a feature-vector module (no classifier), pointing to ``irv2 features``."""
    if not module.num_classes:
        raise CommandError(
            f"{weights or 'the default weights'}: a feature-vector module without a classifier cannot "
            "classify; use `irv2 features` for its 1536-d features"
        )


def check_endpoint(module: Module, endpoint: str | None) -> None:
    """A usage error (status 2) naming the end points there are, for an ``--endpoint`` the module lacks."""
    if endpoint is None:
        return
    try:
        endpoint_of(module, endpoint)
    except OptionError:
        raise CommandError(
            f"--endpoint {endpoint}: no such end point; this module has {', '.join(module.endpoint_names)}", status=2
        ) from None


def speed_options(args: argparse.Namespace) -> dict:
    """The ``load_module`` keywords that ``add_speed_arguments`` parsed."""
    engine = args.engine
    if getattr(args, "compile", False):
        warn("--compile is now --engine compiled")
        if engine not in (None, "compiled"):
            raise CommandError(f"--compile means --engine compiled, which contradicts --engine {engine}", status=2)
        engine = "compiled"
    return {"dtype": args.dtype, "engine": engine, "calibration": args.calibration}


def calibration_paths(arguments: list[str]) -> list[str]:
    """--calibration's PATH arguments (files, folders, @lists) as image paths, or a usage error."""
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
    if device.split(":")[0] == "cpu":
        return
    import torch

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
    if not _DEVICE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:1, mps)")
    return text.strip()


# What torch.device accepts, checked without importing torch: a device type, optionally with an index.
_DEVICE = re.compile(r"(cpu|cuda|mps|xpu|xla|hpu|ipu|mtia|privateuseone|meta)(:\d+)?")


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
        "decode them at 1/2-1/8 scale first, still at least 342 px, then crop and resize exactly; much faster "
        "on 6 MP photos, a slightly smoother image)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings or summary on stderr")


def dtype_argument(text: str) -> str:
    """argparse type: a precision of ``irv2.engine.PRECISIONS`` or an alias (``bf16``)."""
    try:
        return dtype_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def engine_argument(text: str) -> str:
    """argparse type: an engine of ``irv2.engine.ENGINES``, an alias (``fused``), or ``auto``."""
    name = ENGINE_ALIASES.get(text.lower(), text.lower())
    if name not in ENGINES and name != AUTO:
        raise argparse.ArgumentTypeError(f"unknown engine {text!r}; use one of {', '.join(engine_names())} or auto")
    return name


def dtype_help(first: str) -> str:
    """``--dtype``'s help: each precision and what it is for, ``first`` being what happens by default."""
    return f"precision: {first}. " + "; ".join(f"{name}: {SUMMARIES[name]}" for name in PRECISIONS)


def engine_help(first: str) -> str:
    """``--engine``'s help: each engine and what it is, ``first`` being what happens by default."""
    engines = "; ".join(f"{spec.name}: {spec.summary}" for spec in ENGINES.values())
    return f"what runs the network: {first}. {engines}; auto: the fastest of these installed for the device and dtype"


def add_calibration_argument(parser: argparse.ArgumentParser) -> None:
    """--calibration PATH..., the images that calibrate --dtype int8, as every command that makes int8 takes it."""
    parser.add_argument(
        "--calibration",
        action="append",
        metavar="PATH",
        help="images that calibrate --dtype int8 (a file, folder or @list; repeatable): 32-128 typical of your task",
    )


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """--dtype, --engine and --calibration, as every command that runs the network takes them."""
    parser.add_argument(
        "--dtype",
        type=dtype_argument,
        default="float32",
        metavar="DTYPE",
        help=dtype_help("float32 by default").replace("%", "%%"),
    )
    parser.add_argument(
        "--engine",
        type=engine_argument,
        metavar="ENGINE",
        help=engine_help(
            f"by default ${ENGINE_VARIABLE}, else auto: the fastest installed (irv2 info --engines)"
        ).replace("%", "%%"),
    )
    add_calibration_argument(parser)
    # Before --engine compiled there was --compile; scripts that pass it keep working, with a warning.
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
