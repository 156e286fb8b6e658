"""``irv2 serve``: serve the model over HTTP (TF Serving REST, Open Inference Protocol v2, a web page)."""

from __future__ import annotations

import argparse
import re

from ..extras import require_extra
from .common import CommandError, add_speed_arguments, device_name, load_module, positive_int, speed_options

DESCRIPTION = """\
Serve Inception-ResNet-v2 over HTTP until SIGTERM or Ctrl-C, then finish the requests in flight and exit 0.

  POST /v1/models/NAME:predict       TF Serving REST: {"instances": [{"b64": "<image file>"} | [299][299][3]]}
  POST /v2/models/NAME/infer         Open Inference Protocol v2 (KServe, Triton; binary data extension)
  GET  /v2/health/live, /v2/health/ready, /v1/models/NAME, /v2/models/NAME, .../metadata, .../config
  GET  /metrics                      Prometheus metrics
  GET  /                             a web page: drop an image, see the top 5

Logs go to stderr as JSON lines (one per request, plus "listening", "shutdown" and errors).
Needs the serve extra: pip install 'irv2[serve]'. See docs/deploy.md for KServe, systemd and tuning."""

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``serve`` on the ``irv2`` command's subparsers."""
    from ..serve.config import ServeConfig  # no aiohttp: the defaults are plain data

    defaults = ServeConfig()
    parser = subparsers.add_parser(
        "serve",
        help="serve the model over HTTP (TF Serving REST, KServe/Triton v2, a web page)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-w", "--weights", metavar="HANDLE", help="weights to serve, as `irv2 classify --weights` (default: TF-Hub's)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s; 0.0.0.0: all)")
    parser.add_argument("--port", type=_port, default=8501, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument("--model-name", default=defaults.model_name, metavar="NAME", help="name in the URLs (irv2)")
    parser.add_argument("--device", type=device_name, metavar="DEV", help="torch device: cpu (default), cuda, mps")
    add_speed_arguments(parser)
    tuning = parser.add_argument_group("batching and workers")
    tuning.add_argument(
        "--max-batch-size", type=positive_int, default=defaults.max_batch_size, metavar="N", help="images per pass (8)"
    )
    tuning.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        metavar="MS",
        help="how long a batch waits to fill up (default %(default)s)",
    )
    tuning.add_argument(
        "--queue-size",
        type=positive_int,
        default=defaults.queue_size,
        metavar="N",
        help="images admitted and waiting; more get 503 + Retry-After (default %(default)s)",
    )
    tuning.add_argument(
        "--workers", type=positive_int, default=defaults.workers, metavar="N", help="inference threads (default 1)"
    )
    tuning.add_argument(
        "--threads-per-worker", type=positive_int, metavar="N", help="torch threads per worker (default: cores/workers)"
    )
    tuning.add_argument(
        "--decode-threads", type=positive_int, default=defaults.decode_threads, metavar="N", help="image decoding (2)"
    )
    tuning.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several processes share the port")
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-request-bytes",
        type=_size,
        default=defaults.max_request_bytes,
        metavar="SIZE",
        help="largest body, e.g. 64M (default 64M); 413 beyond",
    )
    limits.add_argument(
        "--max-instances",
        type=positive_int,
        default=defaults.max_instances,
        metavar="N",
        help="images per request (64)",
    )
    limits.add_argument(
        "--max-image-pixels",
        type=positive_int,
        default=defaults.max_image_pixels,
        metavar="N",
        help="largest image, width x height, checked before decoding (default %(default)s)",
    )
    limits.add_argument(
        "--timeout", type=float, default=defaults.timeout, metavar="S", help="seconds per request; 504 beyond (60)"
    )
    limits.add_argument(
        "--retry-after", type=positive_int, default=defaults.retry_after, metavar="S", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--top-k", type=positive_int, default=defaults.default_top_k, metavar="K", help="classes in v2 `labels` (5)"
    )
    parser.add_argument("--log-format", choices=("json", "text"), default="json", help="stderr logs (default json)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    require_extra("serve", "irv2's server")
    from ..serve import ServeConfig, serve

    try:
        config = ServeConfig(
            model_name=args.model_name,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            queue_size=args.queue_size,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            decode_threads=args.decode_threads,
            max_request_bytes=args.max_request_bytes,
            max_instances=args.max_instances,
            max_image_pixels=args.max_image_pixels,
            timeout=args.timeout,
            retry_after=args.retry_after,
            default_top_k=args.top_k,
        )
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from None
    module = load_module(args.weights, device=args.device, **speed_options(args))
    try:
        serve(
            module,
            host=args.host,
            port=args.port,
            config=config,
            log_format=args.log_format,
            reuse_port=args.reuse_port,
        )
    except OSError as exc:  # the port is taken, the address is not ours, ...
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def _size(text: str) -> int:
    """``1048576``, ``512K``, ``64M`` or ``1G`` (binary units) → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size such as 1048576, 512K or 64M, got {text!r}")
    value = int(float(match[1]) * _SIZE_UNITS[match[2].upper()])
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value
