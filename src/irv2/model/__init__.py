"""The network alone: plain ``torch.nn`` modules, no I/O."""

from .network import BASE_ENDPOINTS, MIN_INPUT_SIZE, NUM_FEATURES, STAGES, InceptionResNetV2

__all__ = ["BASE_ENDPOINTS", "MIN_INPUT_SIZE", "NUM_FEATURES", "STAGES", "InceptionResNetV2"]
