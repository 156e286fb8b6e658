"""What the docs' recipes run on: a working folder with the files they name, and an offline irv2 cache.

Every recipe runs in a fresh folder holding the inputs the docs use (``cat.jpg``, ``photos/`` with one
subfolder per class, ``@paths.txt`` lists, WebDataset shards, native modules called ``my-module/`` and so on)
as hard links to one session-wide copy, with ``IRV2_HOME`` pointing at a cache in which the default handle
(TF-Hub classification/1) is already converted, so ``irv2.load()`` and ``irv2 classify`` resolve offline
(``IRV2_OFFLINE=1``) to a random-weight module instead of downloading 220 MB. Anything more a recipe needs
is a *given*, named in the doc (``<!-- recipe: given irv2.onnx -->``) and prepared as givens.py says.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from givens import link
from PIL import Image

from cli_runner import run_irv2

_MODULES = ("my-module", "irv2-module", "my-finetuned-model")


def _jpeg(array: np.ndarray, path: Path, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)


def _shard(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def recipe_inputs(tmp_path_factory, weights_dir, photo_arrays) -> Path:
    """``work/``: the files the recipes name; ``home/``: an irv2 cache holding the default module."""
    import irv2.hub

    root = tmp_path_factory.mktemp("recipe-inputs")
    work, home = root / "work", root / "home"
    (root / "engines").mkdir()
    cat, coffee = photo_arrays["chelsea"], photo_arrays["coffee"]
    _jpeg(cat, work / "cat.jpg", quality=90)
    _jpeg(coffee, work / "new_photo.jpg", quality=90)
    _jpeg(coffee, work / "new-photo.jpg", quality=90)
    # One subfolder per class, as fine-tuning reads it (classify and features search folders recursively).
    # Two images per class, the fewest fine-tuning accepts (one to train, one to validate): the recipes
    # train every layer for 10 epochs at 299 px, minutes on two cores even so.
    for folder in ("photos", "my_photos"):
        _jpeg(cat, work / folder / "cat" / "chelsea.jpg")
        _jpeg(cat[40:, ::-1].copy(), work / folder / "cat" / "chelsea-mirrored.png")
        _jpeg(photo_arrays["astronaut"], work / folder / "space" / "astronaut.jpg")
        _jpeg(photo_arrays["rocket"], work / folder / "space" / "rocket.jpg")
    photos = sorted(str(p) for p in (work / "photos").rglob("*.*"))
    (work / "paths.txt").write_text("".join(f"{p}\n" for p in photos))
    (work / "more_paths.txt").write_text(f"{work / 'cat.jpg'}\n{work / 'new_photo.jpg'}\n")
    encoded = {name: (work / "photos" / name).read_bytes() for name in ("cat/chelsea.jpg", "space/rocket.jpg")}
    _shard(work / "shards" / "shard-000.tar", {"000000.jpg": encoded["cat/chelsea.jpg"], "000000.cls": b"1"})
    _shard(work / "shards" / "shard-001.tar", {"000001.jpg": encoded["space/rocket.jpg"], "000001.cls": b"2"})
    for name in _MODULES:
        link(weights_dir, work / name)
    default = irv2.hub.module_cache_dir(irv2.hub.default_source()).relative_to(irv2.hub.irv2_home())
    (home / default).parent.mkdir(parents=True)
    link(weights_dir, home / default)
    return root


@pytest.fixture
def recipe_folders(recipe_inputs, tmp_path) -> tuple[Path, Path]:
    """``(work, home)`` for one recipe: hard-linked copies of ``recipe_inputs``, free to change.

    ``home/engines`` is one folder for the whole session: recipes run with the engine left to irv2, as users
    do, and the models it converts (keyed by the weights' sha256) are converted once, not once per recipe."""
    work, home = tmp_path / "work", tmp_path / "home"
    link(recipe_inputs / "work", work)
    link(recipe_inputs / "home", home)
    (home / "engines").symlink_to(recipe_inputs / "engines", target_is_directory=True)
    return work, home


@pytest.fixture(scope="session")
def feature_vector_module(tmp_path_factory, weights_dir) -> Path:
    """The random module without its classifier, as a native feature-vector module (what irv2 caches for
    TF-Hub feature_vector/1)."""
    import irv2
    from irv2.api import Module, ModuleInfo

    module = irv2.load(weights_dir)
    module.model.reset_classifier(0)
    info = ModuleInfo(0, None, default_signature=irv2.FEATURE_VECTOR, preprocessing=module.preprocessing)
    return irv2.save(Module(module.model, info), tmp_path_factory.mktemp("feature_vector_module") / "module")


@pytest.fixture(scope="session")
def exported(tmp_path_factory, weights_dir) -> dict[str, Path]:
    """The random module as ``irv2 export`` writes it: ``{"onnx": irv2.onnx, "torchscript": irv2.pt}``.

    Without the export's own check (tests/export holds every export to it), to save a minute.
    """
    root = tmp_path_factory.mktemp("exported")
    paths = {"onnx": root / "irv2.onnx", "torchscript": root / "irv2.pt"}
    for fmt, path in paths.items():
        result = run_irv2("export", "-w", weights_dir, "-f", fmt, "--no-verify", "-o", path)
        assert result.returncode == 0, result.stderr
    return paths


@pytest.fixture(scope="session")
def feature_vector_tarball(tmp_path_factory, tf_files) -> Path:
    """A compressed TF-Hub feature_vector/1 module, as TF-Hub serves it (TensorFlow writes the module)."""
    path = tmp_path_factory.mktemp("feature_vector") / "feature_vector_1.tar.gz"
    folder = Path(tf_files["hub_feature_vector"])
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for entry in sorted(folder.iterdir()):
            tar.add(entry, arcname=entry.name)
    return path


@pytest.fixture(scope="session")
def imagenet_standin(tmp_path_factory, photo_arrays) -> Path:
    """ImageNet's validation set as it is distributed, in miniature (docs/evaluate.md's recipes): 12 drawn
    images of 4 classes as ``val/<synset>/`` folders (and as ``sketch/`` and ``imagenet-r/``, which come in the
    same layout), flat in ``ILSVRC2012_img_val/`` beside the devkit's ``ILSVRC2012_devkit_t12/data/`` (ground
    truth and ``meta.mat``) and ReaL's ``real.json``, in Kaggle's ``kaggle/ILSVRC/Data/CLS-LOC/val/`` under its
    ``LOC_val_solution.csv``, and as ImageNet-V2's numbered folders."""
    from evaluate_support import (
        SYNSETS,
        devkit_order,
        draw_images,
        write_devkit,
        write_flat,
        write_folders,
        write_imagenet_v2,
        write_kaggle,
        write_real,
        write_synsets_file,
    )

    root = tmp_path_factory.mktemp("imagenet-standin")
    files = draw_images(photo_arrays, 12)
    labels = [SYNSETS[[281, 282, 417, 504][i % 4]] for i in range(12)]  # tabby, tiger cat, balloon, coffee mug
    numbered = dict(enumerate(labels, start=1))
    for name in ("val", "sketch", "imagenet-r"):
        write_folders(root / name, files, labels)
    write_flat(root / "ILSVRC2012_img_val", files)
    order = devkit_order()
    write_devkit(root / "ILSVRC2012_devkit_t12" / "data", numbered, order)
    write_synsets_file(root / "devkit_synsets.txt", order)
    write_real(root / "real.json", [[label, SYNSETS[282]] if label == SYNSETS[281] else [label] for label in labels])
    write_imagenet_v2(root / "imagenetv2-matched-frequency-format-val", files, labels)
    write_flat(root / "kaggle" / "ILSVRC" / "Data" / "CLS-LOC" / "val", files)
    write_kaggle(root / "kaggle" / "LOC_val_solution.csv", numbered)
    return root
