"""Fixtures for the batch-job tests: folders of many small images, broken ones among them."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_support import make_images


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory, photo_arrays) -> tuple[Path, list[str]]:
    """A folder of 40 small images (3 broken), and its files in input order."""
    root = tmp_path_factory.mktemp("forty")
    return root, make_images(root, photo_arrays, 40)


@pytest.fixture(scope="session")
def many_images(tmp_path_factory, photo_arrays) -> tuple[Path, list[str]]:
    """A folder of 100 small images (4 broken: the last at 95), and its files in input order."""
    root = tmp_path_factory.mktemp("many")
    return root, make_images(root, photo_arrays, 100)
