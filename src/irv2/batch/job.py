"""A batch job's identity and its output on disk: the manifest, the committed parts, what is finished.

Two layouts, chosen by ``--output``:

* ``OUT.parquet``: the parts go to the work folder ``OUT.parquet.parts/``; the merge writes ``OUT.parquet``
  (one file, input order) and then deletes the work folder.
* a folder ``OUT/``: the parts are the output (a Parquet dataset in input order when read in name order);
  the merge checks them and writes ``OUT/_SUCCESS``.

Either way the parts folder holds ``_irv2_job.json`` (the manifest) and ``part-START-STOP.parquet``, the
rows of inputs ``START`` to ``STOP - 1``, each written to a hidden ``.tmp`` name and renamed, so a part is
there whole or not at all. Readers (pyarrow, Spark, DuckDB) skip names starting with ``_`` or ``.``.

The job id is a hash of what decides the rows: the command, the input list, every setting that changes a
value (the weights' content, engine, precision, int8 calibration set, preprocessing, decoding, top-k) and the
chunk size. A run that finds another job's manifest refuses to mix the two, naming the setting that changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..atomic import is_temporary, write_text
from ..errors import JobError
from .inputs import Input
from .parquet import JOB_KEY, MANIFEST_KEY, SUMMARY_KEY, file_metadata

MANIFEST = "_irv2_job.json"
SUCCESS = "_SUCCESS"
LOCK = "_irv2_merge.lock"
FORMAT = 2  # 1: before every value-changing setting was recorded (irv2 0.1)
_PART = re.compile(r"^part-(\d{12})-(\d{12})\.parquet$")
# What a user changes to change each recorded field: the refusal names it.
_WHAT_CHANGES = {
    "kind": "the command (classify or features)",
    "inputs_sha256": "the inputs",
    "chunk_size": "--chunk-size",
    "weights_sha256": "the weights (--weights)",
    "engine": "--engine",
    "dtype": "--dtype",
    "calibration_sha256": "the calibration images (--calibration)",
    "preprocessing": "the weights' image size or preprocessing recipe",
    "exact_decode": "--exact-decode",
    "top_k": "--top",
    "endpoint": "--endpoint",
    "features_shape": "the weights' image size",
    "device": "--device",
    "batch_size": "--batch-size",
    "scored_outputs": "the outputs scored (the class folders of an ImageNet-A or -R style subset)",
}


def part_name(chunk: range) -> str:
    """The file name of the part holding the rows of inputs ``chunk.start`` to ``chunk.stop - 1``."""
    return f"part-{chunk.start:012d}-{chunk.stop:012d}.parquet"


def make_manifest(
    kind: str, inputs: Sequence[Input], *, settings: dict[str, Any], chunk_size: int, weights: str | None = None
) -> dict[str, Any]:
    """The manifest of a job: what decides its rows, and its id (a hash of all of it).

    ``settings``: every setting that changes a value (``module.run_settings()`` plus decoding and top-k).
    ``weights``: the handle the user gave, recorded for people; the id follows the weights' content instead,
    so a moved module folder continues its job and a changed one cannot.
    """
    digest = hashlib.sha256()
    for item in inputs:
        digest.update(item.path.encode("utf-8", "surrogateescape") + b"\0")
    fields = {
        "kind": kind,
        "inputs": len(inputs),
        "inputs_sha256": digest.hexdigest(),
        "settings": dict(sorted(settings.items())),
        "chunk_size": chunk_size,
    }
    job = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return {"format": FORMAT, "job": job, **fields, "weights": weights}


def differences(found: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """What differs between a recorded manifest and this run's, each as ``"<option>: <then> then, <now> now"``."""
    if found.get("format") != manifest["format"]:
        return [f"the job format: {found.get('format')} then (another irv2 version), {manifest['format']} now"]
    then = {key: found.get(key) for key in ("kind", "inputs_sha256", "chunk_size")} | (found.get("settings") or {})
    now = {key: manifest[key] for key in ("kind", "inputs_sha256", "chunk_size")} | manifest["settings"]
    changed = []
    for key in dict.fromkeys([*now, *then]):
        before, after = then.get(key), now.get(key)
        if before == after:
            continue
        what = _WHAT_CHANGES.get(key, key)
        if key == "inputs_sha256":
            changed.append(what)
        elif isinstance(before, dict) and isinstance(after, dict):  # the recipe: name the fields that changed
            fields = [f for f in dict.fromkeys([*after, *before]) if before.get(f) != after.get(f)]
            changed.append(f"{what}: " + ", ".join(f"{f} {before.get(f)!r} then, {after.get(f)!r} now" for f in fields))
        else:
            changed.append(f"{what}: {before!r} then, {after!r} now")
    return changed


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
                if MANIFEST_KEY in metadata:  # another irv2 job's output: say what changed
                    self._refuse(json.loads(metadata[MANIFEST_KEY]), manifest)
                raise JobError(
                    f"{self.output} exists and was not written by an irv2 job: choose another --output, "
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
            self._refuse(found, manifest)
        return True

    def _refuse(self, found: dict[str, Any], manifest: dict[str, Any]) -> None:
        changed = "; ".join(differences(found, manifest)) or "its job id"
        raise JobError(
            f"{self.output} holds the work of a run with other settings ({changed}); mixing the two would give "
            "rows computed differently. Rerun with the original settings to continue it, choose another --output, "
            "or add --overwrite to start again"
        )

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
        # When several ranks start at once, exactly one manifest wins and the others compare theirs with it.
        with contextlib.suppress(FileExistsError):
            write_text(self.path(MANIFEST), json.dumps(manifest, indent=1) + "\n", exclusive=True)
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
    return bool(_PART.match(name)) or name in (MANIFEST, SUCCESS, LOCK) or is_temporary(name)
