"""ImageNet class names for the 1001- and 1000-class heads, and a top-k decoder.

The TF-Slim and TF-Hub weights have 1001 outputs: index 0 is "background", then the 1000 ILSVRC-2012
classes in sorted synset order. Keras and timm ports dropped the background, so their index ``i`` is
1001-index ``i + 1``. Everything here keys on the width of the head, so the two can never be mixed up.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = ["Prediction", "imagenet_labels", "imagenet_synsets", "labels_for", "top_k"]

# Imported on first use: ``import irv2`` imports this package eagerly (see irv2/__init__.py) and stays light.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "Prediction": ".decode",
        "top_k": ".decode",
        "imagenet_labels": ".imagenet",
        "imagenet_synsets": ".imagenet",
        "labels_for": ".imagenet",
    },
    __all__,
)
