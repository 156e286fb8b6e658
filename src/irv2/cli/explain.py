"""``irv2 explain PATH... -o DIR``: a Grad-CAM overlay (PNG) and raw map (.npy) per image, from
``irv2.explain.gradcam`` and ``irv2.explain.write_overlay_png``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..batch import Input, decode_batches, expand_inputs
from ..engine.catalog import TORCH_ENGINE
from ..errors import OptionError
from ..progress import ProgressBar
from .common import (
    CommandError,
    add_image_arguments,
    load_module,
    os_failure,
    positive_int,
    speed_options,
    warn,
)

DESCRIPTION = """\
Show where the network looks: for each image, the Grad-CAM map of its last convolutional layer
(Conv2d_7b_1x1, 8 x 8 at 299 px) for its top class, or for --target, or for each of its --top K classes.

Writes, for IMAGE.jpg: DIR/IMAGE.png, the image as the module sees it (cropped and resized) with the map
coloured over it (jet: red where the class finds the most evidence) and the class and its probability
beneath; and DIR/IMAGE.npy, the raw map, float32 [8, 8] in [0, 1] (divided by its maximum). With --top K > 1
the names are DIR/IMAGE.top1.png, DIR/IMAGE.top1.npy ... DIR/IMAGE.topK.npy. Each file is written
atomically; existing ones are replaced. stdout gets one line per PNG: path, label and probability, separated
by tabs.

exit status: 0 every image was explained; 1 any image failed, or the weights could not be loaded or have no
classifier, or a file could not be written; 2 a usage error, or no input images were found."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "explain",
        help="Grad-CAM maps of images: where the network looks for a class",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_arguments(parser)
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="folder for the PNG and .npy files (created if missing)"
    )
    parser.add_argument(
        "--target",
        metavar="N|LABEL",
        help="explain this class for every image: its index, or its label (a label two classes share, such as "
        "ImageNet's 'crane', needs the index); default: each image's top class",
    )
    parser.add_argument(
        "-k",
        "--top",
        type=positive_int,
        default=1,
        metavar="K",
        help="explain each image's K most probable classes, one file pair per rank (default 1)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..explain import gradcam, gradcam_top_k
    from ..explain.targets import class_index

    if args.target is not None and args.top > 1:
        raise CommandError(
            f"--target {args.target} and --top {args.top}: choose one class (--target) or the K best (--top)",
            status=2,
        )
    folder = _output_folder(args.output)
    inputs = expand_inputs(args.paths, sys.stdin, warn=None if args.quiet else warn)
    if not inputs:
        raise CommandError("no input images found", status=2)
    stems = _stems(inputs, folder)
    options = speed_options(args)
    # Grad-CAM differentiates PyTorch's head, on activations from the torch engine: by default nothing else is
    # built (another engine would be converted only to stand beside it).
    options["engine"] = options["engine"] or TORCH_ENGINE
    module = load_module(args.weights, device=args.device, quiet=args.quiet, **options)
    if not module.num_classes:
        raise CommandError(
            f"{args.weights or 'the default weights'}: a feature-vector module has no classifier, so no class to "
            "explain; use classification weights or a fine-tuned module"
        )
    try:
        target = None if args.target is None else class_index(module, _class_ref(args.target))
    except OptionError as exc:  # its message starts with "target"
        raise CommandError(f"--{exc}", status=2) from None
    if args.top > module.num_classes:
        raise CommandError(f"--top {args.top}: this module has only {module.num_classes} classes", status=2)
    folder.mkdir(exist_ok=True)
    failed = 0
    with ProgressBar(len(inputs), desc="explain", quiet=args.quiet) as progress:
        batches = decode_batches(
            inputs, args.batch_size, module.preprocessing, workers=args.workers, draft=not args.exact_decode
        )
        for batch in batches:
            progress.clear()
            good = [decoded for decoded in batch if decoded.image is not None]
            for decoded in batch:
                if decoded.image is None:
                    print(f"irv2: error: {decoded.input.path}: {decoded.error}", file=sys.stderr, flush=True)
            if good:
                images = np.stack([decoded.image for decoded in good])
                ranks = [gradcam(module, images, target)] if args.top == 1 else gradcam_top_k(module, images, args.top)
                for i, decoded in enumerate(good):
                    for rank, explanation in enumerate(ranks, start=1):
                        name = stems[decoded.input.path] + (f".top{rank}" if args.top > 1 else "")
                        _write(folder / name, decoded.image, explanation, i)
                sys.stdout.flush()
            failed += len(batch) - len(good)
            progress.update(len(batch), failed=len(batch) - len(good))
    if not args.quiet:
        failures = f"; {failed} of {len(inputs)} images failed" if failed else ""
        print(f"irv2: explained {len(inputs) - failed} images into {folder}{failures}", file=sys.stderr)
    return 1 if failed else 0


def _write(base: Path, image: np.ndarray, explanation: Any, i: int) -> None:
    """``base.npy`` (the raw map) and ``base.png`` (the overlay) for image ``i`` of ``explanation`` (an
    ``irv2.explain.Explanation``)."""
    from ..explain import caption, write_overlay_png

    heatmap = explanation.maps[i]
    text = caption(explanation.labels[i], explanation.scores[i], explanation.targets[i])
    png = base.with_name(base.name + ".png")
    try:
        with atomic_write(base.with_name(base.name + ".npy")) as f:
            np.save(f, heatmap)
        write_overlay_png(png, image, heatmap, text)
    except OSError as exc:
        raise os_failure(exc, f"{png}: cannot write") from None
    label = explanation.labels[i] if explanation.labels[i] is not None else f"class {explanation.targets[i]}"
    print(f"{png}\t{label}\t{explanation.scores[i]:.4f}")


def _output_folder(output: str) -> Path:
    """``-o DIR`` checked before any work: an existing folder, or one whose parent exists (made later)."""
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--output {output}: exists and is not a folder", status=2)
    if not folder.exists() and not folder.absolute().parent.is_dir():
        raise CommandError(f"--output {output}: folder {folder.absolute().parent} does not exist", status=2)
    return folder


def _stems(inputs: list[Input], folder: Path) -> dict[str, str]:
    """Each input's output name (its file name without extension); two inputs that would write the same
    files are a usage error, before any work."""
    stems: dict[str, str] = {}
    owners: dict[str, str] = {}
    for item in inputs:
        # An image in a tar shard is SHARD.tar::MEMBER; its name is the member's.
        stem = os.path.splitext(os.path.basename(item.path))[0]
        if stem in owners and owners[stem] != item.path:
            raise CommandError(
                f"{owners[stem]} and {item.path} would both write {folder / stem}.png: rename one, or explain them "
                "into different folders",
                status=2,
            )
        owners[stem] = item.path
        stems[item.path] = stem
    return stems


def _class_ref(text: str) -> int | str:
    """``--target``'s value: a whole number is a class index, anything else a label."""
    try:
        return int(text)
    except ValueError:
        return text
