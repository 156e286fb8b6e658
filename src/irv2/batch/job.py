"""A batch job's identity and its output on disk: the manifest, the committed parts, what is finished.

Two layouts, chosen by ``--output``:

* ``OUT.parquet``: the parts go to the work folder ``OUT.parquet.parts/``; the merge writes ``OUT.parquet``
  (one file, input order) and then deletes the work folder.
* a folder ``OUT/``: the parts are the output (a Parquet dataset in input order when read in name order);
  the merge checks them and writes ``OUT/_SUCCESS``.

Either way the parts folder holds ``_irv2_job.json`` (the manifest) and ``part-START-STOP.parquet``, the
rows of inputs ``START`` to ``STOP - 1``, each written to a hidden ``.tmp`` name and renamed, so a part is
there whole or not at all. Readers (pyarrow, Spark, DuckDB) skip names starting with ``_`` or ``.``.

The job id is a hash of what decides the rows: the command, the input list, the weights, the options that
change values and the chunk size. A run that finds another job's manifest refuses to mix the two.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import JobError
from .inputs import Input
from .parquet import JOB_KEY, SUMMARY_KEY, file_metadata, sync_file, temporary_name

MANIFEST = "_irv2_job.json"
SUCCESS = "_SUCCESS"
LOCK = "_irv2_merge.lock"
FORMAT = 1
_PART = re.compile(r"^part-(\d{12})-(\d{12})\.parquet$")


def part_name(chunk: range) -> str:
    """The file name of the part holding the rows of inputs ``chunk.start`` to ``chunk.stop - 1``."""
    return f"part-{chunk.start:012d}-{chunk.stop:012d}.parquet"


def make_manifest(
    kind: str, inputs: Sequence[Input], *, weights: str, options: dict[str, Any], chunk_size: int
) -> dict[str, Any]:
    """The manifest of a job: what decides its rows, and its id (a hash of all of it)."""
    digest = hashlib.sha256()
    for item in inputs:
        digest.update(item.path.encode("utf-8", "surrogateescape") + b"\0")
    fields = {
        "kind": kind,
        "inputs": len(inputs),
        "inputs_sha256": digest.hexdigest(),
        "weights": weights,
        "options": dict(sorted(options.items())),
        "chunk_size": chunk_size,
    }
    job = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return {"format": FORMAT, "job": job, **fields}


@dataclass(frozen=True)
class Layout:
    """Where a job's files go, for ``output`` (``OUT.parquet`` or a folder)."""

    output: str
    single_file: bool

    @classmethod
    def for_output(cls, output: str | os.PathLike[str]) -> Layout:
        output = os.fspath(output)
        single = output.lower().endswith(".parquet") and not os.path.isdir(output)
        return cls(output.rstrip(os.sep) if not single else output, single)

    @property
    def parts(self) -> str:
        return f"{self.output}.parts" if self.single_file else self.output

    def path(self, name: str) -> str:
        return os.path.join(self.parts, name)

    def committed(self) -> dict[tuple[int, int], str]:
        """The parts committed so far, by ``(start, stop)``; empty when the folder does not exist (yet, or
        any more: another process merged and removed it)."""
        try:
            names = os.listdir(self.parts)
        except FileNotFoundError:
            return {}
        found = {}
        for name in names:
            match = _PART.match(name)
            if match:
                found[int(match[1]), int(match[2])] = os.path.join(self.parts, name)
        return found

    def finished(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """The summary of the merged output when this job is already complete; None when it is not.

        JobError when the output exists but belongs to another job, or to no irv2 job at all.
        """
        if self.single_file:
            if not os.path.exists(self.output):
                return None
            try:
                metadata = file_metadata(self.output)
            except (OSError, ValueError):  # pyarrow raises ArrowInvalid (a ValueError) on a non-Parquet file
                metadata = {}
            if metadata.get(JOB_KEY, b"").decode() != manifest["job"]:
                raise JobError(
                    f"{self.output} exists and was not written by this command: choose another --output, "
                    "or add --overwrite to replace it"
                )
            return json.loads(metadata.get(SUMMARY_KEY, b"{}"))
        success = self.path(SUCCESS)
        if not os.path.exists(success):
            return None
        self.check_manifest(manifest)
        with open(success, encoding="utf-8") as f:
            return json.load(f)

    def check_manifest(self, manifest: dict[str, Any]) -> bool:
        """True when the parts folder holds this job's manifest, False when it holds none; JobError when it
        holds another job's, naming what differs."""
        try:
            with open(self.path(MANIFEST), encoding="utf-8") as f:
                found = json.load(f)
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            raise JobError(f"{self.path(MANIFEST)}: unreadable job manifest ({exc})") from None
        if found.get("job") != manifest["job"]:
            differ = [
                key
                for key in ("kind", "inputs_sha256", "weights", "options", "chunk_size")
                if found.get(key) != manifest[key]
            ]
            what = ", ".join("inputs" if key == "inputs_sha256" else key for key in differ) or "format"
            raise JobError(
                f"{self.output} holds the work of a different command (its {what} differ): rerun the original "
                "command to continue it, choose another --output, or add --overwrite to start again"
            )
        return True

    def prepare(self, manifest: dict[str, Any]) -> None:
        """Create the parts folder and its manifest, or check that they are this job's."""
        if not self.single_file and os.path.isdir(self.parts):
            foreign = [n for n in os.listdir(self.parts) if not _is_ours(n)]
            if foreign:
                raise JobError(
                    f"{self.output} is a folder holding files that are not an irv2 job's output (e.g. "
                    f"{sorted(foreign)[0]}): choose an empty or new folder"
                )
        os.makedirs(self.parts, exist_ok=True)
        if self.check_manifest(manifest):
            return
        target = self.path(MANIFEST)
        tmp = temporary_name(target)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        sync_file(tmp)
        try:
            # A hard link creates the name only if absent, with the whole content: when several ranks start
            # at once, exactly one manifest wins and the others compare theirs with it.
            os.link(tmp, target)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.check_manifest(manifest)

    def clear(self) -> None:
        """Delete this job's output and work, for ``--overwrite``: in a folder, only the files irv2 writes."""
        if self.single_file:
            if os.path.exists(self.output):
                os.unlink(self.output)
            shutil.rmtree(self.parts, ignore_errors=True)
            return
        if os.path.isdir(self.parts):
            for name in os.listdir(self.parts):
                if _is_ours(name):
                    os.unlink(self.path(name))


def _is_ours(name: str) -> bool:
    return (
        bool(_PART.match(name)) or name in (MANIFEST, SUCCESS, LOCK) or (name.startswith(".") and name.endswith(".tmp"))
    )
