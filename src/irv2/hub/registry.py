"""The weight sources irv2 knows, as data: one record per downloadable artifact (``registry.json``).

A handle names a source by its ``name``, by one of its ``aliases`` or by one of its ``urls``. Handles are
compared after normalising (see ``normalise_handle``), so ``http://`` vs ``https://``, a trailing slash, a
``?tf-hub-format=compressed`` query and letter case do not matter, and Kaggle Models' spellings of one model
version (where tfhub.dev has redirected since November 2023) are one handle. Any other http(s) URL becomes an
ad-hoc source with no published checksum (``source_for_url``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import types
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import HandleError

REGISTRY_FILE = "registry.json"
FORMAT_AUTO = "auto"


@dataclass(frozen=True)
class Source:
    """One downloadable artifact: where it lives, how to check it and what it holds.

    Attributes:
        name: stable identifier, also the cache folder name (``<home>/downloads/<name>/``).
        aliases: other handles that name this source (TF-Hub handles, file stems, hub ids).
        urls: download locations, the primary first, then mirrors; tried in order.
        filename: the artifact's file name in the cache.
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"`` as published, or None when nothing is published
            (then the first download is recorded and later uses are checked against it).
        size_bytes: the artifact's size when known, else None.
        format: ``tf-hub-module-tar``, ``tf-slim-tar``, ``keras-h5``, ``safetensors`` or ``auto`` (unknown).
        num_classes: 1001 (background + ImageNet-1k), 1000, 0 (feature vector) or None (unknown).
        label_offset: 0 for 1001-class heads, 1 for 1000-class heads (1000-index ``i`` is 1001-index
            ``i + 1``); None when the class count is unknown.
        preprocessing: the recipe the weights were trained for (read-only mapping), or None when unknown.
        license: SPDX identifier of the weights' licence, or None when unknown.
        description: one or two human-readable sentences.
    """

    name: str
    aliases: tuple[str, ...]
    urls: tuple[str, ...]
    filename: str
    checksum: str | None
    size_bytes: int | None
    format: str
    num_classes: int | None
    label_offset: int | None
    preprocessing: Mapping[str, Any] | None = None
    license: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.checksum is not None:
            parse_checksum(self.checksum)  # fail early on a malformed record
        if not self.urls:
            raise ValueError(f"source {self.name!r} has no URL")
        if not _SAFE_FILENAME.fullmatch(self.filename) or self.filename in (".", ".."):
            raise ValueError(f"source {self.name!r}: unsafe file name {self.filename!r}")
        if not _SAFE_FILENAME.fullmatch(self.name) or self.name in (".", ".."):
            raise ValueError(f"unsafe source name {self.name!r}")

    # A frozen dataclass hashes every field; the preprocessing mapping is not hashable, the name is unique.
    def __hash__(self) -> int:
        return hash(self.name)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-serialisable data (lists and dicts)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "urls": list(self.urls),
            "filename": self.filename,
            "checksum": self.checksum,
            "size_bytes": self.size_bytes,
            "format": self.format,
            "num_classes": self.num_classes,
            "label_offset": self.label_offset,
            "preprocessing": _thaw(self.preprocessing),
            "license": self.license,
            "description": self.description,
        }


_SAFE_FILENAME = re.compile(r"[A-Za-z0-9._-]{1,200}")


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Split ``"md5:<hex>"`` / ``"sha256:<hex>"`` into ``(algorithm, lower-case hex)``; ValueError otherwise."""
    algorithm, _, digest = checksum.partition(":")
    lengths = {"md5": 32, "sha256": 64}
    digest = digest.lower()
    if algorithm not in lengths or len(digest) != lengths[algorithm] or not re.fullmatch(r"[0-9a-f]+", digest):
        raise ValueError(f"malformed checksum {checksum!r}: expected 'md5:<32 hex>' or 'sha256:<64 hex>'")
    return algorithm, digest


def sources() -> list[Source]:
    """Every registered source, in registry order (the default first)."""
    return list(_registry()[0])


def default_source() -> Source:
    """The source ``irv2.load()`` uses when given no handle: the TF-Hub classification/1 module (1001 classes)."""
    return _registry()[1]


def is_url(handle: str) -> bool:
    """True for an ``http://`` or ``https://`` URL."""
    return handle.strip().lower().startswith(("http://", "https://"))


# tensorflow_hub fetches any http handle with ?tf-hub-format=compressed appended, and tfhub.dev's redirect to
# Kaggle adds ?tfhub-redirect=true: users paste both, and neither changes which module is meant.
_SAME_MODULE = ("tf-hub-format", "tfhub-redirect")
# A browser's address bar hides the scheme, so these are pasted without one. Only hosts that serve weights:
# a bare "name.ext" (a file stem such as "inception_resnet_v2.tf_in1k") must stay a name, not become a URL.
_SCHEMELESS_HOSTS = ("tfhub.dev/", "kaggle.com/", "www.kaggle.com/")
_KAGGLE_HOSTS = ("www.kaggle.com", "kaggle.com")
_KAGGLE_LONG_PATH = re.compile(
    r"/models/([^/]+)/([^/]+)/frameworks/([^/]+)/variations/([^/]+)/versions/([^/]+)/?", re.IGNORECASE
)


def normalise_handle(handle: str) -> str:
    """The comparison form of a handle: lower case, ``https://`` for any http(s) URL, no trailing slash and
    no ``tf-hub-format`` or ``tfhub-redirect`` query (they name the same module).

    Kaggle Models URLs are also brought to one form: ``kaggle.com`` is ``www.kaggle.com``, and the long path
    ``/models/<owner>/<model>/frameworks/<f>/variations/<v>/versions/<n>`` is the short ``/models/<owner>/
    <model>/<f>/<v>/<n>``. ``tfhub.dev/...`` and ``[www.]kaggle.com/...`` without a scheme count as https URLs.
    """
    text = handle.strip()
    if text.lower().startswith(_SCHEMELESS_HOSTS):
        text = "https://" + text
    if is_url(text):
        parts = urllib.parse.urlsplit(text)
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in pairs if k not in _SAME_MODULE]
        host, path = parts.netloc.lower(), parts.path
        if host in _KAGGLE_HOSTS:
            host = _KAGGLE_HOSTS[0]
            if long_form := _KAGGLE_LONG_PATH.fullmatch(path):
                path = "/models/" + "/".join(long_form.groups())
        text = urllib.parse.urlunsplit(("https", host, path, urllib.parse.urlencode(query), ""))
    return text.rstrip("/").lower()


def find_source(handle: str) -> Source | None:
    """The registered source whose name, alias or URL matches ``handle`` (after normalising), else None."""
    return _registry()[2].get(normalise_handle(handle))


def source_for_url(url: str) -> Source:
    """The registered source for ``url`` if it is one of theirs, else an ad-hoc source for that URL.

    The ad-hoc record is named ``url-<first 16 hex of sha256(url)>``, has no published checksum (trust on
    first use applies), format ``auto`` and unknown class count. Raises HandleError for a non-http(s) URL.
    """
    url = url.strip()
    if not is_url(url):
        raise HandleError(f"{url}: not an http(s) URL")
    known = find_source(url)
    if known is not None:
        return known
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return Source(
        name=f"url-{digest}",
        aliases=(),
        urls=(url,),
        filename=_filename_from_url(url),
        checksum=None,
        size_bytes=None,
        format=FORMAT_AUTO,
        num_classes=None,
        label_offset=None,
        preprocessing=None,
        license=None,
        description=f"ad-hoc download of {url}",
    )


def resolve_source(handle: str | None) -> Source:
    """``handle`` as a Source: None → the default, a registered name/alias/URL → its record, another http(s)
    URL → an ad-hoc record. Raises HandleError for anything else, listing the registered names."""
    if handle is None:
        return default_source()
    found = find_source(handle)
    if found is not None:
        return found
    if is_url(handle):
        return source_for_url(handle)
    names = ", ".join(source.name for source in sources())
    raise HandleError(f"{handle}: not a registered weights source or http(s) URL (registered: {names})")


def _filename_from_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    last = urllib.parse.unquote(parts.path.rstrip("/").rpartition("/")[2])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", last).strip("._") or "download"
    if "tf-hub-format=compressed" in parts.query and not name.endswith(".tar.gz"):
        name += ".tar.gz"  # tfhub.dev serves the module as a gzipped tarball under a bare version number
    return name[:200]


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _source_from_record(record: dict[str, Any]) -> Source:
    return Source(
        name=record["name"],
        aliases=tuple(record.get("aliases", ())),
        urls=tuple(record["urls"]),
        filename=record["filename"],
        checksum=record.get("checksum"),
        size_bytes=record.get("size_bytes"),
        format=record["format"],
        num_classes=record.get("num_classes"),
        label_offset=record.get("label_offset"),
        preprocessing=_freeze(record.get("preprocessing")),
        license=record.get("license"),
        description=record.get("description", ""),
    )


@functools.cache
def _registry() -> tuple[tuple[Source, ...], Source, dict[str, Source]]:
    data = json.loads(resources.files(__package__).joinpath(REGISTRY_FILE).read_text(encoding="utf-8"))
    records = tuple(_source_from_record(record) for record in data["sources"])
    by_name = {source.name: source for source in records}
    if len(by_name) != len(records):
        raise ValueError(f"{REGISTRY_FILE}: duplicate source names")
    default = by_name[data["default"]]
    ordered = (default, *(source for source in records if source is not default))
    index: dict[str, Source] = {}
    for source in ordered:
        for key in (source.name, *source.aliases, *source.urls):
            owner = index.setdefault(normalise_handle(key), source)
            if owner is not source:
                raise ValueError(f"{REGISTRY_FILE}: {key!r} names both {owner.name} and {source.name}")
    return ordered, default, index


@functools.cache
def _published() -> tuple[dict[str, Any], ...]:
    data = json.loads(resources.files(__package__).joinpath(REGISTRY_FILE).read_text(encoding="utf-8"))
    return tuple(data.get("published_accuracy", ()))


def published_accuracy(name: str) -> list[dict[str, Any]]:
    """The accuracies published for the weights of source ``name``: per publication its ``source``, its
    ``preprocessing`` and ``sets`` (set name → ``top1``/``top5`` in percent); empty for other weights."""
    return [
        {key: record[key] for key in ("source", "preprocessing", "sets")}
        for record in _published()
        if name in record["weights"]
    ]
