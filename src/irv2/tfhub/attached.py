"""Messages a TF-Hub module attaches (``hub.attach_message`` at export): the ``/1`` modules attach none."""

from __future__ import annotations

import os
from typing import Any


def attached_message(handle: Any, key: str, required: bool) -> None:
    """None, or for ``required=True`` the KeyError TF-Hub raises for a key the module does not attach."""
    if required:
        name = os.fspath(handle) if isinstance(handle, (str, os.PathLike)) else repr(handle)
        raise KeyError(f"{name} attaches no message under {key!r} (it attaches none)")
    return None
