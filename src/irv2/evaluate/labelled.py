"""What a layout reader gives: the images of an evaluation, each with the labels that count as right."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LabelledImages:
    """Images to evaluate, each with its labels, in a stable order.

    Attributes:
        paths: the image files (broken ones included: the run counts them as errors), and folders that could not
            be listed (in ``errors``).
        labels: per path, the labels that count as right: one synset (``n01440764``) or a fine-tuned module's
            class name; ReaL's set of synsets; none for a row in ``errors``.
        layout: one of :data:`LAYOUTS`.
        data: the folder or CSV the images came from.
        label_file: the Kaggle, devkit or ReaL label file, when the layout has one.
        synset_map: the devkit layout's ID → synset map (``meta.mat`` or the ``--synsets`` file).
        errors: rows that are not images to run, with the reason: folders that could not be listed.
        classes: the folders layouts' class folders (those whose images could not be read included).
        without_labels: ReaL's images whose set of labels is empty, left out of ``paths``.
    """

    paths: list[str]
    labels: list[tuple[str, ...]]
    layout: str
    data: str
    label_file: str | None = None
    synset_map: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    without_labels: int = 0
