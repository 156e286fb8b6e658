"""Exports that more than one folder of tests reads, made once per session (a pytest plugin: tests/conftest.py
names it in ``pytest_plugins``).

An ExecuTorch program or a SavedModel of the full network takes half a minute or more to write on a small CPU.
The export tests hold each to TensorFlow and to irv2, and the docs' recipes read the same files as their
givens (``irv2.pte``, ``irv2_savedmodel``), so a recipe runs on a file that those tests have checked, and the
suite writes each file once instead of twice.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import irv2
from random_module import random_module


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """The environment of an ``irv2`` command run as a user runs it, TensorFlow's C++ log quiet."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="session")
def imagenet_module(photo_arrays) -> irv2.Module:
    """A random 1001-class network (BatchNorm calibrated on the photos), as TF-Hub's classification/1."""
    return random_module(photo_arrays)


@pytest.fixture(scope="session")
def imagenet_savedmodel(tmp_path_factory, imagenet_module):
    """``imagenet_module`` as a SavedModel, exported once with the built-in check (which loads it back in
    TensorFlow): the ``ExportResult``."""
    from irv2.export import export

    return export(imagenet_module, tmp_path_factory.mktemp("savedmodel") / "imagenet", format="savedmodel")


@pytest.fixture(scope="session")
def hub_pte(tmp_path_factory, tf_files, cli_env) -> tuple[Path, subprocess.CompletedProcess]:
    """``irv2 export`` of the TF-written TF-Hub module to a .pte program, as a user runs it: (path, process)."""
    from export_support import export_hub_module

    return export_hub_module(tmp_path_factory.mktemp("executorch"), "irv2.pte", tf_files, cli_env)
