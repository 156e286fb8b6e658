"""A resumable batch job: classify or embed a long list of inputs into Parquet, chunk by chunk.

>>> job = BatchJob("classify", inputs, "out.parquet", module, top_k=5)
>>> job.prepare()                  # JobError if out.parquet holds the work of other settings, naming them
>>> result = job.run()             # computes this process's missing chunks, merges when all exist

Each chunk of ``chunk_size`` consecutive inputs is computed in batches, then committed as one Parquet
part (atomically, see :mod:`irv2.batch.job`). A rerun of the same command skips the committed chunks, so
an interrupted run (Ctrl-C, ``kill -9``, a lost machine, a full disk) loses at most the chunks in flight and
never writes a row twice; a full disk raises DiskFullError, which counts the parts kept. Under several
processes (:mod:`irv2.batch.sharding`) each computes its own chunks; the one that finds the job complete
merges (:mod:`irv2.batch.merge`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..api import Module
from ..disk_full import on_disk_full, size_text
from ..errors import JobError, OptionError
from .decoding import decode_batches
from .inputs import Input
from .job import Layout, make_manifest, part_name
from .merge import is_complete, merge, merge_lock
from .parquet import with_metadata, write_atomic
from .rows import RowBuilder
from .sharding import Rank, my_chunks, rank_from_environment
from .stream import endpoint_of, output_shape

DEFAULT_CHUNK_SIZE = 1000
# After a full disk: a rerun finds the job's manifest and its committed parts, and computes only what is missing.
_RERUN = "free some space and rerun the same command: it computes only the parts still missing"


@dataclass
class JobResult:
    """What one run of a job did.

    ``share``: inputs this process is responsible for; ``skipped``: of those, already committed by an
    earlier run; ``processed`` / ``failed``: images computed (and failed) in this run; ``summary``: the
    final output's ``{"rows", "failed"}`` once merged, None while other processes still work.
    """

    output: str
    total: int
    share: int
    skipped: int
    processed: int
    failed: int
    seconds: float
    summary: dict[str, Any] | None
    already_complete: bool = False


class BatchJob:
    """One ``classify`` or ``features`` job of ``module`` over ``inputs`` into ``output`` (``OUT.parquet`` or a
    folder).

    Args:
        module: the loaded weights; its ``run_settings()`` (weights' digest, engine, precision, calibration,
            preprocessing), with ``draft`` and ``top_k``, are recorded in the job id.
        draft: decode large JPEGs at reduced scale (see ``irv2.load_image``); False is ``--exact-decode``.
        top_k: predictions per row (classify).
        endpoint: features of a TF-Slim end point (``Mixed_6a``), its maps ``[h, w, c]`` per row, instead of the
            1536-d vector (features).
        chunk_size: inputs per committed part; part of the job id.
        rank: this process among several; default from ``RANK``/``WORLD_SIZE`` (torchrun).
        weights: the handle the user gave, recorded in the manifest for people (the id follows the content).
    """

    def __init__(
        self,
        kind: str,
        inputs: Sequence[Input],
        output: str | os.PathLike[str],
        module: Module,
        *,
        draft: bool = True,
        top_k: int = 5,
        endpoint: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        rank: Rank | None = None,
        weights: str | None = None,
    ) -> None:
        self.kind = kind
        self.inputs = list(inputs)
        self.module = module
        self.draft = draft
        self.top_k = top_k
        self.layout = Layout.for_output(output)
        settings = {**module.run_settings(), "exact_decode": not draft}
        if kind == "classify":
            settings["top_k"] = top_k
        self.endpoint = endpoint
        if endpoint is not None and kind != "features":
            raise OptionError(f"endpoint: only a features job writes end points, not a {kind} job")
        if endpoint is not None:
            settings["endpoint"] = endpoint_of(module, endpoint)
            settings["features_shape"] = list(output_shape(module, endpoint))
        self.manifest = make_manifest(kind, self.inputs, settings=settings, chunk_size=chunk_size, weights=weights)
        self.chunk_size = chunk_size
        self.rank = rank_from_environment() if rank is None else rank

    def finished(self) -> dict[str, Any] | None:
        """The final output's summary when this job is already complete, else None (JobError: see Layout)."""
        summary = self.layout.finished(self.manifest)
        if (
            summary is not None
            and self.layout.single_file
            and os.path.isdir(self.layout.parts)
            and self.layout.check_manifest(self.manifest)
        ):
            # Killed between the merge's rename and its clean-up: finish the clean-up.
            shutil.rmtree(self.layout.parts, ignore_errors=True)
        return summary

    def prepare(self, *, overwrite: bool = False) -> None:
        """Check the output belongs to this job (or start it afresh with ``overwrite``), create the work
        folder and the manifest."""
        if overwrite:
            if self.rank.distributed:
                # Every rank would delete the others' fresh parts; there is no safe moment without a barrier.
                raise JobError("--overwrite cannot be used with several processes: delete the output first")
            self.layout.clear()
        with on_disk_full(self.layout.parts, kept=self._kept, resume=_RERUN):
            self.layout.prepare(self.manifest)

    def pending(self) -> tuple[list[range], int]:
        """This process's chunks still to compute, and how many of its inputs are already committed."""
        committed = self.layout.committed()
        todo, skipped = [], 0
        for chunk in my_chunks(len(self.inputs), self.chunk_size, self.rank):
            if (chunk.start, chunk.stop) in committed:
                skipped += len(chunk)
            else:
                todo.append(chunk)
        return todo, skipped

    def run(
        self,
        *,
        batch_size: int = 8,
        workers: int | None = None,
        on_start: Callable[[int, int], None] | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> JobResult:
        """Compute this process's missing chunks, commit each as a part, and merge if the job is complete.

        Args:
            on_start: called with (this process's inputs, of which already committed) before any work.
            on_batch: called with (images, failed) after each batch, for a progress display.
        """
        started = time.monotonic()
        todo, skipped = self.pending()
        share = skipped + sum(len(c) for c in todo)
        if on_start is not None:
            on_start(share, skipped)
        rows = RowBuilder(self.kind, self.module, k=self.top_k, endpoint=self.endpoint)
        processed = failed = 0
        for chunk in todo:
            if self.layout.finished(self.manifest) is not None:
                # Another process merged meanwhile (a rerun of a finished job racing a faster rank), so
                # every chunk is in the output already.
                break
            items = self.inputs[chunk.start : chunk.stop]
            preprocess = self.module.preprocessing
            for batch in decode_batches(items, batch_size, preprocess, workers=workers, draft=self.draft):
                bad = rows.add(batch)
                processed += len(batch)
                failed += bad
                if on_batch is not None:
                    on_batch(len(batch), bad)
            part = self.layout.path(part_name(chunk))
            with on_disk_full(part, kept=self._kept, resume=_RERUN):
                write_atomic(with_metadata(rows.table(), self.manifest["job"]), part)
        summary = self.merge_if_complete()
        return JobResult(
            self.layout.output,
            len(self.inputs),
            share,
            skipped,
            processed,
            failed,
            time.monotonic() - started,
            summary,
        )

    def merge_if_complete(self) -> dict[str, Any] | None:
        """Merge when every part exists and no other process is merging; the summary, or None."""
        if not is_complete(self.layout, self.manifest):
            return self.finished()  # another process may have merged and removed the parts meanwhile
        with merge_lock(self.layout) as acquired:
            if acquired and is_complete(self.layout, self.manifest):
                with on_disk_full(self.layout.output, kept=self._kept, resume=self._merge_again):
                    return merge(self.layout, self.manifest)
        return self.finished()

    # -- a full disk: what the job kept, and how to go on -------------------------------------------------------
    def _kept(self) -> str:
        committed = self.layout.committed()
        if not committed:
            return f"no part of this job yet ({self.layout.parts} holds none)"
        inputs = sum(stop - start for start, stop in committed)
        size = sum(os.path.getsize(path) for path in committed.values())
        return (
            f"the {len(committed)} parts committed so far ({inputs} of {len(self.inputs)} inputs, {size_text(size)}) "
            f"in {self.layout.parts}"
        )

    def _merge_again(self) -> str:
        if not self.layout.single_file:
            return "free some space and rerun the same command: it checks the parts and marks the job complete"
        size = sum(os.path.getsize(path) for path in self.layout.committed().values())
        return (
            f"free {size_text(size)} or more (the merged file takes about what the parts take; they are deleted "
            "after it) and rerun the same command: it only merges the parts"
        )
