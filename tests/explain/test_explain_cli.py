"""``irv2 explain PATH... -o DIR``: the files it writes match the library, its naming, and its errors.

One run goes through a fresh interpreter as a user runs it; the others call ``main`` in this process (faster).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import irv2
from cli_runner import run_irv2
from irv2.cli import explain as explain_command
from irv2.cli.main import main
from irv2.explain import gradcam
from irv2.explain.overlay import STRIP_HEIGHT


def _library(module, path, target=None):
    """What the library gives for the image at ``path``: the Grad-CAM of one image."""
    return gradcam(module, module.preprocess(path)[None], target=target)


def _ranked_classes(module, path) -> list[int]:
    """The module's classes for the image, most probable first, from its logits (no Grad-CAM involved)."""
    logits = module(module.preprocess(path)[None])[0]
    return np.argsort(-logits).tolist()


def test_explain_writes_an_overlay_and_a_map_per_image(weights_dir, imagenet_module, image_files, tmp_path):
    out = tmp_path / "maps"  # made by the command
    chelsea, broken, coffee = image_files["chelsea"], image_files["broken"], image_files["coffee"]
    run = run_irv2("explain", chelsea, broken, coffee, "-w", weights_dir, "-o", out, "--batch-size", "2")
    assert run.returncode == 1, run.stderr  # one image failed; the others are still written
    assert f"irv2: error: {broken}: " in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.npy", "chelsea.png", "coffee.npy", "coffee.png"]

    lines = run.stdout.splitlines()
    assert len(lines) == 2  # one per PNG, nothing else
    for line, path in zip(lines, (chelsea, coffee), strict=True):
        expected = _library(imagenet_module, path)
        top = _ranked_classes(imagenet_module, path)[0]
        png, label, score = line.split("\t")
        assert png == str(out / f"{path.stem}.png")
        assert label == irv2.labels()[top] and expected.targets == [top]
        assert float(score) == pytest.approx(expected.scores[0], abs=1e-4)
        raw = np.load(out / f"{path.stem}.npy")
        assert raw.dtype == np.float32 and raw.shape == (8, 8)
        np.testing.assert_allclose(raw, expected.maps[0], atol=1e-5)
        with Image.open(out / f"{path.stem}.png") as picture:
            assert picture.format == "PNG" and picture.mode == "RGB"
            assert picture.size == (299, 299 + STRIP_HEIGHT)


def test_top_k_writes_a_pair_per_rank(weights_dir, imagenet_module, image_files, tmp_path, capsys):
    rocket = image_files["rocket"]
    assert main(["explain", str(rocket), "-w", str(weights_dir), "-o", str(tmp_path), "--top", "2", "-q"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rocket.top1.npy", "rocket.top1.png", "rocket.top2.npy", "rocket.top2.png"]
    ranked = _ranked_classes(imagenet_module, rocket)
    lines = capsys.readouterr().out.splitlines()
    for rank in (1, 2):
        target = ranked[rank - 1]
        expected = _library(imagenet_module, rocket, target=target)
        np.testing.assert_allclose(np.load(tmp_path / f"rocket.top{rank}.npy"), expected.maps[0], atol=1e-5)
        assert lines[rank - 1].split("\t")[:2] == [str(tmp_path / f"rocket.top{rank}.png"), irv2.labels()[target]]


@pytest.mark.parametrize("target", ["tabby", "7"])
def test_target_by_label_or_index(weights_dir, imagenet_module, image_files, tmp_path, capsys, target):
    chelsea = image_files["chelsea"]
    assert main(["explain", str(chelsea), "--target", target, "-w", str(weights_dir), "-o", str(tmp_path)]) == 0
    index = int(target) if target.isdigit() else irv2.labels().index(target)
    expected = _library(imagenet_module, chelsea, target=index)
    np.testing.assert_allclose(np.load(tmp_path / "chelsea.npy"), expected.maps[0], atol=1e-5)
    assert capsys.readouterr().out.split("\t")[1] == irv2.labels()[index]


def test_usage_errors_before_any_work(image_files, tmp_path, capsys):
    chelsea = str(image_files["chelsea"])
    assert main(["explain", chelsea, "--target", "tabby", "--top", "2", "-w", "unused", "-o", str(tmp_path)]) == 2
    assert "--target tabby and --top 2" in capsys.readouterr().err

    twin = tmp_path / "other" / "chelsea.png"
    twin.parent.mkdir()
    Image.open(chelsea).save(twin)
    assert main(["explain", chelsea, str(twin), "-w", "unused", "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert chelsea in error and str(twin) in error and "chelsea.png" in error

    assert main(["explain", chelsea, "-w", "unused", "-o", str(tmp_path / "no" / "such")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["explain", chelsea, "-w", "unused", "-o", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--target", "crane"], "irv2: error: --target 'crane': names 2 classes"),
        (["--target", "tabbby"], "irv2: error: --target 'tabbby': no such label; did you mean 'tabby'"),
        (["--target", "1001"], "irv2: error: --target 1001: out of range"),
        (["--top", "1002"], "irv2: error: --top 1002: this module has only 1001 classes"),
    ],
)
def test_usage_errors_about_classes(weights_dir, image_files, tmp_path, capsys, arguments, message):
    out = tmp_path / "out"
    assert main(["explain", str(image_files["chelsea"]), "-w", str(weights_dir), "-o", str(out), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing written, not even the folder


def test_a_feature_vector_module_cannot_be_explained(feature_module, image_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(explain_command, "load_module", lambda *args, **kwargs: feature_module)
    assert main(["explain", str(image_files["chelsea"]), "-w", "features-only", "-o", str(tmp_path)]) == 1
    assert "irv2: error: features-only: a feature-vector module has no classifier" in capsys.readouterr().err
