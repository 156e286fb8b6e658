"""Data irv2 cannot score is refused before any image is run, with an error naming both sides: the label file
and the images, or the labels and the weights. A broken image is never one of these: it is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

import irv2
from evaluate_support import (
    SYNSETS,
    devkit_order,
    image_name,
    shuffled_order,
    write_devkit,
    write_flat,
    write_folders,
    write_kaggle,
)
from irv2.cli.main import main
from irv2.errors import LabelMismatchError, LayoutError, OptionError
from irv2.evaluate import read_layout
from listing_support import refuse_listing
from requires import require


@pytest.fixture
def flat(tmp_path, drawn):
    return write_flat(tmp_path / "val", drawn.files)


def _numbered(labels):
    return dict(enumerate(labels, start=1))


def test_a_kaggle_file_without_rows_for_some_images_names_both(tmp_path, flat, drawn):
    labels = _numbered(drawn.labels)
    del labels[3], labels[9]
    solution = write_kaggle(tmp_path / "LOC_val_solution.csv", labels)
    with pytest.raises(LabelMismatchError) as caught:
        read_layout(flat, labels=solution)
    message = str(caught.value)
    assert str(solution) in message and str(flat) in message
    assert "2 of 15 images have no row there" in message and image_name(3) in message and image_name(9) in message


def test_a_ground_truth_shorter_than_the_images_names_both(tmp_path, flat, drawn):
    labels = dict(list(_numbered(drawn.labels).items())[:10])
    truth = write_devkit(tmp_path / "data", labels, devkit_order(), meta=False)
    (tmp_path / "synsets.txt").write_text("\n".join(devkit_order()) + "\n")
    with pytest.raises(LabelMismatchError) as caught:
        read_layout(flat, labels=truth, synsets=tmp_path / "synsets.txt")
    message = str(caught.value)
    assert str(truth) in message and str(flat) in message and "5 of 15 images have no line there" in message
    assert "images 1 to 10" in message


def test_labels_the_weights_do_not_have_name_the_folder_and_the_weights(tmp_path, drawn, eval_module, weights_dir):
    labels = [*drawn.labels[:-2], "n99999999", "tabby"]
    data = write_folders(tmp_path / "val", drawn.files, labels)
    with pytest.raises(LabelMismatchError) as caught:
        irv2.evaluate(eval_module, data, quiet=True)
    message = str(caught.value)
    assert str(data) in message and str(weights_dir) in message
    assert "'n99999999'" in message and "'tabby'" in message and "synset" in message


def test_background_is_never_a_label(tmp_path, drawn, eval_module):
    data = write_folders(tmp_path / "val", drawn.files, [*drawn.labels[:-1], "background"])
    with pytest.raises(LabelMismatchError, match="'background'"):
        irv2.evaluate(eval_module, data, quiet=True)


def test_a_flat_folder_without_labels_is_no_layout(tmp_path, flat):
    with pytest.raises(LayoutError) as caught:
        read_layout(flat)
    message = str(caught.value)
    assert str(flat) in message and "15 images" in message
    assert "LOC_val_solution.csv" in message and "ILSVRC2012_validation_ground_truth.txt" in message


def test_a_label_file_in_no_known_format_is_named(tmp_path, flat):
    other = tmp_path / "labels.txt"
    other.write_text("cat\ndog\n")
    with pytest.raises(LayoutError, match=f"{other}: not a label file irv2 reads"):
        read_layout(flat, labels=other)
    with pytest.raises(LayoutError, match="no such folder or CSV file"):
        read_layout(tmp_path / "missing")
    with pytest.raises(LayoutError, match="is a label file: pass the folder of images as --data"):
        read_layout(write_kaggle(tmp_path / "LOC_val_solution.csv", {1: "n01440764"}))


def test_synsets_only_go_with_the_devkit(tmp_path, drawn):
    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    with pytest.raises(OptionError, match="synsets: --synsets maps the devkit"):
        read_layout(data, synsets=tmp_path / "synsets.txt")


def test_the_cli_reports_a_mismatch_as_one_line_naming_both(tmp_path, flat, drawn, weights_dir, capsys):
    labels = _numbered(drawn.labels)
    del labels[1]
    solution = write_kaggle(tmp_path / "LOC_val_solution.csv", labels)
    assert main(["evaluate", "--data", str(flat), "--labels", str(solution), "-w", str(weights_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"irv2: error: {solution} does not match the images in {flat}") and err.count("\n") == 1


def test_a_layout_asked_for_that_the_data_is_not_in_is_refused_before_loading(tmp_path, drawn):
    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    # The weights are a path that does not exist: the refusal comes before any attempt to load them.
    with pytest.raises(LayoutError, match=f"{data}: in the folders layout, not the devkit layout"):
        irv2.evaluate(str(tmp_path / "no-weights"), data, layout="devkit", quiet=True)
    with pytest.raises(LayoutError, match=r"not the real layout \(ReaL's labels: --real-labels FILE\)"):
        irv2.evaluate(str(tmp_path / "no-weights"), data, layout="real", quiet=True)


def test_bad_options_are_usage_errors_found_before_the_data_is_read(tmp_path, weights_dir, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["evaluate", "--data", str(tmp_path), "--batch-size", "0"])
    assert caught.value.code == 2
    code = main(["evaluate", "--data", str(tmp_path / "missing"), "-w", str(weights_dir), "--dtype", "float16"])
    assert code == 2 and "irv2: error: dtype float16: float16 runs on GPUs" in capsys.readouterr().err
    with pytest.raises(OptionError, match="chunk_size must be a whole number of at least 1"):
        irv2.evaluate(None, tmp_path, chunk_size=0)


@pytest.fixture
def devkit_truth(tmp_path, drawn) -> Path:
    return write_devkit(tmp_path / "data", _numbered(drawn.labels), devkit_order(), meta=False)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (SYNSETS, r"in sorted order \(n01440764 first\)"),  # TF-Slim's and timm's synsets file
        (shuffled_order(), "ID 1 is .* here, but n02119789 in the devkit's data/meta.mat"),
        (["background", *SYNSETS], "line 1: expected one WordNet ID"),  # a 1001-line list
        ([SYNSETS[i % 1000] for i in range(50_000)], "holds 50000 synsets, not 1000"),  # one line per image
        ([*devkit_order()[:999], devkit_order()[0]], "n02119789 is on lines 1 and 1000"),
        ([*devkit_order()[:999], "n99999999"], "n99999999 is not one of ImageNet's 1000 synsets"),
    ],
    ids=["sorted", "shuffled", "with-background", "per-image", "repeated", "unknown"],
)
def test_a_synsets_file_in_any_order_but_the_devkit_s_is_refused(tmp_path, flat, devkit_truth, lines, expected):
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("\n".join(lines) + "\n")
    with pytest.raises(LayoutError, match=expected) as caught:
        read_layout(flat, labels=devkit_truth, synsets=synsets)
    message = str(caught.value)
    assert str(synsets) in message and "--synsets takes the devkit's map" in message
    assert "irv2 ships that order: leave --synsets out" in message


def test_a_meta_mat_in_another_order_is_refused(tmp_path, flat, drawn):
    require("scipy", "the devkit layout's meta.mat is read by scipy: pip install 'irv2[devkit]'")
    truth = write_devkit(tmp_path / "data", _numbered(drawn.labels), shuffled_order())  # and its meta.mat
    with pytest.raises(LayoutError, match=r"but n02119789 in the devkit's data/meta\.mat") as caught:
        read_layout(flat, labels=truth)
    assert str(truth.with_name("meta.mat")) in str(caught.value) and "move it away" in str(caught.value)


def test_a_stray_photo_beside_the_validation_images_is_refused(flat, devkit_truth):
    (flat / "IMG_0001.jpg").write_bytes((flat / image_name(1)).read_bytes())
    with pytest.raises(LayoutError) as caught:
        read_layout(flat, labels=devkit_truth)
    message = str(caught.value)
    assert str(flat) in message and "IMG_0001.jpg" in message and "1 of 16 images are not named" in message
    assert "Move them out of the folder" in message


def test_a_copy_in_a_subfolder_is_refused_not_counted_twice(flat, devkit_truth, drawn):
    (flat / "copies").mkdir()
    (flat / "copies" / image_name(3)).write_bytes((flat / image_name(3)).read_bytes())
    with pytest.raises(LayoutError, match=f"are both validation image 3; {devkit_truth} labels each image once"):
        read_layout(flat, labels=devkit_truth)
    solution = write_kaggle(flat.parent / "LOC_val_solution.csv", _numbered(drawn.labels))
    with pytest.raises(LayoutError, match=f"both validation image {image_name(3)[:-5]}; {solution} labels each"):
        read_layout(flat, labels=solution)


def test_a_blank_line_inside_the_ground_truth_is_refused(flat, devkit_truth):
    lines = devkit_truth.read_text().splitlines()
    devkit_truth.write_text("\n".join([*lines[:4], "", *lines[4:]]) + "\n\n\n")  # blank lines at the end are fine
    with pytest.raises(LayoutError, match=f"{devkit_truth}, line 5: a blank line before the last class ID"):
        read_layout(flat, labels=devkit_truth)
    devkit_truth.write_text("\n".join(lines) + "\n\n\n")
    assert len(read_layout(flat, labels=devkit_truth).paths) == 15


def test_a_folder_that_cannot_be_listed_is_an_error_row(tmp_path, drawn, eval_module, monkeypatch):
    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    hidden = data / drawn.labels[0] / "more"
    hidden.mkdir()
    refuse_listing(monkeypatch, hidden)
    metrics = irv2.evaluate(eval_module, data, quiet=True)
    assert (metrics["inputs"], metrics["errors"]) == (16, 2)
    assert {"path": str(hidden), "error": "cannot list folder (Permission denied)"} in metrics["error_files"]
    flat = write_flat(tmp_path / "flat", drawn.files)
    hidden = flat / "more"
    hidden.mkdir()
    refuse_listing(monkeypatch, hidden)
    listed = read_layout(flat, labels=write_kaggle(tmp_path / "LOC_val_solution.csv", _numbered(drawn.labels)))
    assert listed.errors == {str(hidden): "cannot list folder (Permission denied)"} and str(hidden) in listed.paths


def test_a_hostile_file_name_is_escaped_in_the_report(tmp_path, drawn, eval_module):
    hostile = '<img src=x onerror="alert(1)">&'
    data = tmp_path / "val"
    for number in (10, 11):  # labelled with a class the weights rank 700th: both among the worst's examples
        (data / drawn.labels[number]).mkdir(parents=True, exist_ok=True)
        (data / drawn.labels[number] / f"{hostile}{number}.jpg").write_bytes(drawn.files[number])
    (data / drawn.labels[10] / f"{hostile}.jpg").write_bytes(b"broken")
    irv2.evaluate(eval_module, data, out=tmp_path / "out", quiet=True)
    html = (tmp_path / "out" / "report.html").read_text()
    assert hostile not in html and "<img src=x" not in html
    assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;") >= 3  # two examples, one error
