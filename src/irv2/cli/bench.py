"""``irv2 bench``: measure latency, throughput, load time and cold start on this machine."""

from __future__ import annotations

import argparse
import json
import sys

from ..process_settings import flush_denormals
from .common import CommandError, device_name, dtype_argument, dtype_help, engine_argument, engine_help

DESCRIPTION = """\
Measure irv2 on this machine: load time, cold start (a new process to its first prediction), batch-1
latency and throughput for each precision, engine and batch size, peak memory, and with --images the
end-to-end throughput on a folder of photos (decoding included) against the network alone.

Without --weights it measures the default weights (fetched once); --random measures an untrained network of
the same shape, which runs at the same speed, without any download."""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be at least 1, got {text!r}")
    return values


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="measure latency, throughput, load time and cold start here",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-w", "--weights", metavar="HANDLE", help="weights to measure (default: the default weights)")
    source.add_argument("--random", action="store_true", help="an untrained network: no download needed")
    parser.add_argument("--device", type=device_name, default="cpu", metavar="DEV", help="cpu (default), cuda, ...")
    parser.add_argument(
        "--dtype",
        action="append",
        type=dtype_argument,
        metavar="DTYPE",
        help=dtype_help("repeat for several; by default float32 and what the device runs natively"),
    )
    parser.add_argument(
        "--engine",
        action="append",
        type=engine_argument,
        metavar="ENGINE",
        help=engine_help("repeat for several; by default the one irv2.load picks here (irv2 info --engines)"),
    )
    parser.add_argument(
        "-b", "--batch-sizes", type=_int_list, metavar="N,N", help="batch sizes (default 1,8,16; CUDA 1,64,256)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement (default 3)")
    parser.add_argument("--images", metavar="DIR", help="also measure end to end on the photos in DIR")
    parser.add_argument("--limit", type=int, default=64, metavar="N", help="photos used from --images (default 64)")
    parser.add_argument("--workers", type=int, metavar="N", help="decoding threads for --images (default: cores)")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start measurement")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch

    from ..bench import BenchConfig, default_dtypes, format_report, run_bench
    from ..engine import default_engine, resolve_precision

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {args.device}: CUDA is not available here")
    dtypes = args.dtype or default_dtypes(device)
    for dtype in dtypes:
        try:
            resolve_precision(dtype, device)
        except ValueError as exc:
            raise CommandError(f"--dtype {dtype}: {exc}", status=2) from None
    if args.seconds <= 0:
        raise CommandError("--seconds must be positive", status=2)
    flush_denormals()  # as classify does: random weights would otherwise hit subnormal slow paths
    config = BenchConfig(
        weights=args.weights,
        random_weights=args.random,
        device=args.device,
        dtypes=dtypes,
        engines=args.engine or [default_engine()],
        batch_sizes=args.batch_sizes or ([1, 64, 256] if device.type == "cuda" else [1, 8, 16]),
        min_seconds=args.seconds,
        images=args.images,
        image_limit=args.limit,
        workers=args.workers,
        cold_start=not args.no_cold_start,
        log=(lambda message: None) if args.json else (lambda message: print(f"irv2: {message}", file=sys.stderr)),
    )
    try:
        report = run_bench(config)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except RuntimeError as exc:
        raise CommandError(f"benchmark failed: {exc}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0
