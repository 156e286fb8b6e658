"""A folder that cannot be listed, even by root (who ignores permission bits): ``os.scandir`` refuses it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def refuse_listing(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """From now until the test ends, listing ``folder`` raises PermissionError, as for a folder without the
    read permission (``os.walk`` lists with ``os.scandir``)."""
    scandir = os.scandir

    def refusing(path: str | os.PathLike[str] = ".") -> os.ScandirIterator:
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(folder))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
