"""``irv2 finetune --data DIR --out OUT``: fine-tune on your own classes; a thin layer over ``irv2.finetune``."""

from __future__ import annotations

import argparse
import dataclasses
import os

from ..errors import CommandError, OptionError
from ..finetune import finetune
from ..finetune.config import DTYPES, MODES, OPTIMIZERS, FinetuneConfig, canonical_dtype
from ..process_settings import flush_denormals
from .common import device_name, positive_int, warn

DESCRIPTION = """\
Fine-tune Inception-ResNet-v2 on your own classes and save the result as an irv2 module in OUT, which
`irv2 classify --weights OUT` and irv2.load(OUT) use directly. OUT also gets metrics.json,
training_curves.png, confusion_matrix.png and checkpoint.pt (for --resume).

DATA is a folder with one subfolder of images per class, or a CSV of path,label rows (relative paths
are relative to the CSV). Unreadable images are skipped and listed. Progress and notes go to stderr; on
success stdout gets the path of OUT.

modes:
  linear        frozen backbone; features computed once and cached in OUT/cache; a new head trains
  full          every layer; the backbone at lr * --backbone-lr-factor; AuxLogits loss (0.4) at 299 px
  last-blocks   the last --blocks N of the backbone's 49 units (1 = conv2d_7b, 11 = all 8x8 blocks) + head

several processes (DistributedDataParallel; NCCL on GPUs, gloo on CPU):
  torchrun --nproc_per_node 4 -m irv2 finetune --data DIR --out OUT --mode full
  --batch-size is the global batch, shared by the processes: the same options train the same model
  with any number of processes.

exit status: 0 done; 1 the run failed (unusable data, weights, output folder); 2 a usage error."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``finetune`` on the ``irv2`` command's subparsers."""
    defaults = {f.name: f.default for f in dataclasses.fields(FinetuneConfig)}
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune on your own classes (a folder or CSV of labelled images)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, metavar="DIR|CSV", help="training images: class folders or a CSV")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder (becomes an irv2 module)")
    parser.add_argument("-w", "--weights", metavar="HANDLE", help="weights to start from (default: irv2's default)")
    parser.add_argument("--mode", choices=MODES, default=defaults["mode"], help="what trains (default linear)")
    parser.add_argument("--blocks", type=positive_int, metavar="N", help="with --mode last-blocks: units to train")
    parser.add_argument("--epochs", type=positive_int, metavar="N", help="default 30 (linear) or 10")
    parser.add_argument(
        "-b",
        "--batch-size",
        type=positive_int,
        default=defaults["batch_size"],
        metavar="N",
        help="the global batch: images per optimizer step, summed over all torchrun processes, each taking "
        "its share (default %(default)s)",
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=defaults["image_size"],
        metavar="PX",
        help="image side for training and evaluation (default %(default)s)",
    )
    parser.add_argument("--lr", type=float, default=defaults["lr"], help="peak head learning rate (%(default)s)")
    parser.add_argument(
        "--backbone-lr-factor",
        type=float,
        default=defaults["backbone_lr_factor"],
        metavar="F",
        help="backbone lr = lr * F in full and last-blocks modes (default %(default)s)",
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=defaults["weight_decay"],
        metavar="WD",
        help="on weights, not biases (default %(default)s)",
    )
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=defaults["optimizer"],
        help="adamw (default), sgd (momentum 0.9) or rmsprop (TF-Slim's)",
    )
    parser.add_argument(
        "--warmup-epochs",
        type=float,
        default=defaults["warmup_epochs"],
        metavar="E",
        help="linear warm-up, then cosine decay per step (default %(default)s)",
    )
    parser.add_argument(
        "--label-smoothing", type=float, default=defaults["label_smoothing"], metavar="S", help="default %(default)s"
    )
    parser.add_argument("--color-jitter", action="store_true", help="TF-Slim's brightness/saturation distortion")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--val", metavar="DIR|CSV", help="a separate validation set")
    split.add_argument(
        "--val-fraction",
        type=float,
        default=defaults["val_fraction"],
        metavar="F",
        help="share of each class held out for validation (default %(default)s)",
    )
    parser.add_argument(
        "--accumulate",
        type=positive_int,
        default=defaults["accumulate"],
        metavar="N",
        help="gradient accumulation: an optimizer step every N batches",
    )
    parser.add_argument(
        "--dtype",
        type=canonical_dtype,
        choices=DTYPES,
        help="auto (default): bfloat16 autocast where the GPU or CPU computes it natively, else float32; "
        "float32; bfloat16 (fp32 and bf16 are accepted too)",
    )
    # --dtype's old name: hidden, and it says so when used.
    parser.add_argument("--precision", type=canonical_dtype, choices=DTYPES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--patience", type=positive_int, metavar="N", help="stop after N epochs without a lower validation loss"
    )
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="split, shuffling, augmentation")
    parser.add_argument(
        "--dropout-rate",
        type=float,
        default=defaults["dropout_rate"],
        metavar="P",
        help="dropout before the classifier (default %(default)s)",
    )
    parser.add_argument(
        "--batch-norm-momentum",
        type=float,
        default=defaults["batch_norm_momentum"],
        metavar="D",
        help="BatchNorm moving-average decay, as TF states it (default %(default)s)",
    )
    parser.add_argument(
        "--aux-loss-weight",
        type=float,
        default=defaults["aux_loss_weight"],
        metavar="W",
        help="AuxLogits loss weight in full mode at 299 px (default %(default)s)",
    )
    # Before BatchNorm always normalised over the global batch, this asked for it; hidden, and it says so.
    parser.add_argument("--sync-bn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults["workers"],
        metavar="N",
        help="DataLoader worker processes for decoding (default 0: none)",
    )
    parser.add_argument("--device", type=device_name, metavar="DEV", help="cpu, cuda, cuda:1 (default: CUDA if any)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in OUT")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes on stderr")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``irv2 finetune``: parse, call ``irv2.finetune``; errors go to ``irv2.cli.main`` to report."""
    options = {name: getattr(args, name) for name in FinetuneConfig.field_names() if hasattr(args, name)}
    options["dtype"] = _dtype(args)
    if args.sync_bn and _is_main_process():
        warn("--sync-bn is deprecated and does nothing: under torchrun BatchNorm always uses the global batch")
    # Random or freshly fine-tuned weights can produce subnormal floats: flushed, as every subcommand does.
    import torch  # noqa: F401 - loaded here, so that the flush below reaches it

    flush_denormals()
    try:
        finetune(args.data, args.out, **options)
    except OptionError as exc:
        raise CommandError(_option_text(str(exc)), status=2) from None
    if _is_main_process():
        print(args.out, flush=True)
    return 0


def _dtype(args: argparse.Namespace) -> str:
    if args.precision is None:
        return args.dtype or FinetuneConfig.dtype
    if args.dtype is not None and args.dtype != args.precision:
        raise CommandError("--precision is the old name of --dtype; give --dtype only", status=2)
    if _is_main_process():
        warn(f"--precision is deprecated; use --dtype {args.precision}")
    return args.precision


def _is_main_process() -> bool:
    """Rank 0 under torchrun (or no torchrun): the one process that reports."""
    return int(os.environ.get("RANK", "0")) == 0


def _option_text(message: str) -> str:
    """``batch_size must ...`` → ``--batch-size must ...``: name options as the command line spells them."""
    name, _, rest = message.partition(" ")
    return f"--{name.replace('_', '-')} {rest}" if name in FinetuneConfig.field_names() else message
