"""The *givens* of the docs' recipes: what a recipe may take as done, by the name its doc gives it.

``<!-- recipe: given irv2.onnx, server -->`` above a fence prepares those two before the block runs: a file
in its folder or irv2 cache (built once per session by a fixture of conftest.py), or a service it expects to
be running.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# The absolute paths and bucket URLs of a user's machine in the recipes, and what they stand for here.
PLACES = {"/models/my-module": "my-module", "s3://bucket/": ""}

_SPARK = """
from pyspark.sql import SparkSession

spark = (
    SparkSession.builder.master("local[2]")
    .appName("irv2 recipe")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.host", "127.0.0.1")
    .getOrCreate()
)
"""


@dataclass(frozen=True)
class Given:
    """Something a recipe takes as done: a file prepared in its folder or cache, or a running service."""

    prepare: Callable[[pytest.FixtureRequest, Path, Path], None] | None = None  # (request, work, home)
    shell: str = ""  # run before the recipe, in its shell (after prelude.sh)
    python: str = ""  # run before a Python recipe, in its namespace
    tensorflow: bool = False  # preparing it needs TensorFlow


def link(source: str | os.PathLike[str], target: Path) -> None:
    """A hard-linked copy of a file or folder: free, and a recipe that rewrites a file replaces only its link."""
    if Path(source).is_dir():
        shutil.copytree(source, target, copy_function=os.link)
    else:
        os.link(source, target)


def _artifact(name: str, fixture: str, key: str | int | None = None):
    def prepare(request, work, home):
        value = request.getfixturevalue(fixture)
        link(os.fspath(value if key is None else value[key]), work / name)

    return prepare


def _cached_download(request, work, home):
    """The TF-Hub classification/1 archive where ``irv2 download`` keeps it (TensorFlow writes it)."""
    import irv2.hub

    source = irv2.hub.default_source()
    target = home / irv2.hub.artifact_path(source).relative_to(irv2.hub.irv2_home())
    target.parent.mkdir(parents=True, exist_ok=True)
    link(request.getfixturevalue("tf_files")["hub_tarball"], target)


def _cached_feature_vector(request, work, home):
    """TF-Hub feature_vector/1 in the irv2 cache, converted as a first ``irv2.load`` of it leaves it (random
    weights: the default module's backbone without its classifier)."""
    import irv2.hub

    source = irv2.hub.resolve_source("google/imagenet/inception_resnet_v2/feature_vector/1")
    target = home / irv2.hub.module_cache_dir(source).relative_to(irv2.hub.irv2_home())
    target.parent.mkdir(parents=True, exist_ok=True)
    link(request.getfixturevalue("feature_vector_module"), target)


def _imagenet_standin(request, work, home):
    """ImageNet's validation layouts in miniature (conftest.imagenet_standin), linked into the recipe's folder."""
    root = request.getfixturevalue("imagenet_standin")
    for entry in sorted(root.iterdir()):
        link(entry, work / entry.name)


GIVENS: dict[str, Given] = {
    "inception_resnet_v2_2016_08_30.tar.gz": Given(
        _artifact("inception_resnet_v2_2016_08_30.tar.gz", "tf_files", "slim_tarball"), tensorflow=True
    ),
    "feature_vector_1.tar.gz": Given(_artifact("feature_vector_1.tar.gz", "feature_vector_tarball"), tensorflow=True),
    "downloaded classification/1": Given(_cached_download, tensorflow=True),
    "cached feature_vector/1": Given(_cached_feature_vector),
    "irv2.onnx": Given(_artifact("irv2.onnx", "exported", "onnx")),
    "irv2.pt": Given(_artifact("irv2.pt", "exported", "torchscript")),
    # The files the export tests check (tests/shared_exports.py): the TF-Hub module's program, a random network's
    # SavedModel.
    "irv2.pte": Given(_artifact("irv2.pte", "hub_pte", 0), tensorflow=True),
    "irv2_savedmodel": Given(_artifact("irv2_savedmodel", "imagenet_savedmodel"), tensorflow=True),
    # What the serving recipes above these blocks leave running (the shell stops it when the recipe ends).
    "server": Given(shell="irv2 serve --weights irv2-module/ --port 8501 --model-name irv2"),
    "spark": Given(python=_SPARK),  # what the pyspark shell calls `spark`, in local mode
    "ImageNet stand-in": Given(_imagenet_standin),  # val/, ILSVRC2012_img_val/ + devkit, kaggle/ (no ImageNet here)
}
