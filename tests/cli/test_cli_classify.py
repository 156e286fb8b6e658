"""``irv2 classify`` run as a user runs it: awkward real photos, broken files, folders, globs, stdin, formats."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import irv2
from irv2.api.module import Module, ModuleInfo
from irv2.cli.main import main
from irv2.model import InceptionResNetV2

# The order the awkward files are passed in; the broken ones sit between good ones and across batches.
AWKWARD_ORDER = (
    "upright", "exif6", "truncated", "coffee", "cmyk", "palette", "empty", "gray", "gray16", "rocket", "text", "rgba",
)  # fmt: skip
BROKEN = {"truncated": "truncated or corrupt", "empty": "empty file", "text": "not a recognised image file"}


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _library_top5(module: Module, paths: list[Path]) -> list[list[irv2.Prediction]]:
    return irv2.top_k(module(np.stack([irv2.load_image(path) for path in paths])), k=5)


def test_awkward_images_json(irv2_cli, weights_dir, weights_module, awkward_images):
    paths = [str(awkward_images[key]) for key in AWKWARD_ORDER]
    run = irv2_cli("classify", *paths, "--weights", weights_dir, "--format", "json", "--batch-size", "4")
    assert run.returncode == 1, run.stderr
    rows = dict(zip(AWKWARD_ORDER, _json_lines(run.stdout), strict=True))  # every line is JSON, one per input
    assert [row["path"] for row in rows.values()] == paths  # input order, errors in their place
    good = [key for key in AWKWARD_ORDER if key not in BROKEN]
    library = dict(zip(good, _library_top5(weights_module, [awkward_images[key] for key in good]), strict=True))
    for key, row in rows.items():
        if key in BROKEN:
            assert set(row) == {"path", "error"} and BROKEN[key] in row["error"], row
            assert not row["error"].startswith(row["path"])  # the row already names the file
            continue
        predictions = row["predictions"]
        assert len(predictions) == 5
        assert [p["score"] for p in predictions] == sorted((p["score"] for p in predictions), reverse=True)
        assert all(p["label"] == irv2.labels()[p["index"]] for p in predictions)
        # The CLI gives what the library gives for that file (batching must not mix images up).
        expected = library[key]
        assert [p["index"] for p in predictions] == [p.index for p in expected], key
        np.testing.assert_allclose([p["score"] for p in predictions], [p.score for p in expected], atol=1e-6)
    assert f"{len(BROKEN)} of {len(paths)} images could not be classified" in run.stderr

    def scores(key):
        return np.array([p["score"] for p in rows[key]["predictions"]])

    # EXIF orientation 6 is applied: the phone photo is classified like the upright one (JPEG tolerance).
    assert rows["exif6"]["predictions"][0]["index"] == rows["upright"]["predictions"][0]["index"]
    np.testing.assert_allclose(scores("exif6"), scores("upright"), atol=1e-2)
    # Alpha is dropped and 16-bit samples keep their values: these decode to exactly the same pixels.
    assert [p["index"] for p in rows["rgba"]["predictions"]] == [p["index"] for p in rows["rocket"]["predictions"]]
    np.testing.assert_allclose(scores("rgba"), scores("rocket"), atol=1e-6)
    np.testing.assert_allclose(scores("gray16"), scores("gray"), atol=1e-6)


def test_exif_rotated_photo_is_upright(weights_module, awkward_images):
    upright = irv2.load_image(awkward_images["upright"])
    rotated = irv2.load_image(awkward_images["exif6"])
    # The same stored pixels read without their EXIF tag: what an EXIF-blind decoder would see.
    stored = np.asarray(Image.open(awkward_images["exif6"]))
    ignored = irv2.preprocessing.preprocess_for_eval(stored)
    assert np.abs(rotated - upright).mean() < 0.01  # JPEG noise only
    assert np.abs(ignored - upright).mean() > 0.05  # so the check above can fail
    logits = weights_module(np.stack([upright, rotated, ignored]))
    assert np.abs(logits[1] - logits[0]).max() < 0.5 * np.abs(logits[2] - logits[0]).max()


def test_cmyk_and_palette_decode_like_the_rgb_original(awkward_images):
    rgb = irv2.load_image(awkward_images["coffee"])
    for key in ("cmyk", "palette"):
        assert np.abs(irv2.load_image(awkward_images[key]) - rgb).mean() < 0.02, key


def test_text_and_csv_formats_top_k_and_quiet(irv2_cli, weights_dir, awkward_images, capsys):
    good = [str(awkward_images["upright"]), str(awkward_images["rocket"])]
    assert main(["classify", *good, "-w", str(weights_dir), "--top", "3"]) == 0
    text = capsys.readouterr()
    lines = text.out.splitlines()
    assert len(lines) == 2 * (1 + 3)
    assert lines[0] == good[0] and lines[4] == good[1]
    for line in lines[1:4] + lines[5:8]:
        score, label, index = line.strip().split("  ")
        assert line.startswith("  ") and 0 < float(score) < 1
        assert irv2.labels()[int(index.strip("()"))] == label
    assert text.err == ""  # nothing failed, and no terminal for a progress bar

    broken = str(awkward_images["text"])
    table = irv2_cli("classify", good[0], broken, good[1], "-w", weights_dir, "-k", "2", "-f", "csv", "--quiet")
    assert table.returncode == 1
    assert table.stderr == ""  # --quiet: no summary; the error is in the results
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert table.stdout.startswith("path,rank,index,label,score,error\n")
    assert [(r["path"], r["rank"]) for r in rows] == [(good[0], "1"), (good[0], "2"), (broken, ""), (good[1], "1"),
                                                      (good[1], "2")]  # fmt: skip
    assert "not a recognised image file" in rows[2]["error"] and rows[2]["score"] == ""
    assert all(r["error"] == "" and irv2.labels()[int(r["index"])] == r["label"] for r in rows if r["rank"])


def test_folders_globs_and_stdin(irv2_cli, weights_dir, photo_tree):
    stdin = "a_chelsea.jpg\n\nb/camera.tif\n"
    run = irv2_cli(
        "classify", ".", "**/*.webp", "-", "missing.png", "nothing*.jpg", "-w", weights_dir, "-f", "json", "-k", "1",
        stdin=stdin, cwd=photo_tree,
    )  # fmt: skip
    assert run.returncode == 1  # the missing file and the pattern that matches nothing
    rows = _json_lines(run.stdout)
    folder = [
        "./a_chelsea.jpg",
        "./b/camera.tif",
        "./b/coffee.Jpeg",
        "./b/deep/rocket.webp",
        "./z_astronaut.PNG",
    ]  # sorted, any-case extensions; README.txt, hidden folders and ._ files skipped
    expected = [*folder, "b/deep/rocket.webp", "a_chelsea.jpg", "b/camera.tif", "missing.png", "nothing*.jpg"]
    assert [row["path"] for row in rows] == expected
    assert all("predictions" in row for row in rows[:-2])
    assert rows[-2]["error"] == "no such file or folder"
    assert "no file matches" in rows[-1]["error"]
    # The same image reached three ways gets the same answer.
    assert rows[0]["predictions"] == rows[6]["predictions"]
    assert rows[3]["predictions"] == rows[5]["predictions"]


def test_usage_errors_exit_2(irv2_cli, tmp_path, capsys, monkeypatch):
    run = irv2_cli("classify")  # no PATH: argparse's usage error, through the real script
    assert run.returncode == 2 and "usage: irv2 classify" in run.stderr and run.stdout == ""
    for argv in (["classify", "x.jpg", "--top", "0"], ["classify", "x.jpg", "-f", "xml"], ["nonsense"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "empty_folder" / "notes.txt").write_text("no images here")
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "empty_folder"), "-w", "unused"]) == 2  # checked before loading
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert main(["classify", "-", "-w", "unused"]) == 2  # nothing on stdin
    err = capsys.readouterr().err
    assert "no images in this folder" in err and "no input images found" in err


def test_weights_that_cannot_be_loaded(irv2_cli, tmp_path, awkward_images, capsys, monkeypatch):
    (tmp_path / "broken.ckpt").write_bytes(b"\0" * 100)
    run = irv2_cli("classify", awkward_images["upright"], "-w", tmp_path / "broken.ckpt")
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith(f"irv2: error: {tmp_path / 'broken.ckpt'}: ") and "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1
    assert main(["classify", str(awkward_images["upright"]), "-w", str(tmp_path / "missing")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"irv2: error: {tmp_path / 'missing'}: ")
    # No --weights: the default weights, which an empty cache cannot provide offline.
    monkeypatch.setenv("IRV2_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setenv("IRV2_OFFLINE", "1")
    assert main(["classify", str(awkward_images["upright"])]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("irv2: error: ") and "offline" in captured.err


@pytest.fixture(scope="module")
def custom_heads(tmp_path_factory) -> dict[str, Path]:
    """A 10-class head without labels, and a features-only module (no classifier)."""
    root = tmp_path_factory.mktemp("heads")
    model = InceptionResNetV2(num_classes=10, aux_logits=False).eval()
    irv2.save(Module(model, ModuleInfo(10, None)), root / "ten")
    model.reset_classifier(0)
    irv2.save(Module(model, ModuleInfo(0, None, default_signature=irv2.FEATURE_VECTOR)), root / "features")
    return {"ten": root / "ten", "features": root / "features"}


def test_head_without_labels_and_features_only_module(custom_heads, awkward_images, capsys):
    image = str(awkward_images["rocket"])
    assert main(["classify", image, "-w", str(custom_heads["ten"]), "-f", "json", "-k", "10"]) == 0
    (row,) = _json_lines(capsys.readouterr().out)
    assert sorted(p["index"] for p in row["predictions"]) == list(range(10))
    assert all(p["label"] == str(p["index"]) for p in row["predictions"])
    assert main(["classify", image, "-w", str(custom_heads["features"])]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "without a classifier" in captured.err and "irv2 features" in captured.err


def test_installed_console_script(weights_dir, awkward_images, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"irv2 {irv2.__version__}"
    script = Path(sys.executable).parent / "irv2"
    assert script.is_file(), "pip install -e . creates the irv2 script"
    run = subprocess.run(
        [script, "classify", awkward_images["rocket"], "-w", weights_dir, "-f", "csv", "-k", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1].startswith(f"{awkward_images['rocket']},1,")


# Measured on CPU (torch 2.13, 2 cores): classifying one small photo peaks at ~690 MB of RSS (torch and the
# 224 MB of weights); with the 10000 x 8000 photo it peaks at ~1.22 GB, 3.4 s. The difference, ~540 MB, is
# twice the decoded photo (240 MB of RGB): Pillow's buffer plus numpy's copy of it, alive together for a
# moment. Passing the photo twice costs no more, so nothing accumulates across images. The bounds below
# allow that plus ~270 MB (a third of the photo) of slack for allocator and library-version differences.
BIG_SIZE = (10_000, 8_000)
BIG_PIXEL_BYTES = BIG_SIZE[0] * BIG_SIZE[1] * 3
PEAK_RSS_LIMIT = 1_500 * 2**20


def test_huge_photo_is_classified_in_bounded_memory(weights_dir, photo_arrays, awkward_images, tmp_path):
    big = tmp_path / "astronaut_80mp.jpg"
    Image.fromarray(photo_arrays["astronaut"]).resize(BIG_SIZE, Image.Resampling.BILINEAR).save(big, quality=90)
    small = awkward_images["rocket"]
    # A fresh interpreter runs the CLI twice, so RUSAGE_CHILDREN sees only these two runs: the peak after the
    # small run, then after the one with the big photo (ru_maxrss of children is their largest peak, in KiB).
    probe = textwrap.dedent(
        f"""
        import json, resource, subprocess, sys
        peaks, outputs = [], []
        for paths in ([{str(small)!r}], [{str(big)!r}, {str(small)!r}, {str(big)!r}]):
            run = subprocess.run([sys.executable, "-m", "irv2", "classify", *paths, "-w", {str(weights_dir)!r},
                                  "-f", "json", "-k", "1", "-b", "2"], capture_output=True, text=True)
            outputs.append([run.returncode, run.stdout, run.stderr])
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
        print(json.dumps({{"peaks": peaks, "outputs": outputs}}))
        """
    )
    result = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                                       check=True).stdout)  # fmt: skip
    (small_peak, big_peak), (_, (returncode, stdout, stderr)) = result["peaks"], result["outputs"]
    assert returncode == 0, stderr
    rows = _json_lines(stdout)
    assert [row["path"] for row in rows] == [str(big), str(small), str(big)]
    (first,), (again,) = rows[0]["predictions"], rows[2]["predictions"]
    # Batches of different sizes may round differently in the last bits (oneDNN blocks them differently).
    assert first["index"] == again["index"] and first["score"] == pytest.approx(again["score"], rel=1e-5)
    assert big_peak < PEAK_RSS_LIMIT, f"peak RSS {big_peak / 2**20:.0f} MB"
    assert big_peak - small_peak < 3 * BIG_PIXEL_BYTES, f"{(big_peak - small_peak) / 2**20:.0f} MB for decoding"


def test_pipe_closed_early_is_quiet(weights_dir, awkward_images):
    # `irv2 classify ... | head -1`: the reader goes away; irv2 must not print a BrokenPipe traceback.
    paths = [str(awkward_images[key]) for key in ("upright", "rocket", "coffee")]
    command = [sys.executable, "-m", "irv2", "classify", *paths, "-w", str(weights_dir), "-b", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        first = process.stdout.readline()
        process.stdout.close()
        _, stderr = process.communicate(timeout=300)
    assert first.decode().strip() == paths[0]
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr and b"Exception ignored" not in stderr
