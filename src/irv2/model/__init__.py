"""The network alone: plain ``torch.nn`` modules, no I/O.

Its sizes and names (``NUM_FEATURES``, ``BASE_ENDPOINTS``...) import without torch; ``InceptionResNetV2``
imports torch when first used.
"""

from .._lazy import lazy_attributes
from .names import BASE_ENDPOINTS, MIN_INPUT_SIZE, NUM_FEATURES, STAGES

__all__ = ["BASE_ENDPOINTS", "MIN_INPUT_SIZE", "NUM_FEATURES", "STAGES", "InceptionResNetV2"]

__getattr__, __dir__ = lazy_attributes(__name__, {"InceptionResNetV2": ".network"}, __all__)
