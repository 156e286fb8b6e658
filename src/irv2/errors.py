"""irv2's own exception classes.

Every failure a user can cause (a bad file, a wrong handle, an unreadable image) surfaces as one of these,
with a message that names the file and the problem, so callers can catch ``irv2.Irv2Error`` alone.
"""

from __future__ import annotations

import os


class Irv2Error(Exception):
    """Base class of every error irv2 raises on purpose."""


class CheckpointError(Irv2Error):
    """A weights file or folder is unreadable: truncated, corrupt, foreign or empty.

    The message starts with the offending path so that, in a batch of files, the culprit is obvious.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class WeightMismatchError(Irv2Error):
    """The tensors of a readable checkpoint do not fit the network (missing, unexpected or misshapen)."""


class ImageError(Irv2Error):
    """An image could not be decoded or converted."""


class HandleError(Irv2Error):
    """A handle passed to ``irv2.load`` names nothing irv2 can open."""


class DownloadError(Irv2Error):
    """Weights could not be fetched or verified (network down, bad checksum, offline without a cache)."""


class DatasetError(Irv2Error):
    """A fine-tuning dataset cannot be used: no classes, an empty or single class, too few images to split,
    a malformed CSV. The message names the folder, file or class at fault."""


class JobError(Irv2Error):
    """A batch job cannot write its output: it holds another job's work, it is not irv2's, or the Parquet
    support (pyarrow) is missing. The message names the output and says how to go on."""
