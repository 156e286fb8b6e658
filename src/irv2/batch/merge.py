"""The end of a batch job: once every part exists, one process checks them and writes the final dataset.

Whichever process commits the last part sees the job complete and merges; under ``torchrun`` that is the
last rank to finish, on a rerun the first to find nothing left to do. An advisory lock on ``_irv2_merge.lock``
(released by the kernel when its holder dies, ``kill -9`` included) makes sure only one merges at a time,
and the merge is idempotent, so a merge interrupted at any point is simply done again by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

from ..atomic import atomic_write, is_temporary, write_text
from ..errors import JobError
from .job import LOCK, SUCCESS, Layout, part_name
from .parquet import JOB_KEY, MANIFEST_KEY, SUMMARY_KEY, pyarrow, schema
from .sharding import chunk_ranges

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, and no torchrun on CPU to race with
    fcntl = None  # type: ignore[assignment]


def is_complete(layout: Layout, manifest: dict[str, Any]) -> bool:
    """True when every chunk of the job has its part."""
    committed = layout.committed()
    return all((c.start, c.stop) in committed for c in chunk_ranges(manifest["inputs"], manifest["chunk_size"]))


@contextlib.contextmanager
def merge_lock(layout: Layout) -> Iterator[bool]:
    """Hold the merge lock; yields False when another process holds it (it is merging) or the parts folder
    is gone (it has merged)."""
    try:
        fd = os.open(layout.path(LOCK), os.O_RDWR | os.O_CREAT, 0o666)
    except FileNotFoundError:
        yield False
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        yield True
    finally:
        os.close(fd)


def merge(layout: Layout, manifest: dict[str, Any]) -> dict[str, Any]:
    """Check that the parts hold every input exactly once, in order, and write the final output: one
    Parquet file (then delete the parts) or ``_SUCCESS`` in the output folder. Returns its summary,
    ``{"rows": N, "failed": M}``. Call it holding :func:`merge_lock`."""
    pq = pyarrow().parquet
    chunks = chunk_ranges(manifest["inputs"], manifest["chunk_size"])
    parts = [layout.path(part_name(c)) for c in chunks]
    expected = schema(manifest["kind"], manifest["settings"].get("features_shape"))
    # First pass, over the error column alone: every part whole, and the summary for the file's footer.
    rows = failed = 0
    for path, chunk in zip(parts, chunks, strict=True):
        errors = pq.read_table(path, columns=["error"]).column("error")
        if len(errors) != len(chunk):
            raise JobError(f"{path}: {len(errors)} rows where {len(chunk)} were expected; delete this part and rerun")
        rows += len(errors)
        failed += len(errors) - errors.null_count
    summary = {"rows": rows, "failed": failed, "job": manifest["job"]}
    if not layout.single_file:
        write_text(layout.path(SUCCESS), json.dumps(summary) + "\n")
        for name in os.listdir(layout.parts):  # parts and manifests of killed writers
            if is_temporary(name):
                os.unlink(layout.path(name))
        return summary
    metadata = {
        JOB_KEY: manifest["job"].encode(),
        SUMMARY_KEY: json.dumps(summary).encode(),
        MANIFEST_KEY: json.dumps(manifest).encode(),
    }
    # One row group per part: memory stays at one part, whatever the number of rows.
    with atomic_write(layout.output) as f, pq.ParquetWriter(f, expected.with_metadata(metadata)) as writer:
        for path in parts:
            table = pq.read_table(path)
            if not table.schema.equals(expected):
                raise JobError(f"{path}: not the columns of an irv2 {manifest['kind']} job")
            writer.write_table(table)
    shutil.rmtree(layout.parts, ignore_errors=True)
    return summary
