"""Turn the PATH arguments of ``irv2 classify`` / ``irv2 features`` into an ordered list of inputs.

Rules, in this order for each argument:

* ``-`` reads newline-separated paths from stdin (blank lines skipped); each is taken literally (no glob).
* ``@LIST`` reads newline-separated paths from the file LIST the same way (for millions of paths, and under
  ``torchrun``, where every process must see the same list; stdin reaches only one of them). Name an image
  whose name starts with ``@`` as ``./@name.jpg``.
* An existing ``.tar`` file is a shard in WebDataset layout: each image member is an input, named
  ``SHARD.tar::MEMBER`` (see :mod:`irv2.batch.shards`).
* An existing folder is searched recursively for images (extensions in :data:`IMAGE_EXTENSIONS`, any
  case). Hidden files and folders (names starting with ``.``, such as macOS ``._photo.jpg`` resource
  forks) are skipped, and symbolic links to folders are not followed (no cycles). The files come out
  sorted by their path components, so the order never depends on the file system.
* An existing file is taken whatever its extension: the user named it.
* A pattern with ``*``, ``?`` or ``[`` is expanded here too (``**`` spans folders), for shells that do not
  expand it (Windows) or when it was quoted; matches come out sorted and are treated as if typed.
* Anything else is an :class:`Input` carrying an error, so it becomes an error row in its place instead of
  stopping the run.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from .shards import TarMember, expand_shard, is_shard_name

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})

STDIN = "-"
LIST_PREFIX = "@"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Input:
    """One image to process: its path as shown to the user, or the reason it cannot be processed."""

    path: str
    error: str | None = None
    member: TarMember | None = None  # where the bytes are, for an image inside a tar shard


def expand_inputs(
    args: Iterable[str], stdin: TextIO | None = None, warn: Callable[[str], None] | None = None
) -> list[Input]:
    """Expand PATH arguments into inputs, in argument order (see the module docstring for the rules).

    ``warn`` receives a message for a folder that holds no images; it is not an error.
    """
    inputs: list[Input] = []
    for arg in args:
        if arg == STDIN:
            for line in (stdin.read() if stdin is not None else "").splitlines():
                if line.strip():
                    inputs.extend(_expand_path(line, warn))
        elif arg.startswith(LIST_PREFIX) and len(arg) > 1:
            inputs.extend(_expand_list(arg[1:], warn))
        elif not os.path.lexists(arg) and _GLOB_CHARS.intersection(arg):
            inputs.extend(_expand_pattern(arg, warn))
        else:
            inputs.extend(_expand_path(arg, warn))
    return inputs


def is_image_name(name: str) -> bool:
    """True for a file name with one of the image extensions irv2 looks for in folders (any case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _expand_path(path: str, warn: Callable[[str], None] | None) -> list[Input]:
    if os.path.isdir(path):
        found = list(_walk(path))
        if not found and warn is not None:
            warn(f"{path}: no images in this folder (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        return found
    if is_shard_name(path) and os.path.isfile(path):
        return [Input(p, error, member) for p, error, member in expand_shard(path, is_image_name)]
    if os.path.lexists(path):
        # A broken symbolic link is passed on too: decoding reports it, in its place.
        return [Input(path)]
    return [Input(path, error="no such file or folder")]


def _expand_list(list_path: str, warn: Callable[[str], None] | None) -> list[Input]:
    try:
        with open(list_path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        return [Input(LIST_PREFIX + list_path, error=f"cannot read this list of paths ({exc.strerror or exc})")]
    return [item for line in lines if line.strip() for item in _expand_path(line, warn)]


def _expand_pattern(pattern: str, warn: Callable[[str], None] | None) -> list[Input]:
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        return [Input(pattern, error="no such file or folder, and no file matches this pattern")]
    return [item for match in matches for item in _expand_path(match, warn)]


def _walk(root: str) -> Iterator[Input]:
    found: list[tuple[tuple[str, ...], str]] = []
    unreadable: list[Input] = []

    def on_error(error: OSError) -> None:
        unreadable.append(Input(error.filename or root, error=f"cannot list folder ({error.strerror or error})"))

    for folder, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        relative = os.path.relpath(folder, root)
        parts = () if relative == os.curdir else tuple(relative.split(os.sep))
        for name in filenames:
            if not name.startswith(".") and is_image_name(name):
                found.append(((*parts, name), os.path.join(folder, name)))
    yield from unreadable
    for _, path in sorted(found):
        yield Input(path)
