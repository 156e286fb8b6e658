"""Every exception irv2 raises on purpose, in one place.

Each failure a user can cause (a bad file, a wrong handle, an unreadable image, a missing extra, a bad
request to the server) surfaces as a subclass of :class:`Irv2Error`, with a message that names the file,
option or input at fault and says what to do, so callers can catch ``irv2.Irv2Error`` alone.
"""

from __future__ import annotations

import errno
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


class InputError(Irv2Error, ValueError):
    """A module was called with inputs its signature does not take. The message names the input
    (``images``), the shape, type and range expected, and what came instead. A ``ValueError`` too, as
    callers checking the input themselves expect."""


class HandleError(Irv2Error):
    """A handle passed to ``irv2.load`` names nothing irv2 can open."""


class DownloadError(Irv2Error):
    """Weights could not be fetched or verified (network down, bad checksum, offline without a cache)."""


class DatasetError(Irv2Error):
    """A fine-tuning or evaluation dataset cannot be used: no classes, an empty or single class, too few images
    to split, a malformed CSV. The message names the folder, file or class at fault."""


class LayoutError(DatasetError):
    """Evaluation data irv2 cannot read: a folder in none of the layouts ``irv2 evaluate`` knows, a label file in
    none of the formats it reads, or a devkit ground truth without its synset map. The message names the folder
    and the file."""


class LabelMismatchError(LayoutError):
    """A label file that does not match the images (images it has no label for, numbers beyond its end), or
    labels the weights have no class for. The message names both sides: the labels and the images or weights."""


class JobError(Irv2Error):
    """A batch job cannot write its output: it holds another job's work, it is not irv2's, or it was started
    with other settings. The message names the output (and the setting that changed) and says how to go on."""


class OptionError(Irv2Error, ValueError):
    """An option value irv2 cannot use; the message starts with the option's name (``batch_size must ...``).
    A ``ValueError`` too, as callers of ``irv2.finetune`` expect; its own class so that the command line can
    tell it (a usage error, exit status 2) from a failure inside a run."""


class MissingDependencyError(Irv2Error, ImportError):
    """An optional capability needs a package that is not installed; the message names the pip extra
    (``pip install 'irv2[onnx]'``). An ``ImportError`` too, so code that guards imports catches it."""


class ExportError(Irv2Error):
    """An export could not be made, or did not reproduce irv2's outputs; nothing was written."""


class OutputExistsError(ExportError):
    """The destination exists and replacing it was not asked for (``overwrite=True``, ``--force``)."""


class DiskFullError(Irv2Error, OSError):
    """A write met a full disk (``ENOSPC``) or a used-up disk quota (``EDQUOT``).

    The message names the file that could not be written, what was kept (whole files only: irv2 never leaves a
    part of a file under a name it trusts) and how to go on once there is room:
    ``PATH: no space left on the device. Kept: .... To resume: ....`` An ``OSError`` too, with ``errno``,
    ``strerror`` and ``filename`` set, so code that guards its writes with ``except OSError`` still catches it.
    """

    def __init__(self, path: str | os.PathLike[str], *, kept: str, resume: str, code: int = errno.ENOSPC) -> None:
        self.path = os.fspath(path)
        self.kept = kept
        self.resume = resume
        reason = "no space left on the device" if code == errno.ENOSPC else "the disk quota is used up"
        super().__init__(f"{self.path}: {reason}. Kept: {kept}. To resume: {resume}.")
        self.errno, self.strerror, self.filename = code, os.strerror(code), self.path

    def __str__(self) -> str:  # OSError's own would print "[Errno 28] ..." and drop what was kept
        return str(self.args[0])

    def advised(self, *, kept: str, resume: str) -> DiskFullError:
        """The same failure, with what the caller knows: what its work kept and how to continue it."""
        return DiskFullError(self.path, kept=kept, resume=resume, code=self.errno)


class CommandError(Irv2Error):
    """A command-line failure to report as ``irv2: error: <message>`` on stderr, without a traceback;
    ``status`` is the exit status (1 for a failure while running, 2 for a usage error)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class RequestError(Irv2Error):
    """A request the server refuses; ``status`` is the HTTP status (400 unless said otherwise).

    Protocol parsers and the batcher raise these; one middleware turns each into ``{"error": "..."}``
    with its status, so no handler builds an error response itself.
    """

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(RequestError):
    """An unknown model name or version (404)."""

    status = 404


class PayloadTooLarge(RequestError):
    """A body over ``max_request_bytes`` or more images than ``max_instances`` (413)."""

    status = 413


class QueueFull(RequestError):
    """The bounded queue has no room for the request's images (503, with ``Retry-After``)."""

    status = 503


class ShuttingDown(RequestError):
    """The server is draining after SIGTERM and takes no new work (503)."""

    status = 503
