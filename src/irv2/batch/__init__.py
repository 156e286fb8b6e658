"""Batch inference over many image files: input expansion, parallel decoding with prefetch, batching."""

from .decoding import Decoded, decode_batches, default_workers, run_module, stack_images
from .inputs import IMAGE_EXTENSIONS, Input, expand_inputs

__all__ = [
    "IMAGE_EXTENSIONS",
    "Decoded",
    "Input",
    "decode_batches",
    "default_workers",
    "expand_inputs",
    "run_module",
    "stack_images",
]
