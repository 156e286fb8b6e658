"""Data irv2 cannot score is refused before any image is run, with an error naming both sides: the label file
and the images, or the labels and the weights. A broken image is never one of these: it is counted."""

from __future__ import annotations

import pytest

import irv2
from evaluate_support import devkit_order, image_name, write_devkit, write_flat, write_folders, write_kaggle
from irv2.cli.main import main
from irv2.errors import LabelMismatchError, LayoutError, OptionError
from irv2.evaluate import read_layout


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


def test_a_ground_truth_without_its_synset_map_never_assumes_the_sorted_order(tmp_path, flat, drawn):
    truth = write_devkit(tmp_path / "data", _numbered(drawn.labels), devkit_order(), meta=False)
    with pytest.raises(LayoutError) as caught:
        read_layout(flat, labels=truth)
    message = str(caught.value)
    assert str(truth) in message and "meta.mat" in message and "--synsets" in message
    assert "never assumes the sorted order" in message


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


def test_bad_options_are_usage_errors_found_before_the_data_is_read(tmp_path, weights_dir, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["evaluate", "--data", str(tmp_path), "--batch-size", "0"])
    assert caught.value.code == 2
    code = main(["evaluate", "--data", str(tmp_path / "missing"), "-w", str(weights_dir), "--dtype", "float16"])
    assert code == 2 and "irv2: error: dtype float16: float16 runs on GPUs" in capsys.readouterr().err
    with pytest.raises(OptionError, match="chunk_size must be a whole number of at least 1"):
        irv2.evaluate(None, tmp_path, chunk_size=0)
