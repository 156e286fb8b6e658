"""``irv2 evaluate --data PATH``: accuracy, calibration and speed on labelled images; a thin layer over
``irv2.evaluate``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..batch.runner import DEFAULT_CHUNK_SIZE
from ..errors import CommandError, OptionError
from ..evaluate import LAYOUTS, METRICS_FILE, REPORT_FILE, evaluate
from ..evaluate.datasets import SET_NAMES
from .common import (
    add_calibration_argument,
    calibration_paths,
    device_name,
    dtype_argument,
    dtype_help,
    engine_argument,
    engine_help,
    flush_denormals,
    non_negative_int,
    positive_int,
    warn,
)

DESCRIPTION = """\
Score weights on labelled images: top-1 and top-5 (over every output, "background" included, as TF-Slim
counts them), accuracy per class and the worst classes, calibration (ECE, a reliability diagram) and images
per second. Unreadable images are counted and listed as errors and left out of every score.

DATA, one of:
  a folder with one subfolder per class: ImageNet's val/n01440764/*.JPEG (synsets; ImageNet-Sketch, -A and
    -R come so), or a fine-tuned module's own classes, as `irv2 finetune` reads them. Class folders that
    are a part of ImageNet's 1000 (ImageNet-A and -R have 200) are scored over their classes' outputs, as
    those sets' protocol has it; metrics.json has the scores over every output too
  ImageNet-V2's class folders 0 ... 999 (folder i is the i-th synset in sorted order), found for weights
    with ImageNet's classes, or asked for with --layout imagenet-v2
  a CSV of path,label rows, as `irv2 finetune` reads it
  a flat folder of the validation images (ILSVRC2012_val_00000001.JPEG ...) with Kaggle's
    LOC_val_solution.csv, or with the devkit's ILSVRC2012_validation_ground_truth.txt (its class IDs are
    mapped with the devkit's order, which irv2 ships; a data/meta.mat or --synsets file must agree), found
    beside the folder or up to 4 folders above it, or given with --labels; or with ReaL's real.json
    (--real-labels: a prediction is right when it is in the image's set)

Labels are matched with the weights' classes through synsets, so 1001-class heads (TF-Hub, TF-Slim) and
1000-class ones (Keras, timm) score the same labels correctly; a fine-tuned module by its class names.

Repeat --dtype or --engine to compare configurations in one pass (every dtype with every engine): each image
is decoded once and run through each; the first is the reference, and the others report their agreement
with it (top-1 and mean KL divergence) besides their own scores.

stdout gets the summary table. With --out DIR: DIR/metrics.json, DIR/report.html (one self-contained page)
and DIR/predictions/ (committed every --chunk-size images: rerun the same command after an interruption to
continue). See docs/evaluate.md.

exit status: 0 every image was read; 1 any image could not be read (the scores leave it out), or the data,
labels or weights could not be used; 2 a usage error."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, calibration and speed on labelled images (ImageNet layouts or your own)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, metavar="PATH", help="a folder or CSV of labelled images")
    parser.add_argument(
        "--labels", metavar="FILE", help="Kaggle's LOC_val_solution.csv or the devkit's ground truth, for a flat folder"
    )
    parser.add_argument(
        "--synsets",
        metavar="FILE",
        help="the devkit's class IDs as synsets, one per line in ID order (checked against the devkit's order)",
    )
    parser.add_argument(
        "--real-labels",
        metavar="FILE",
        help="ReaL's real.json: the validation images of --data scored against ReaL's sets of labels",
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        help="insist on this layout of --data (default: found); imagenet-v2 reads folders 0-999 as ImageNet-V2's",
    )
    parser.add_argument(
        "-w",
        "--weights",
        metavar="HANDLE",
        help="weights to score, anything `irv2 classify --weights` takes (default: TF-Hub's classification/1)",
    )
    parser.add_argument(
        "--dtype",
        action="append",
        type=dtype_argument,
        metavar="DTYPE",
        help=dtype_help("float32 by default; repeat to compare").replace("%", "%%"),
    )
    parser.add_argument(
        "--engine",
        action="append",
        type=engine_argument,
        metavar="ENGINE",
        help=engine_help("irv2.load's default; repeat to compare").replace("%", "%%"),
    )
    add_calibration_argument(parser)
    parser.add_argument("-o", "--out", metavar="DIR", help="folder for metrics.json, report.html and predictions/")
    parser.add_argument(
        "-b", "--batch-size", type=positive_int, default=8, metavar="N", help="images per forward pass (default 8)"
    )
    parser.add_argument("--device", type=device_name, metavar="DEV", help="torch device to run on: cpu, cuda, ...")
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        metavar="N",
        help="threads decoding images while the network runs (default: one per core, at most 8)",
    )
    parser.add_argument(
        "--exact-decode",
        action="store_true",
        help="decode large JPEGs at full size, TF-Slim's preprocessing bit for bit (as `irv2 classify --exact-decode`)",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"with --out: images per committed part (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --out: discard the predictions of an evaluation with other settings",
    )
    parser.add_argument(
        "--worst", type=non_negative_int, default=10, metavar="N", help="worst classes to list (default 10)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, notes or warnings on stderr")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    # Subnormal floats make CPU convolutions many times slower; the CLI owns its process (as classify does).
    flush_denormals()
    calibration = calibration_paths(args.calibration) if args.calibration else None
    try:
        metrics = evaluate(
            args.weights,
            args.data,
            labels=args.labels,
            synsets=args.synsets,
            real_labels=args.real_labels,
            layout=args.layout,
            dtypes=args.dtype,
            engines=args.engine,
            calibration=calibration,
            device=args.device,
            out=args.out,
            batch_size=args.batch_size,
            workers=args.workers,
            draft=not args.exact_decode,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
            worst=args.worst,
            quiet=args.quiet,
        )
    except OptionError as exc:
        raise CommandError(str(exc), status=2) from None
    print(summary_table(metrics), flush=True)
    if not args.quiet:
        for skipped in metrics["skipped"]:
            warn(f"not run: {skipped['dtype']} on {skipped['engine']} ({skipped['reason']})")
        if metrics["errors"]:
            warn(f"{metrics['errors']} of {metrics['inputs']} images could not be read; the scores leave them out")
        if args.out is not None:
            print(f"irv2: wrote {args.out}/{METRICS_FILE} and {args.out}/{REPORT_FILE}", file=sys.stderr)
    return 1 if metrics["errors"] else 0


def summary_table(metrics: dict[str, Any]) -> str:
    """One line per configuration: images, errors, top-1, top-5, ECE, network images/s, agreement, mean KL."""
    header = ["configuration", "images", "errors", "top-1", "top-5", "ECE", "img/s", "agreement", "mean KL"]
    rows = [header]
    for i, run in enumerate(metrics["runs"]):
        agreement = run["agreement"]
        rows.append(
            [
                run["name"],
                str(run["images"]),
                str(run["errors"]),
                _percent(run["top1"]),
                _percent(run["top5"]),
                _number(run["ece"], 4),
                _number(run["network_images_per_second"], 1),
                "reference" if i == 0 else _percent(agreement["top1"]),
                "-" if i == 0 else _number(agreement["mean_kl"], 5),
            ]
        )
    widths = [max(len(row[j]) for row in rows) for j in range(len(header))]
    lines = [
        "  ".join(_cell(cell, width, j) for j, (cell, width) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    rate = _number(metrics["images_per_second"], 1)
    lines.append(
        f"{metrics['inputs']} images ({metrics['layout']} layout) in {metrics['seconds']:.1f} s: {rate} images/s"
    )
    if metrics["scored_classes"] != metrics["classes"]:
        lines.append(
            f"scored over the {metrics['scored_classes']} classes of the data's folders; over all "
            f"{metrics['classes']} outputs: top-1 {_percent(metrics['top1_all_classes'])}, "
            f"top-5 {_percent(metrics['top5_all_classes'])}"
        )
    if metrics["images_without_labels"]:
        lines.append(f"{metrics['images_without_labels']} images without labels in ReaL, left out")
    lines += published_lines(metrics)
    return "\n".join(line.rstrip() for line in lines)


def published_lines(metrics: dict[str, Any]) -> list[str]:
    """The figures published for these weights on this set, each with its source and preprocessing."""
    published, name = metrics.get("published"), metrics.get("set")
    if not published:
        return []
    if name is None:
        return [
            "published figures for these weights are in metrics.json and report.html (the layout does not say "
            "which set this is)"
        ]
    lines = []
    for publication in published["publications"]:
        figures = publication["sets"].get(name)
        if figures:
            lines.append(
                f"published on {SET_NAMES[name]}: top-1 {figures['top1']:.2f}%, top-5 {figures['top5']:.2f}% "
                f"({publication['source']}; {publication['preprocessing']})"
            )
    return lines


def _cell(text: str, width: int, column: int) -> str:
    return text.ljust(width) if column == 0 else text.rjust(width)  # names to the left, numbers to the right


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
