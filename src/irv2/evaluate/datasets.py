"""Which ImageNet evaluation set an evaluation ran on, from facts shipped with irv2 (``data/``, sources in its
README): the devkit's class-ID order, and the 200 classes of ImageNet-A and of ImageNet-R.

An evaluation is named after its set where the layout says so: Kaggle's and the devkit's files label the
validation set, ReaL's its images, ImageNet-V2 has numbered folders, and ImageNet-A and -R have their own 200
class folders. A folder of all 1000 classes may be the validation set or ImageNet-Sketch; irv2 does not guess.
"""

from __future__ import annotations

import functools
from importlib import resources

from .labelled import LabelledImages

VAL, REAL, IMAGENET_V2, IMAGENET_A, IMAGENET_R, SKETCH = (
    "val", "real", "imagenet-v2", "imagenet-a", "imagenet-r", "sketch",
)  # fmt: skip
SET_NAMES = {
    VAL: "ILSVRC-2012 validation",
    REAL: "ReaL (ILSVRC-2012 validation, relabelled)",
    IMAGENET_V2: "ImageNet-V2 matched-frequency",
    SKETCH: "ImageNet-Sketch",
    IMAGENET_R: "ImageNet-R",
    IMAGENET_A: "ImageNet-A",
}
_BY_LAYOUT = {"kaggle": VAL, "devkit": VAL, "real": REAL, "imagenet-v2": IMAGENET_V2}


@functools.cache
def _read(name: str) -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return tuple(text.split())


def devkit_order() -> list[str]:
    """The 1000 synsets in the devkit's class-ID order: ``ILSVRC2012_ID`` ``i`` is ``devkit_order()[i - 1]``."""
    return list(_read("devkit_class_ids.txt"))


def imagenet_a_synsets() -> frozenset[str]:
    return frozenset(_read("imagenet_a_synsets.txt"))


def imagenet_r_synsets() -> frozenset[str]:
    return frozenset(_read("imagenet_r_synsets.txt"))


def identify_set(images: LabelledImages) -> str | None:
    """The evaluation set ``images`` are from (a key of :data:`SET_NAMES`), or None when the layout does not
    say (a folder of all 1000 synsets is the validation set or ImageNet-Sketch)."""
    if images.layout in _BY_LAYOUT:
        return _BY_LAYOUT[images.layout]
    if images.layout == "folders" and images.classes:
        classes = frozenset(images.classes)
        if classes == imagenet_a_synsets():
            return IMAGENET_A
        if classes == imagenet_r_synsets():
            return IMAGENET_R
    return None
