"""Which output of the weights each label means: labels are matched with the head's classes through synsets.

An ImageNet head (1001 classes with "background" at 0, as TF-Slim and TF-Hub have it, or 1000 without it, as
Keras and timm have it) is matched by WordNet synset, so the same label file scores both correctly: synset
n01440764 is output 1 of a 1001-class head and output 0 of a 1000-class one. Any other head (a fine-tuned
module) is matched by the class names it records (``module.labels``, the folder names or CSV labels it was
trained on). No label is ever "background": a 1001-class head that predicts it is simply wrong, as TF-Slim's
evaluation counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import LabelMismatchError
from ..labels import imagenet_labels, imagenet_synsets
from ..labels.imagenet import BACKGROUND

_SHOWN = 5


@dataclass(frozen=True)
class ClassSpace:
    """The classes of a head as labels name them.

    Attributes:
        keys: per output, what a label must equal to mean it (a synset for ImageNet heads, else the class name).
        names: per output, a name for people (ImageNet's label, or the class name).
        imagenet: whether the head is ImageNet's (matched by synset).
    """

    keys: list[str]
    names: list[str]
    imagenet: bool

    def __len__(self) -> int:
        return len(self.keys)

    def targets(self, labels: Sequence[Sequence[str]], *, source: str, weights: str) -> np.ndarray:
        """The output indices each image's labels mean, int64 ``[len(labels), m]`` (``m`` the most labels an
        image has: 1 but for ReaL), padded with -1; LabelMismatchError naming ``source`` (the labels) and
        ``weights`` when a label is none of the head's classes."""
        position = {key: i for i, key in enumerate(self.keys)}
        if self.imagenet:
            position.pop(BACKGROUND, None)  # an output, never a label: ImageNet has no "background" images
        unknown = sorted({label for labelled in labels for label in labelled if label not in position})
        if unknown:
            shown = ", ".join(map(repr, unknown[:_SHOWN])) + (" ..." if len(unknown) > _SHOWN else "")
            if self.imagenet:
                hint = (
                    f"{weights} has ImageNet's {len(self.keys)} classes, matched by WordNet synset "
                    f"(n01440764 is {self.names[self.keys.index('n01440764')]!r})"
                )
            else:
                classes = ", ".join(map(repr, self.keys[:10])) + (" ..." if len(self.keys) > 10 else "")
                hint = f"the classes of {weights} are {classes}"
            raise LabelMismatchError(
                f"{source}: {len(unknown)} labels are not classes of the weights ({shown}); {hint}"
            )
        targets = np.full((len(labels), max((len(labelled) for labelled in labels), default=1) or 1), -1, np.int64)
        for row, labelled in enumerate(labels):
            targets[row, : len(labelled)] = [position[label] for label in labelled]
        return targets

    def outputs(self, keys: Sequence[str]) -> np.ndarray:
        """The output index of each key, sorted (int64): the outputs a subset of the classes is scored over."""
        position = {key: i for i, key in enumerate(self.keys)}
        return np.array(sorted(position[key] for key in keys), dtype=np.int64)


def class_space(num_classes: int, labels: Sequence[str] | None) -> ClassSpace:
    """The classes of a head with ``num_classes`` outputs and these ``labels`` (``module.labels``)."""
    if num_classes in (1000, 1001) and (labels is None or list(labels) == imagenet_labels(num_classes)):
        return ClassSpace(imagenet_synsets(num_classes), imagenet_labels(num_classes), True)
    names = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
    return ClassSpace(names, names, False)
