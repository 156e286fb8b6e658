"""The shipped ImageNet label files (``data/labels_1001.txt``, ``data/synsets_1001.txt``)."""

from __future__ import annotations

from functools import cache
from importlib import resources

BACKGROUND = "background"


@cache
def _read(name: str) -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    lines = tuple(text.splitlines())
    assert len(lines) == 1001 and lines[0] == BACKGROUND, f"damaged package data file {name}"
    return lines


def imagenet_labels(num_classes: int = 1001) -> list[str]:
    """Human-readable names: 1001 (index 0 = "background") or 1000 (without it). Names are not unique."""
    return _slice(_read("labels_1001.txt"), num_classes)


def imagenet_synsets(num_classes: int = 1001) -> list[str]:
    """WordNet synset IDs in the same order as ``imagenet_labels`` (``n01440764`` = tench)."""
    return _slice(_read("synsets_1001.txt"), num_classes)


def labels_for(num_classes: int) -> list[str] | None:
    """ImageNet labels when a head of this width is an ImageNet head, else None."""
    return imagenet_labels(num_classes) if num_classes in (1000, 1001) else None


def _slice(lines: tuple[str, ...], num_classes: int) -> list[str]:
    if num_classes == 1001:
        return list(lines)
    if num_classes == 1000:
        return list(lines[1:])
    raise ValueError(f"ImageNet heads have 1001 or 1000 classes, not {num_classes}")
