"""``irv2 features PATH... -o OUT.npz``: the 1536-d TF-Hub feature vector of each image, saved as .npz by
``irv2.batch.write_features_npz`` (its docstring lists the arrays). ``-o OUT.parquet`` or a folder writes
Parquet instead, as a resumable job (:mod:`irv2.cli.jobs`)."""

from __future__ import annotations

import argparse
import os
import sys

from ..batch import expand_inputs, write_features_npz
from ..progress import ProgressBar
from .common import (
    CommandError,
    add_image_arguments,
    check_endpoint,
    load_module,
    os_failure,
    speed_options,
    warn,
)
from .jobs import add_job_arguments, is_parquet_output, run_parquet_job

DESCRIPTION = """\
Compute the 1536-d feature vector (TF-Hub image_feature_vector) of each image and save them as an .npz
archive with arrays paths [N], features float32 [N, 1536], failed_paths [M] and errors [M]. The archive
is written atomically, also when some images fail; failures are reported on stderr.

With -o OUT.parquet (or a folder) the rows go to Parquet, as a resumable job: columns path, features
(1536 float32) and error, one row per input in input order; committed every --chunk-size images,
continued by rerunning the same command, shared out under torchrun. See docs/batch.md.

With --endpoint NAME the features are the maps of that TF-Slim end point (Mixed_6a, Conv2d_7b_1x1, ... as
TF-Hub's as_dict=True gives them): the .npz holds features float32 [N, h, w, c] and endpoint, its key;
Parquet holds them as a fixed-shape tensor column.

exit status: 0 every image succeeded; 1 any image failed, or the weights or output could not be
written or loaded; 2 a usage error, or no input images were found."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "features",
        help="1536-d feature vectors of images, saved as .npz or Parquet",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="OUT.npz (one archive), or OUT.parquet / a folder for a resumable Parquet job",
    )
    parser.add_argument(
        "--endpoint",
        metavar="NAME",
        help="write the maps of a TF-Slim end point instead of the feature vector: Mixed_6a, Conv2d_7b_1x1 ... "
        "(or InceptionResnetV2/NAME), NHWC float32, [N, h, w, c] in the .npz, a fixed-shape tensor column in "
        "Parquet",
    )
    add_job_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.output.lower().endswith(".npz"):
        if not is_parquet_output(args.output):
            raise CommandError(f"--output {args.output}: expected OUT.npz, OUT.parquet or a folder", status=2)
        inputs = expand_inputs(args.paths, sys.stdin, warn=None if args.quiet else warn)
        if not inputs:
            raise CommandError("no input images found", status=2)
        return run_parquet_job(args, "features", inputs)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise CommandError(f"--output {args.output}: folder {folder} does not exist", status=2)
    inputs = expand_inputs(args.paths, sys.stdin, warn=None if args.quiet else warn)
    if not inputs:
        raise CommandError("no input images found", status=2)
    module = load_module(args.weights, device=args.device, quiet=args.quiet, **speed_options(args))
    check_endpoint(module, args.endpoint)
    with ProgressBar(len(inputs), desc="features", quiet=args.quiet) as progress:

        def report(path: str, error: str) -> None:
            progress.clear()
            print(f"irv2: error: {path}: {error}", file=sys.stderr, flush=True)

        try:
            summary = write_features_npz(
                module,
                inputs,
                args.output,
                batch_size=args.batch_size,
                workers=args.workers,
                draft=not args.exact_decode,
                endpoint=args.endpoint,
                on_batch=lambda count, failed: progress.update(count, failed=failed),
                on_error=report,
            )
        except OSError as exc:
            raise os_failure(exc, f"{args.output}: cannot write") from None
    if not args.quiet:
        failures = f"; {summary.failed} of {len(inputs)} images failed" if summary.failed else ""
        what = f"{args.endpoint} maps" if args.endpoint else "feature vectors"
        print(f"irv2: wrote {summary.written} {what} to {args.output}{failures}", file=sys.stderr)
    return 1 if summary.failed else 0
