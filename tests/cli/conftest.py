"""Fixtures for the command-line tests: small native weights, awkward image files, and a way to run ``irv2``.

The CLI runs in a process of its own, as a user runs it (``python -m irv2 ...``; cli_runner.py forks it from a
warm Python, so it does not import torch afresh), and tests put several inputs through one invocation.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import irv2
from cli_runner import run_irv2
from irv2.api.module import Module

EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="session")
def irv2_cli():
    return run_irv2


@pytest.fixture(scope="session")
def weights_module(weights_dir) -> Module:
    """The same weights, loaded in the test process, to compare the CLI with the library."""
    return irv2.load(weights_dir)


def _jpeg(image: Image.Image | np.ndarray, path: Path, **options) -> Path:
    image = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    image.save(path, "JPEG", quality=95, **options)
    return path


@pytest.fixture(scope="session")
def awkward_images(tmp_path_factory, photo_arrays) -> dict[str, Path]:
    """Real photos in the forms users' folders hold, plus three broken files. Keys name the case."""
    root = tmp_path_factory.mktemp("images")
    chelsea, coffee, rocket = photo_arrays["chelsea"], photo_arrays["coffee"], photo_arrays["rocket"]
    camera = photo_arrays["camera"][..., 0]  # the grayscale original
    files: dict[str, Path] = {}
    files["upright"] = _jpeg(chelsea, root / "chelsea.jpg")
    # Stored turned 90 degrees counter-clockwise; EXIF orientation 6 says "rotate 90 clockwise to view".
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    files["exif6"] = _jpeg(np.ascontiguousarray(np.rot90(chelsea)), root / "chelsea_phone.JPG", exif=exif)
    files["coffee"] = root / "coffee.png"
    Image.fromarray(coffee).save(files["coffee"])
    files["cmyk"] = _jpeg(Image.fromarray(coffee).convert("CMYK"), root / "coffee_cmyk.jpeg")
    files["palette"] = root / "coffee_palette.gif"
    Image.fromarray(coffee).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(files["palette"])
    files["gray"] = root / "camera_gray.png"
    Image.fromarray(camera).save(files["gray"])
    files["gray16"] = root / "camera_16bit.png"
    Image.fromarray(camera.astype(np.uint16) * 257).save(files["gray16"])  # same values, 16-bit samples
    files["rocket"] = root / "rocket.png"
    Image.fromarray(rocket).save(files["rocket"])
    files["rgba"] = root / "rocket_rgba.png"
    alpha = np.linspace(0, 255, rocket.shape[1], dtype=np.uint8)[None, :].repeat(rocket.shape[0], 0)
    Image.fromarray(np.dstack([rocket, alpha]), "RGBA").save(files["rgba"])
    whole = io.BytesIO()
    Image.fromarray(photo_arrays["astronaut"]).save(whole, "JPEG", quality=95)
    files["truncated"] = root / "astronaut_truncated.jpg"
    files["truncated"].write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    files["empty"] = root / "empty.jpg"
    files["empty"].write_bytes(b"")
    files["text"] = root / "notes.jpg"
    files["text"].write_text("shopping list: milk, eggs\n")
    return files


@pytest.fixture(scope="session")
def photo_tree(tmp_path_factory, photo_arrays) -> Path:
    """A folder tree: images at several depths, mixed-case extensions, a non-image file and hidden entries."""
    root = tmp_path_factory.mktemp("tree")
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    small = {name: Image.fromarray(image).resize((160, 120)) for name, image in photo_arrays.items()}
    small["astronaut"].save(root / "z_astronaut.PNG")
    small["chelsea"].save(root / "a_chelsea.jpg")
    small["coffee"].save(root / "b" / "coffee.Jpeg")
    small["rocket"].save(root / "b" / "deep" / "rocket.webp")
    small["camera"].save(root / "b" / "camera.tif")
    small["camera"].save(root / ".hidden" / "skipped.png")
    small["camera"].save(root / "._resource_fork.jpg")
    (root / "b" / "README.txt").write_text("not an image\n")
    return root


@pytest.fixture(autouse=True)
def _restore_flush_denormal():
    """Tests that call ``irv2.cli.main.main`` in this process let it flush subnormals; undo it afterwards."""
    yield
    torch.set_flush_denormal(False)  # PyTorch's default
