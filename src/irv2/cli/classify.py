"""``irv2 classify PATH...``: top-k ImageNet predictions for each image, as text, JSON Lines or CSV."""

from __future__ import annotations

import argparse
import sys

from ..batch import classify_inputs, expand_inputs
from ..progress import ProgressBar
from .common import (
    CommandError,
    add_image_arguments,
    load_module,
    positive_int,
    require_classifier,
    speed_options,
    warn,
)
from .jobs import add_job_arguments, is_parquet_output, run_parquet_job
from .output import FORMATS, make_writer

DESCRIPTION = """\
Classify images with Inception-ResNet-v2: for each one, the top-K classes with their softmax probabilities.
Results go to stdout in input order (folders sorted); progress, warnings and errors go to stderr. An image
that cannot be read is an error row in its place and never stops the others.

With --output OUT.parquet (or a folder) the rows go to Parquet instead, as a resumable job: columns path,
label, index, score (top-1), top_k (list of label, index, score) and error; committed every --chunk-size
images, continued by rerunning the same command, shared out under torchrun. See docs/batch.md.

exit status: 0 every image was classified; 1 any image failed, or the weights could not be loaded;
2 a usage error, or no input images were found."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "classify",
        help="top-k ImageNet predictions for images",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_arguments(parser)
    parser.add_argument(
        "-k", "--top", type=positive_int, default=5, metavar="K", help="predictions per image (default 5)"
    )
    parser.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        default="text",
        help="text (for people, the default), json (one object per line) or csv",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.parquet",
        help="write Parquet instead of stdout: OUT.parquet (one file) or a folder of parts; resumable",
    )
    add_job_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.output is not None and not is_parquet_output(args.output):
        raise CommandError(
            f"--output {args.output}: expected OUT.parquet or a folder (for text, json or csv, redirect stdout)",
            status=2,
        )
    inputs = expand_inputs(args.paths, sys.stdin, warn=None if args.quiet else warn)
    if not inputs:
        raise CommandError("no input images found", status=2)
    if args.output is not None:
        return run_parquet_job(args, "classify", inputs)
    module = load_module(args.weights, device=args.device, quiet=args.quiet, **speed_options(args))
    require_classifier(module, args.weights)
    writer = make_writer(args.format, sys.stdout)
    failed = 0
    with ProgressBar(len(inputs), desc="classify", quiet=args.quiet) as progress:
        for results in classify_inputs(
            module, inputs, k=args.top, batch_size=args.batch_size, workers=args.workers, draft=not args.exact_decode
        ):
            progress.clear()
            bad = 0
            for result in results:
                writer.write(result)
                bad += result.error is not None
            writer.flush()
            failed += bad
            progress.update(len(results), failed=bad)
    if failed and not args.quiet:
        warn(f"{failed} of {len(inputs)} images could not be classified")
    return 1 if failed else 0
