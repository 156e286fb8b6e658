"""``irv2 classify PATH...``: top-k ImageNet predictions for each image, as text, JSON Lines or CSV."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import CLASSIFICATION, Module, top_k
from ..batch import Decoded, decode_batches, expand_inputs, run_module, stack_images
from .common import CommandError, add_image_arguments, load_module, positive_int, speed_options, warn
from .jobs import add_job_arguments, is_parquet_output, run_parquet_job
from .output import FORMATS, Result, make_writer
from .progress import Progress

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
    if not module.num_classes:
        raise CommandError(
            f"{args.weights or 'the default weights'}: a feature-vector module without a classifier cannot "
            "classify; use `irv2 features` for its 1536-d features"
        )
    # A custom head without labels still has class indices: show those.
    labels = module.labels or [str(i) for i in range(module.num_classes)]
    writer = make_writer(args.format, sys.stdout)
    failed = 0
    with Progress(len(inputs), quiet=args.quiet) as progress:
        for batch in decode_batches(inputs, args.batch_size, workers=args.workers, draft=not args.exact_decode):
            results = classify_batch(module, batch, args.top, labels)
            progress.clear()
            for result in results:
                writer.write(result)
                failed += result.error is not None
            writer.flush()
            progress.update(len(batch))
    if failed and not args.quiet:
        warn(f"{failed} of {len(inputs)} images could not be classified")
    return 1 if failed else 0


def classify_batch(module: Module, batch: Sequence[Decoded], k: int, labels: Sequence[str]) -> list[Result]:
    """One :class:`Result` per item of ``batch``, in order: top-``k`` predictions, or the decoding error."""
    images = stack_images(batch, pin_memory=module.device.type == "cuda")
    logits = run_module(module, images, CLASSIFICATION) if images is not None else None
    predictions = iter(top_k(logits, k, labels) if logits is not None else ())
    return [
        Result(d.input.path, error=d.error) if d.image is None else Result(d.input.path, next(predictions))
        for d in batch
    ]
