"""``irv2 download``, ``irv2 info`` and ``irv2 convert``: fetching, describing and converting weights.

``download`` and ``info`` call the weights hub (``irv2.hub``), imported only when they run, so the other
subcommands work without it. ``irv2 info --engines`` describes this machine instead: which engines are
installed, and which one ``engine="auto"`` runs for each precision here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..api import load, save
from ..engine import catalog
from ..engine.precision import PRECISIONS, cpu_has_fast_bfloat16, resolve_precision
from ..errors import CommandError, MissingDependencyError, OptionError
from ..weights.native import is_native_module
from .common import os_failure


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    download = subparsers.add_parser(
        "download",
        help="download and verify weights into the cache; prints the local path",
        description="Download a registered weights source (or any http(s) URL) into irv2's cache "
        "($IRV2_HOME, else ~/.cache/irv2), verify its checksum, and print the path of the local file. "
        "A cached copy that verifies is reused. Exit status 1 when the download or check fails.",
    )
    download.add_argument(
        "handle", nargs="?", metavar="HANDLE", help="registered name, alias or URL (default: the default weights)"
    )
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    download.set_defaults(run=run_download)

    info = subparsers.add_parser(
        "info",
        help="describe weights (source, checksum, classes, cache path, size), or with --engines this machine's engines",
        description="Describe a registered weights source (default: the default weights) and its cached copy, "
        "without touching the network; or, for a local weights file or folder, what irv2.load makes of it. "
        "With --engines: the engines (--engine NAME), whether each is installed here (else the pip extra that "
        "adds it), their devices and dtypes, and which engine --engine auto runs for each dtype on this machine.",
    )
    info.add_argument("handle", nargs="?", metavar="HANDLE", help="registered name, alias, URL or a local path")
    info.add_argument(
        "--engines",
        action="store_true",
        help="describe the engines on this machine instead of weights (loads no weights)",
    )
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    info.set_defaults(run=run_info)

    convert = subparsers.add_parser(
        "convert",
        help="convert weights to an irv2 module folder (fast to load, no pickle)",
        description="Load SRC (any format irv2.load reads) and write it to DST as an irv2 module folder "
        "(model.safetensors + irv2.json), the fastest format to load. DST must not exist, be an empty "
        "folder, or be an irv2 module folder (replaced).",
    )
    convert.add_argument("src", metavar="SRC", help="weights irv2.load reads (checkpoint, TF-Hub module, ...)")
    convert.add_argument("dst", metavar="DST", help="the irv2 module folder to write")
    convert.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    convert.set_defaults(run=run_convert)


def run_download(args: argparse.Namespace) -> int:
    from .. import hub

    source, path = hub.fetch_handle(args.handle, progress=False if args.quiet else None)
    if not args.quiet:
        print(f"irv2: {source.name}: verified copy at {path}", file=sys.stderr)
    print(path)
    return 0


def run_info(args: argparse.Namespace) -> int:
    if args.engines:
        if args.handle is not None:
            raise CommandError("--engines describes this machine, not weights: give it no HANDLE", status=2)
        description = _describe_engines()
        print(json.dumps(description, indent=2) if args.json else _engines_as_text(description))
        return 0
    if args.handle is not None and os.path.exists(args.handle):
        description = _describe_local(args.handle)
    else:
        from .. import hub

        description = hub.describe(args.handle)
    if args.json:
        print(json.dumps(description, indent=2, default=str))
    else:
        print(_as_text(description))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    if os.path.exists(args.dst):
        if not os.path.isdir(args.dst):
            raise CommandError(f"{args.dst}: exists and is not a folder", status=2)
        if os.listdir(args.dst) and not is_native_module(args.dst):
            raise CommandError(f"{args.dst}: a folder that is neither empty nor an irv2 module; not writing there")
    module = load(args.src, engine="plain")  # converted, never run: no engine to build
    try:
        save(module, args.dst)
    except OSError as exc:
        raise os_failure(exc, f"{args.dst}: cannot write") from None
    if not args.quiet:
        print(f"irv2: wrote {args.dst} ({module.num_classes} classes) from {args.src}", file=sys.stderr)
    return 0


def _describe_local(path: str) -> dict[str, Any]:
    module = load(path, engine="plain")  # described, never run
    info = module.info
    return {
        "path": path,
        "num_classes": info.num_classes,
        "labels": f"{len(info.labels)} names" if info.labels else None,
        "signatures": list(module.signatures),
        "default_signature": info.default_signature,
        "image_size": list(info.image_size),
        "preprocessing": info.preprocessing.to_dict(),
        "provenance": info.provenance,
        "size_on_disk": _size_on_disk(path),
    }


def _size_on_disk(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
    return total


def _as_text(description: dict[str, Any]) -> str:
    """``key: value`` lines, aligned; lists one item per line, sizes in MB, None as ``-``."""
    width = max(map(len, description), default=0) + 2
    lines = []
    for key, value in description.items():
        items = _format_value(key, value)
        lines.append(f"{key + ':':<{width}}{items[0]}")
        lines.extend(" " * width + item for item in items[1:])
    return "\n".join(lines)


def _format_value(key: str, value: Any) -> list[str]:
    if value is None:
        return ["-"]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, int) and ("size" in key or key.endswith("bytes")):
        return [f"{value:,} bytes ({value / 1e6:.1f} MB)"]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value] or ["-"]
    if isinstance(value, dict):
        return [json.dumps(value, default=str)]
    return [str(value)]


def _describe_engines() -> dict[str, Any]:
    """The engines of :data:`irv2.engine.catalog.ENGINES`, each installed or not here, and, for every device
    here and every precision it runs, the engine ``engine="auto"`` picks (with its notice, if it gives one)."""
    engines = {}
    for spec in catalog.ENGINES.values():
        # The check auto_choice makes, so that the table and the choices below cannot disagree.
        missing = catalog.missing_modules(spec.extra) if spec.extra else []
        engines[spec.name] = {
            "installed": not missing,
            "extra": spec.extra,
            "missing": missing,
            "devices": list(spec.devices),
            "dtypes": list(spec.dtypes),
            "summary": spec.summary,
        }
    auto: dict[str, dict[str, Any]] = {}
    for device in _devices():
        auto[device.type] = {}
        for name in PRECISIONS:
            try:
                precision = resolve_precision(name, device)
            except OptionError as exc:  # bfloat16 on a CPU without its instructions: listed, with the refusal
                auto[device.type][name] = {"engine": None, "note": str(exc)}
                continue
            except ValueError:  # not a precision for this device (float16 on a CPU, int8 on a GPU)
                continue
            choice: dict[str, Any] = {"engine": None, "note": None}
            try:
                choice["engine"], choice["note"] = catalog.auto_choice(precision, device)
            except MissingDependencyError as exc:
                choice["note"] = str(exc)
            auto[device.type][name] = choice
    return {"engines": engines, "auto": auto, "cpu_fast_bfloat16": cpu_has_fast_bfloat16()}


def _devices() -> list[Any]:
    """The device types this machine has: the CPU, and CUDA or MPS when PyTorch can use them."""
    import torch

    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if torch.backends.mps.is_available():
        devices.append(torch.device("mps"))
    return devices


def _engines_as_text(description: dict[str, Any]) -> str:
    engines = description["engines"]
    rows = [("engine", "installed", "devices", "dtypes")]
    for name, engine in engines.items():
        installed = "yes" if engine["installed"] else f"no: pip install 'irv2[{engine['extra']}]'"
        rows.append((name, installed, ", ".join(engine["devices"]), ", ".join(engine["dtypes"])))
    lines = ["engines (--engine NAME; engine=NAME in irv2.load):", *_table(rows)]
    lines += ["", 'what --engine auto (engine="auto") runs on this machine:']
    choices = [("device", "dtype", "engine")]
    notes = []
    for device, dtypes in description["auto"].items():
        for dtype, choice in dtypes.items():
            refused = choice["engine"] is None and "no bfloat16 instructions" in (choice["note"] or "")
            choices.append((device, dtype, choice["engine"] or ("refused" if refused else "none installed")))
            if choice["note"]:
                notes.append(f"note: {device} {dtype}: {choice['note']}")
    lines += _table(choices)
    return "\n".join(lines + notes)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as aligned columns, two spaces apart and indented by two, the first row a header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    padded = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return [f"  {line}".rstrip() for line in padded]
