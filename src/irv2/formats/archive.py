"""Safe extraction of checkpoint tarballs (``.tar.gz``, ``.tgz``, ``.tar``, ``.tar.bz2``, ``.tar.xz``).

Checkpoints are published as tarballs (TF-Slim's ``inception_resnet_v2_2016_08_30.tar.gz``, TF-Hub's
``?tf-hub-format=compressed``). Members are validated one by one: absolute paths, ``..``, links that
resolve outside the destination, devices and FIFOs are refused, never silently rewritten.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import shutil
import tarfile
import zlib

from ..errors import CheckpointError
from .hub_module import is_hub_module
from .table import has_table_footer

__all__ = ["extract_archive", "find_checkpoint", "is_archive"]

_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_MAX_DEPTH = 4  # how deep find_checkpoint looks: tarballs wrap the checkpoint in a folder or two


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` starts like a gzip/bzip2/xz stream or a POSIX tar file."""
    try:
        with open(path, "rb") as f:
            head = f.read(262)
    except OSError:
        return False
    return head.startswith(_MAGICS) or head[257:262] == b"ustar"


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Extracts the tarball ``archive`` into the existing folder ``dest`` and returns ``dest``.

    Raises ``CheckpointError`` naming the archive if it is not a tar archive, is truncated or damaged,
    or holds a member that would land outside ``dest`` or is not a plain file, folder or link.
    """
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _extract_member(archive, tar, member, root)
    except CheckpointError:
        raise
    except tarfile.ReadError as exc:
        raise CheckpointError(archive, f"not a readable tar archive ({exc})") from exc
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise CheckpointError(archive, f"truncated or damaged archive ({exc})") from exc
    return os.fspath(dest)


def _extract_member(archive: str | os.PathLike[str], tar: tarfile.TarFile, member: tarfile.TarInfo, root: str) -> None:
    name = _safe_name(archive, member.name)
    if name == ".":
        return
    target = os.path.join(root, *name.split("/"))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    _check_inside(archive, member.name, os.path.realpath(parent), root)
    if os.path.islink(target):
        os.unlink(target)  # a later member replaces an earlier one, as tar does; never write through
    if member.isdir():
        os.makedirs(target, exist_ok=True)
    elif member.isfile():
        source = tar.extractfile(member)
        assert source is not None
        with source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    elif member.issym():
        if posixpath.isabs(member.linkname):
            raise CheckpointError(archive, f"member {member.name!r} links to an absolute path")
        _check_inside(archive, member.name, os.path.realpath(os.path.join(parent, member.linkname)), root)
        os.symlink(member.linkname, target)
    elif member.islnk():
        source_name = _safe_name(archive, member.linkname)
        source_path = os.path.realpath(os.path.join(root, *source_name.split("/")))
        _check_inside(archive, member.name, source_path, root)
        if not os.path.isfile(source_path):
            raise CheckpointError(archive, f"member {member.name!r} links to a missing file")
        shutil.copyfile(source_path, target)
    else:
        raise CheckpointError(archive, f"member {member.name!r} is a device, FIFO or other special file")


def _safe_name(archive: str | os.PathLike[str], name: str) -> str:
    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise CheckpointError(archive, f"member {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise CheckpointError(archive, f"member {name!r} climbs out of the archive with '..'")
    return posixpath.normpath(name)


def _check_inside(archive: str | os.PathLike[str], name: str, path: str, root: str) -> None:
    if path != root and not path.startswith(root + os.sep):
        raise CheckpointError(archive, f"member {name!r} would land outside the extraction folder")


def find_checkpoint(root: str | os.PathLike[str], label: str | os.PathLike[str] | None = None) -> str:
    """Finds the one checkpoint under ``root``: a TF-Hub module folder, a V2 prefix or a V1 file.

    Prefers, in this order, the shallowest hub module, a V2 ``.index`` (returned as its prefix), then
    a file ending in the table magic. ``label`` names ``root`` in errors (e.g. the archive it came
    from). Raises ``CheckpointError`` if there is none, or several of the preferred kind.
    """
    label = root if label is None else label
    hubs: list[str] = []
    indexes: list[str] = []
    tables: list[str] = []
    base_depth = os.fspath(root).rstrip(os.sep).count(os.sep)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        if folder.count(os.sep) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        if is_hub_module(folder):
            hubs.append(folder)
            dirs[:] = []  # a module's own variables/ is not a separate checkpoint
            continue
        for file in sorted(files):
            path = os.path.join(folder, file)
            if file.startswith("."):
                continue
            if file.endswith(".index"):
                indexes.append(path[: -len(".index")])
            elif has_table_footer(path):
                tables.append(path)
    for found, kind in ((hubs, "TF-Hub modules"), (indexes, "V2 checkpoints"), (tables, "V1 checkpoints")):
        if len(found) == 1:
            return found[0]
        if found:
            depth = min(f.count(os.sep) for f in found)
            shallowest = [f for f in found if f.count(os.sep) == depth]
            if len(shallowest) == 1:
                return shallowest[0]
            names = ", ".join(os.path.relpath(f, root) for f in found)
            raise CheckpointError(label, f"several {kind} inside ({names}); irv2 reads one at a time")
    raise CheckpointError(
        label,
        "no checkpoint inside: expected a TF-Hub module folder (tfhub_module.pb), "
        "a V2 checkpoint (*.index + *.data-*) or a V1 checkpoint file",
    )
