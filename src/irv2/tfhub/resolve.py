"""``hub.resolve``: a handle's local folder, fetched and converted once."""

from __future__ import annotations

import os
from pathlib import Path


def resolve(handle: str | os.PathLike[str]) -> str:
    """The local folder or file ``handle`` loads from, fetching and converting it first if it is not cached.

    A tfhub.dev or Kaggle URL or a registered name gives irv2's cached copy of that module,
    ``$IRV2_HOME/modules/<name>``: an irv2 module folder (``model.safetensors`` and ``irv2.json``), which
    ``hub.Module``, ``irv2.load`` and ``hub.resolve`` read without fetching again; not TF's ``saved_model.pb``.
    A local path is returned as it is.

    Raises:
        HandleError: neither a local path nor a registered handle or URL.
        Irv2Error: weights that cannot be fetched or read (as ``irv2.load``).
    """
    from .. import hub
    from ..api.network_load import load_network
    from ..weights.native import is_native_module

    local = Path(handle).expanduser()
    if local.exists() or Path(f"{local}.index").exists():
        return os.fspath(handle)
    source = hub.resolve_source(os.fspath(handle))
    cache = hub.module_cache_dir(source)
    if not is_native_module(cache):
        load_network(handle)  # fetches, converts and caches it, as a first irv2.load does
    return os.fspath(cache)
