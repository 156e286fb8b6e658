"""The weights hub: a registry of known sources, a local cache and verified downloads.

Handles in, local file paths out; nothing here knows torch or the network architecture.

>>> from irv2 import hub
>>> source, path = hub.fetch_handle("google/imagenet/inception_resnet_v2/classification/1")
>>> path        # ~/.cache/irv2/downloads/tfhub-classification-1/inception_resnet_v2_classification_1.tar.gz

Environment: ``IRV2_HOME`` (cache root), ``IRV2_OFFLINE=1`` (no network), ``IRV2_LOCK_TIMEOUT`` (seconds to
wait for another process downloading the same file).
"""

from .cache import artifact_path, irv2_home, is_offline, module_cache_dir, record_path
from .download import describe, fetch, fetch_handle
from .lock import FileLock
from .registry import (
    Source,
    default_source,
    find_source,
    is_url,
    normalise_handle,
    resolve_source,
    source_for_url,
    sources,
)

__all__ = [
    "FileLock",
    "Source",
    "artifact_path",
    "default_source",
    "describe",
    "fetch",
    "fetch_handle",
    "find_source",
    "irv2_home",
    "is_offline",
    "is_url",
    "module_cache_dir",
    "normalise_handle",
    "record_path",
    "resolve_source",
    "source_for_url",
    "sources",
]
