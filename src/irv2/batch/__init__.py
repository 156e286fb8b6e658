"""Batch inference over many image files: input expansion (folders, globs, lists, tar shards), parallel
decoding with prefetch in the module's own preprocessing, streaming predictions and feature archives, and
resumable jobs that write Parquet (:class:`BatchJob`, docs/batch.md)."""

from .decoding import Decoded, decode_batches, default_workers, run_module, stack_images
from .inputs import IMAGE_EXTENSIONS, Input, expand_inputs
from .runner import BatchJob, JobResult
from .stream import NpzSummary, Result, classify_inputs, embed_batch, predict_batch, write_features_npz

__all__ = [
    "IMAGE_EXTENSIONS",
    "BatchJob",
    "Decoded",
    "Input",
    "JobResult",
    "NpzSummary",
    "Result",
    "classify_inputs",
    "decode_batches",
    "default_workers",
    "embed_batch",
    "expand_inputs",
    "predict_batch",
    "run_module",
    "stack_images",
    "write_features_npz",
]
