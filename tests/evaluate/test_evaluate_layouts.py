"""Every layout ``irv2 evaluate`` reads gives exactly the top-1 and top-5 its labels imply.

The labels were chosen from what the weights predict (conftest.py): 5 of the 14 readable images carry the
weights' first choice, 4 their 2nd to 5th, 5 a class ranked 700th. Each layout holds the same images under its
own names, so each must give top-1 5/14 and top-5 9/14, with the broken image under ``errors``. The devkit's
class IDs follow a shuffled order written into its ``meta.mat``: reading them in sorted order would give other
labels, and other scores.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

import irv2
from evaluate_support import (
    BROKEN,
    COUNT,
    FINETUNED_CLASSES,
    SYNSETS,
    TOP1,
    TOP5,
    devkit_order,
    image_name,
    subset_scores,
    write_devkit,
    write_flat,
    write_folders,
    write_kaggle,
    write_synsets_file,
)
from irv2.evaluate import read_layout
from irv2.evaluate.devkit import BUILT_IN
from requires import require


def _check(
    metrics: dict, *, top1: float = TOP1, top5: float = TOP5, layout: str, all_classes: tuple | None = None
) -> None:
    """The scores (``all_classes``: over every output, where the headline is over a subset of them)."""
    assert metrics["layout"] == layout
    assert (metrics["images"], metrics["errors"], metrics["inputs"]) == (COUNT - 1, 1, COUNT)
    assert metrics["top1"] == top1 and metrics["top5"] == top5  # exactly: counts over the same 14 images
    assert (metrics["top1_all_classes"], metrics["top5_all_classes"]) == (all_classes or (top1, top5))
    [failed] = metrics["error_files"]
    assert os.path.basename(failed["path"]) == image_name(BROKEN + 1) and failed["error"]
    classes = metrics["per_class"]
    assert sum(c["images"] for c in classes.values()) == COUNT - 1
    hits = sum(c["top1"] * c["images"] for c in classes.values())
    assert round(hits) == round(top1 * (COUNT - 1))
    assert [run["name"] for run in metrics["runs"]] == ["torch float32"]
    assert metrics["runs"][0]["agreement"] == {"top1": 1.0, "mean_kl": 0.0}


def _folder_scores(drawn, keys: list[str], logits: np.ndarray | None = None) -> tuple[float, float]:
    """The drawn set's class folders are a part of ImageNet's classes: scored over their own outputs."""
    logits = drawn.logits if logits is None else logits
    return subset_scores(logits, drawn.labels[:-1], sorted(set(drawn.labels)), keys)


def _numbered(labels: list[str]) -> dict[int, str]:
    return {number: label for number, label in enumerate(labels, start=1)}


def test_imagenet_folder_layout(tmp_path, drawn, eval_module):
    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    metrics = irv2.evaluate(eval_module, data, quiet=True)
    top1, top5 = _folder_scores(drawn, irv2.synsets(1001))
    _check(metrics, top1=top1, top5=top5, layout="folders", all_classes=(TOP1, TOP5))
    assert metrics["labels"] is None and metrics["classes"] == 1001
    assert metrics["scored_classes"] == len(set(drawn.labels))
    worst = metrics["worst_classes"][0]
    assert worst["top1"] == 0.0 and worst["examples"] and worst["examples"][0]["path"].startswith(str(data))


def test_kaggle_layout_found_above_the_images(tmp_path, drawn, eval_module):
    # Kaggle's download: LOC_val_solution.csv at the top, the images four folders down.
    images = write_flat(tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val", drawn.files)
    solution = write_kaggle(tmp_path / "LOC_val_solution.csv", _numbered(drawn.labels))
    metrics = irv2.evaluate(eval_module, images, quiet=True)
    _check(metrics, layout="kaggle")
    assert metrics["labels"] == str(solution)
    given = read_layout(images, labels=solution)  # named rather than found: the same labels
    assert given.labels == [(label,) for label in drawn.labels] and given.label_file == str(solution)


def test_devkit_layout_reads_the_ids_in_meta_mat_order(tmp_path, drawn, eval_module):
    require("scipy", "the devkit layout's meta.mat is read by scipy: pip install 'irv2[devkit]'")
    images = write_flat(tmp_path / "ILSVRC2012_img_val", drawn.files)
    order = devkit_order()
    truth = write_devkit(tmp_path / "ILSVRC2012_devkit_t12" / "data", _numbered(drawn.labels), order)
    metrics = irv2.evaluate(eval_module, images, labels=truth, quiet=True)
    _check(metrics, layout="devkit")
    assert metrics["synsets"] == str(truth.with_name("meta.mat"))
    # The devkit's data/ beside the images is found without --labels, as the devkit unpacks it.
    found = read_layout(images)
    assert (found.layout, found.label_file) == ("devkit", str(truth))
    assert found.labels == [(label,) for label in drawn.labels]
    # The test can fail: reading the IDs as positions in the sorted order would label these images otherwise.
    ids = [int(line) for line in truth.read_text().split()]
    assumed = [SYNSETS[i - 1] for i in ids]
    assert sum(a != b for a, b in zip(assumed, drawn.labels, strict=False)) >= COUNT - 1


def test_devkit_layout_with_a_synsets_file(tmp_path, drawn, eval_module):
    images = write_flat(tmp_path / "val", drawn.files)
    order = devkit_order()
    truth = write_devkit(tmp_path / "devkit", _numbered(drawn.labels), order, meta=False)
    synsets = write_synsets_file(tmp_path / "synsets.txt", order)
    metrics = irv2.evaluate(eval_module, images, labels=truth, synsets=synsets, quiet=True)
    _check(metrics, layout="devkit")
    assert metrics["synsets"] == str(synsets)


def test_devkit_layout_without_meta_mat_reads_the_order_irv2_ships(tmp_path, drawn):
    # No meta.mat, no --synsets: the devkit's class-ID order shipped with irv2 maps the IDs (never the sorted one).
    images = write_flat(tmp_path / "val", drawn.files)
    truth = write_devkit(tmp_path / "data", _numbered(drawn.labels), devkit_order(), meta=False)
    found = read_layout(images, labels=truth)
    assert found.labels == [(label,) for label in drawn.labels] and found.synset_map == BUILT_IN


def test_csv_of_paths_and_labels(tmp_path, drawn, eval_module):
    write_flat(tmp_path / "images", drawn.files)
    listing = tmp_path / "labels.csv"
    with open(listing, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for number, label in _numbered(drawn.labels).items():
            writer.writerow([f"images/{image_name(number)}", label])
    metrics = irv2.evaluate(eval_module, listing, quiet=True)
    _check(metrics, layout="csv")


def _expected(logits: np.ndarray, targets: np.ndarray, k: int) -> tuple[float, float]:
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float((order[:, 0] == targets).mean()), float((order == targets[:, None]).any(axis=1).mean())


def test_a_1000_class_head_scores_the_same_synsets(tmp_path, drawn, module_1000):
    """Keras' and timm's head has no "background": output i is synset i + 1 of the 1001-class head. The same
    label files must score it by synset, not by index."""
    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    metrics = irv2.evaluate(module_1000, data, quiet=True)
    targets = np.array([irv2.synsets(1000).index(label) for label in drawn.labels[:-1]])
    top1, top5 = _expected(drawn.logits[:, 1:], targets, 5)
    subset = _folder_scores(drawn, irv2.synsets(1000), drawn.logits[:, 1:])
    _check(metrics, top1=subset[0], top5=subset[1], layout="folders", all_classes=(top1, top5))
    assert metrics["classes"] == 1000
    # Without "background" among the weights' first choices, dropping it changes no ranking here.
    assert (top1, top5) == (TOP1, TOP5) and subset == _folder_scores(drawn, irv2.synsets(1001))


def _finetuned_labels(module: irv2.Module, files: list[bytes]) -> tuple[list[str], float]:
    """Labels for a fine-tuned head: the first 6 readable images get its choice, the others its last choice."""
    good = [f for i, f in enumerate(files) if i != BROKEN]
    logits = module(np.stack([module.preprocess(f) for f in good]))
    order = np.argsort(-logits, axis=1, kind="stable")
    labels = [FINETUNED_CLASSES[order[i, 0 if i < 6 else -1]] for i in range(len(good))]
    return [*labels, FINETUNED_CLASSES[0]], 6 / len(good)


def test_a_finetuned_module_with_its_own_folders_and_csv(tmp_path, drawn, finetuned):
    module = irv2.load(finetuned)
    assert module.expected_image_size == (160, 160)
    labels, top1 = _finetuned_labels(module, drawn.files)
    data = write_folders(tmp_path / "held-out", drawn.files, labels)
    metrics = irv2.evaluate(module, data, quiet=True)
    # Three classes: the "top-5" is the top 3, which always holds the label.
    _check(metrics, top1=top1, top5=1.0, layout="folders")
    assert metrics["top_k"] == 3 and set(metrics["per_class"]) <= set(FINETUNED_CLASSES)
    assert metrics["weights"] == str(finetuned)
    listing = tmp_path / "held-out.csv"
    listing.write_text(
        "".join(f"{os.path.relpath(p, tmp_path)},{label}\n" for p, label in zip(*_paths_and_labels(data), strict=True))
    )
    again = irv2.evaluate(str(finetuned), listing, quiet=True)  # by its path: irv2.load reads it
    assert (again["top1"], again["top5"], again["layout"]) == (top1, 1.0, "csv")


def _paths_and_labels(data) -> tuple[list[str], list[str]]:
    images = read_layout(data)
    return images.paths, [label for (label,) in images.labels]


def test_the_cli_gives_the_library_s_metrics(tmp_path, drawn, weights_dir, eval_module):
    from cli_runner import run_irv2

    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    out = tmp_path / "out"
    run = run_irv2("evaluate", "--data", data, "-w", weights_dir, "--out", out, "-b", "4")
    assert run.returncode == 1, run.stderr  # one image could not be read: its failure is reported, not fatal
    assert "1 of 15 images could not be read" in run.stderr and f"wrote {out}/metrics.json" in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["configuration", "images", "errors", "top-1", "top-5", "ECE", "img/s", "agreement",
                                "mean", "KL"]  # fmt: skip
    top1, top5 = _folder_scores(drawn, irv2.synsets(1001))
    assert lines[1].split()[:6] == ["torch", "float32", "14", "1", f"{100 * top1:.2f}%", f"{100 * top5:.2f}%"]
    classes = len(set(drawn.labels))
    assert lines[3] == (
        f"scored over the {classes} classes of the data's folders; over all 1001 outputs: "
        f"top-1 {100 * TOP1:.2f}%, top-5 {100 * TOP5:.2f}%"
    )
    assert f"{classes} of ImageNet's 1000 classes, scored over their own {classes} outputs" in run.stderr
    written = json.loads((out / "metrics.json").read_text())
    library = irv2.evaluate(eval_module, data, batch_size=4, quiet=True)
    for key in ("top1", "top5", "images", "errors", "error_files", "per_class", "worst_classes"):
        assert written[key] == library[key], key
    assert written["ece"] == pytest.approx(library["ece"], abs=1e-6)
    assert [b["images"] for b in written["reliability"]] == [b["images"] for b in library["reliability"]]
    assert (out / "report.html").is_file() and sorted(os.listdir(out)) == ["metrics.json", "predictions", "report.html"]
