"""The network alone: plain ``torch.nn`` modules, no I/O."""

from .network import ENDPOINTS, MIN_INPUT_SIZE, NUM_FEATURES, InceptionResNetV2

__all__ = ["ENDPOINTS", "MIN_INPUT_SIZE", "NUM_FEATURES", "InceptionResNetV2"]
