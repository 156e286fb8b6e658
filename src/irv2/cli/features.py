"""``irv2 features PATH... -o OUT.npz``: the 1536-d TF-Hub feature vector of each image, saved as .npz.

The archive holds four arrays, readable with ``numpy.load(path)`` (no pickle needed):

* ``paths``: unicode ``[N]``, the images that succeeded, in input order;
* ``features``: float32 ``[N, 1536]``, their ``image_feature_vector`` (global average of ``Conv2d_7b_1x1``);
* ``failed_paths``: unicode ``[M]``, the images that could not be read;
* ``errors``: unicode ``[M]``, why, one message per failed path.

``-o OUT.parquet`` or a folder writes Parquet instead, as a resumable job (:mod:`irv2.cli.jobs`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

import numpy as np

from .. import FEATURE_VECTOR
from ..batch import decode_batches, expand_inputs, run_module, stack_images
from ..model import NUM_FEATURES
from .common import CommandError, add_image_arguments, load_module, speed_options, warn
from .jobs import add_job_arguments, is_parquet_output, run_parquet_job
from .progress import Progress

DESCRIPTION = """\
Compute the 1536-d feature vector (TF-Hub image_feature_vector) of each image and save them as an .npz
archive with arrays paths [N], features float32 [N, 1536], failed_paths [M] and errors [M]. The archive
is written atomically, also when some images fail; failures are reported on stderr.

With -o OUT.parquet (or a folder) the rows go to Parquet, as a resumable job: columns path, features
(1536 float32) and error, one row per input in input order; committed every --chunk-size images,
continued by rerunning the same command, shared out under torchrun. See docs/batch.md.

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
    paths: list[str] = []
    vectors: list[np.ndarray] = []
    failed_paths: list[str] = []
    errors: list[str] = []
    with Progress(len(inputs), quiet=args.quiet) as progress:
        for batch in decode_batches(inputs, args.batch_size, workers=args.workers, draft=not args.exact_decode):
            images = stack_images(batch, pin_memory=module.device.type == "cuda")
            if images is not None:
                vectors.append(run_module(module, images, FEATURE_VECTOR))
            for decoded in batch:
                if decoded.image is not None:
                    paths.append(decoded.input.path)
                else:
                    progress.clear()
                    print(f"irv2: error: {decoded.input.path}: {decoded.error}", file=sys.stderr, flush=True)
                    failed_paths.append(decoded.input.path)
                    errors.append(decoded.error or "")
            progress.update(len(batch))
    features = np.concatenate(vectors) if vectors else np.zeros((0, NUM_FEATURES), np.float32)
    try:
        save_npz_atomic(
            args.output,
            paths=np.array(paths, dtype=str),
            features=features.astype(np.float32, copy=False),
            failed_paths=np.array(failed_paths, dtype=str),
            errors=np.array(errors, dtype=str),
        )
    except OSError as exc:
        raise CommandError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    if not args.quiet:
        failures = f"; {len(failed_paths)} of {len(inputs)} images failed" if failed_paths else ""
        print(f"irv2: wrote {len(paths)} feature vectors to {args.output}{failures}", file=sys.stderr)
    return 1 if failed_paths else 0


def save_npz_atomic(path: str, **arrays: np.ndarray) -> None:
    """``numpy.savez`` to a temporary file beside ``path``, then one rename: readers never see half a file."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
    # os.open rather than tempfile.mkstemp: the archive gets the usual permissions (0666 less the umask).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object, so numpy does not append ".npz" to the name
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
