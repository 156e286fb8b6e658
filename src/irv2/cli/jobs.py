"""``--output OUT.parquet`` (or a folder) for ``irv2 classify`` and ``irv2 features``: a resumable batch job.

The command line side of :class:`irv2.batch.runner.BatchJob`: the job's options, the progress bar with its
ETA, and the summary at the end. See docs/batch.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..batch import Input
from ..batch.runner import DEFAULT_CHUNK_SIZE, BatchJob, JobResult
from ..batch.sharding import Rank, rank_device, rank_from_environment
from ..progress import ProgressBar
from .common import CommandError, check_endpoint, load_module, positive_int, require_classifier, speed_options

PARQUET_SUFFIX = ".parquet"


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """--chunk-size and --overwrite, which only Parquet output takes."""
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"with Parquet output: images per committed part; a rerun of an interrupted job redoes at most "
        f"the parts in flight (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with Parquet output: discard what OUT holds (another command's work or output) and start again",
    )


def is_parquet_output(path: str) -> bool:
    """True when ``--output`` asks for Parquet: a ``.parquet`` name, an existing folder, a name ending in a
    slash, or a name without a suffix (a new folder)."""
    if path.lower().endswith(PARQUET_SUFFIX) or os.path.isdir(path) or path.endswith(("/", os.sep)):
        return True
    return not os.path.splitext(os.path.basename(path))[1]


def run_parquet_job(args: argparse.Namespace, kind: str, inputs: Sequence[Input]) -> int:
    """Run the ``classify`` or ``features`` job of ``args`` into ``args.output``; returns the exit status."""
    output = args.output
    parent = os.path.dirname(os.path.abspath(output.rstrip("/" + os.sep)))
    if not os.path.isdir(parent):
        raise CommandError(f"--output {output}: folder {parent} does not exist", status=2)
    rank = rank_from_environment()
    # Progress and notes from one process only: several bars on one terminal would overwrite each other.
    quiet = args.quiet or rank.rank != 0
    # The weights first: the job's identity includes their content, engine, precision and preprocessing.
    module = load_module(args.weights, device=rank_device(args.device, rank), quiet=quiet, **speed_options(args))
    if kind == "classify":
        require_classifier(module, args.weights)
    check_endpoint(module, getattr(args, "endpoint", None))
    job = BatchJob(
        kind,
        inputs,
        output,
        module,
        draft=not args.exact_decode,
        top_k=getattr(args, "top", 5),
        endpoint=getattr(args, "endpoint", None),
        chunk_size=args.chunk_size,
        rank=rank,
        weights=_weights_label(args.weights),
    )
    summary = None if args.overwrite else job.finished()
    if summary is not None:
        if not quiet:
            print(f"irv2: {output} is already complete ({_rows(summary)}); nothing to do", file=sys.stderr)
        return 1 if summary.get("failed") else 0
    job.prepare(overwrite=args.overwrite)
    bar: list[ProgressBar] = []

    def on_start(share: int, skipped: int) -> None:
        if skipped and not quiet:
            print(f"irv2: resuming {output}: {skipped} of {share} images already done", file=sys.stderr)
        bar.append(ProgressBar(share, desc=kind, quiet=quiet, initial=skipped))

    try:
        result = job.run(
            batch_size=args.batch_size,
            workers=args.workers,
            on_start=on_start,
            on_batch=lambda count, failed: bar[0].update(count, failed=failed),
        )
    finally:
        if bar:
            bar[0].close()
    if not args.quiet:
        print(summary_text(result, kind, rank), file=sys.stderr)
    if result.summary is None:
        return 0  # the process that merges reports the whole job's status
    return 1 if result.summary.get("failed") else 0


def summary_text(result: JobResult, kind: str, rank: Rank) -> str:
    """What one run did and where the output stands, for stderr."""
    verb = "classified" if kind == "classify" else "embedded"
    who = f"irv2: rank {rank.rank} of {rank.world_size}:" if rank.distributed else "irv2:"
    rate = f" ({result.processed / result.seconds:.1f} images/s)" if result.seconds > 0 and result.processed else ""
    took = ProgressBar.format_interval(result.seconds)
    lines = [f"{who} {verb} {result.processed} images in {took}{rate}, {result.failed} failed"]
    if result.skipped:
        lines[0] += f"; {result.skipped} were already done"
    if result.summary is not None:
        lines.append(f"irv2: wrote {result.output}: {_rows(result.summary)}")
    else:
        lines.append(f"{who} my parts are committed; the last process to finish writes {result.output}")
    return "\n".join(lines)


def _rows(summary: dict[str, Any]) -> str:
    return f"{summary.get('rows', 0)} rows, {summary.get('failed', 0)} with an error"


def _weights_label(handle: str | None) -> str:
    """The weights as the manifest shows them to people (the job's identity follows their content)."""
    if handle is None:
        return "default"
    return os.path.abspath(handle) if os.path.exists(handle) else handle
