"""Tar shards in WebDataset layout as inputs: each image member of ``SHARD.tar`` is one input.

WebDataset stores a sample as consecutive members sharing a key (the member's name up to the first dot of
its base name): ``000123.jpg``, ``000123.cls``, ``000123.json``. irv2 takes every regular member whose name
ends in an image extension, in archive order, and names it ``SHARD.tar::MEMBER`` in the output, so the
row leads back to the shard and the sample key. Other members (labels, metadata) are skipped.

Only uncompressed ``.tar`` is read: its members can be reached by offset, so each decoding thread (and each
rank under ``torchrun``) reads just its own images instead of decompressing the whole shard. The listing
reads only the 512-byte headers. A shard that cannot be read past some point becomes an error row naming
the point; the members before it are still processed.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

SEPARATOR = "::"
SHARD_EXTENSION = ".tar"
COMPRESSED_EXTENSIONS = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst")


@dataclass(frozen=True)
class TarMember:
    """Where the encoded bytes of one image lie: ``size`` bytes at ``offset`` in the file ``shard``."""

    shard: str
    offset: int
    size: int


def is_shard_name(path: str) -> bool:
    """True for a path irv2 reads as a tar shard (``.tar``), or refuses as a compressed one."""
    lower = path.lower()
    return lower.endswith(SHARD_EXTENSION) or lower.endswith(COMPRESSED_EXTENSIONS)


def expand_shard(path: str, is_image: Callable[[str], bool]) -> list[tuple[str, str | None, TarMember | None]]:
    """The image members of the shard ``path`` as ``(name, error, member)``, in archive order.

    ``name`` is ``path::member``; a shard that cannot be opened, or not read to its end, adds one entry
    with ``error`` set and no member, in the place where reading stopped.
    """
    if path.lower().endswith(COMPRESSED_EXTENSIONS):
        return [(path, "compressed tar shards are not supported (no random access): use uncompressed .tar", None)]
    found: list[tuple[str, str | None, TarMember | None]] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                base = os.path.basename(info.name)
                # Hidden members are macOS resource forks (._x.jpg) and the like, skipped as in folders.
                if info.isfile() and not base.startswith(".") and is_image(base):
                    found.append((f"{path}{SEPARATOR}{info.name}", None, TarMember(path, info.offset_data, info.size)))
    except (tarfile.TarError, OSError, EOFError) as exc:
        where = f" after {len(found)} images" if found else ""
        found.append((path, f"cannot read this tar shard{where} ({exc})", None))
    return found


def read_member(member: TarMember) -> bytes:
    """The encoded bytes of ``member``; OSError when the shard cannot be read or ends inside the member."""
    with open(member.shard, "rb") as f:
        f.seek(member.offset)
        data = f.read(member.size)
    if len(data) != member.size:
        raise OSError(f"the tar shard ends inside this member ({len(data)} of {member.size} bytes)")
    return data
