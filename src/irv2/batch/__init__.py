"""Batch inference over many image files: input expansion (folders, globs, lists, tar shards), parallel
decoding with prefetch, batching, and resumable jobs that write Parquet (:class:`BatchJob`, docs/batch.md)."""

from .decoding import Decoded, decode_batches, default_workers, run_module, stack_images
from .inputs import IMAGE_EXTENSIONS, Input, expand_inputs
from .runner import BatchJob, JobResult

__all__ = [
    "IMAGE_EXTENSIONS",
    "BatchJob",
    "Decoded",
    "Input",
    "JobResult",
    "decode_batches",
    "default_workers",
    "expand_inputs",
    "run_module",
    "stack_images",
]
