"""``irv2``: the command line entry point (argument parsing, subcommand dispatch, exit status).

Exit status, for every subcommand:
    0  success;
    1  a failure while running: any image that could not be read, weights that could not be loaded or
       downloaded, an output that could not be written;
    2  a usage error (argparse's own status) or no input images at all;
    130 interrupted (Ctrl-C).
Errors are one line on stderr, ``irv2: error: <message>``, without a traceback; stdout holds only results.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import CommandError, Irv2Error
from ..notices import silenced
from . import bench, classify, evaluate, explain, export, features, finetune, serve, weights

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``irv2`` parser, and the parsers of the subcommands that take images (by name)."""
    parser = argparse.ArgumentParser(
        prog="irv2",
        description="Inception-ResNet-v2, exact to the TF-Hub module: classify images, extract features, "
        "evaluate on labelled images, download and convert weights.",
        epilog="Run `irv2 COMMAND --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"irv2 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    image_commands = {
        "classify": classify.add_parser(subparsers),
        "features": features.add_parser(subparsers),
        "explain": explain.add_parser(subparsers),
    }
    weights.add_parsers(subparsers)
    finetune.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    export.add_parser(subparsers)
    serve.add_parser(subparsers)
    bench.add_parser(subparsers)
    return parser, image_commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    _tolerate_undecodable_paths(sys.stdout)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, image_commands = build_parser()
    if argv and argv[0] in image_commands:
        # Paths may come before and after options (`irv2 classify a.jpg -w W b.jpg`), as users type them;
        # plain parse_args would reject b.jpg, and intermixed parsing cannot go through subparsers.
        args = image_commands[argv[0]].parse_intermixed_args(argv[1:])
    else:
        args = parser.parse_args(argv)  # exits with status 2 on a usage error
    try:
        # --quiet silences the library's one-line notices too (a conversion, a faster engine).
        with silenced(getattr(args, "quiet", False)):
            return args.run(args)
    except CommandError as exc:
        return _fail(str(exc), exc.status)
    except Irv2Error as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`irv2 classify ... | head`): stop quietly. Point stdout at devnull so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _fail(message: str, status: int) -> int:
    print(f"irv2: error: {message}", file=sys.stderr, flush=True)
    return status


def _tolerate_undecodable_paths(stream: object) -> None:
    """File names that are not valid UTF-8 reach Python as surrogate escapes; write them back as the original
    bytes on a UTF-8 stream (so the path can be used again), as ``\\x..`` escapes elsewhere, never crash."""
    reconfigure = getattr(stream, "reconfigure", None)
    encoding = (getattr(stream, "encoding", "") or "").lower().replace("-", "")
    if reconfigure is not None:
        reconfigure(errors="surrogateescape" if encoding == "utf8" else "backslashreplace")
