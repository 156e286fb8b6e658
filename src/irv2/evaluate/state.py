"""An evaluation's predictions on disk, chunk by chunk, so that a long run survives an interruption.

``DIR/predictions/`` holds the job's manifest (``_irv2_job.json``: a batch job's manifest, made and compared by
:mod:`irv2.batch.job`) and one ``part-START-STOP.npz`` per chunk of ``chunk_size`` consecutive images: each
image's top-k classes and probabilities and its KL divergence from the reference, per configuration, and the
chunk's timings. A part is written under a hidden temporary name and renamed (:mod:`irv2.atomic`), so it is
there whole or not at all; a rerun of the same command computes only the chunks that are missing.

The labels are not part of the job: the parts hold predictions only and the scores are computed from them at
the end, so a corrected label file is scored again without running the network. What does change the
predictions (the images, the weights' content, each configuration's engine, precision and int8 calibration,
the preprocessing and decoding, the chunk size) is in the job id, and a run with any of them changed is
refused, naming what changed, as the batch jobs refuse it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..api import Module
from ..atomic import atomic_write, is_temporary, write_text
from ..batch.inputs import Input
from ..batch.job import MANIFEST, differences, make_manifest
from ..errors import JobError

PREDICTIONS = "predictions"
KIND = "evaluate"
_PART = re.compile(r"^part-(\d{12})-(\d{12})\.npz$")


def job_settings(
    modules: Sequence[Module], *, draft: bool, batch_size: int, scored: np.ndarray | None = None
) -> dict[str, Any]:
    """Every setting that changes the predictions, under the names batch jobs record them (so a refusal names
    ``--engine``, ``--dtype``, ``--calibration``, ``--exact-decode``, ``--device``, ``--batch-size`` or the
    weights); one entry per configuration where they differ. The device and the batch size change the last
    bits of the logits (kernels block a batch by its size), so a resume with either changed would mix two
    runs' numbers."""
    reference = modules[0].run_settings()
    each = [reference, *(m.run_settings() for m in modules[1:])]
    return {
        "weights_sha256": reference["weights_sha256"],
        "preprocessing": reference["preprocessing"],
        "exact_decode": not draft,
        "engine": [s["engine"] for s in each],
        "dtype": [s["dtype"] for s in each],
        "calibration_sha256": [s.get("calibration_sha256") for s in each],
        "device": str(modules[0].device) if modules[0].device_type != "cpu" else "cpu",  # cpu: no torch needed
        "batch_size": batch_size,
        "scored_outputs": None if scored is None else [int(i) for i in scored],
    }


def part_name(chunk: range) -> str:
    return f"part-{chunk.start:012d}-{chunk.stop:012d}.npz"


class PredictionStore:
    """The predictions of one evaluation job in ``out/predictions/``.

    Args:
        out: the evaluation's output folder (``--out``).
        inputs: the images, in order: their paths are part of the job id.
        settings: :func:`job_settings`.
        chunk_size: images per part.
        weights: the weights as the user named them, for people reading the manifest.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        inputs: Sequence[Input],
        settings: dict[str, Any],
        *,
        chunk_size: int,
        weights: str | None = None,
    ) -> None:
        self.out = Path(out)
        self.folder = self.out / PREDICTIONS
        self.manifest = make_manifest(KIND, inputs, settings=settings, chunk_size=chunk_size, weights=weights)
        self.paths = [item.path for item in inputs]

    def prepare(self, *, overwrite: bool = False) -> None:
        """Create the folder and its manifest, or check that they are this job's (JobError naming what changed
        otherwise); with ``overwrite``, discard what an earlier evaluation left first."""
        if overwrite:
            self.clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._check():
            return
        with contextlib.suppress(FileExistsError):
            write_text(self.folder / MANIFEST, json.dumps(self.manifest, indent=1) + "\n", exclusive=True)
        self._check()

    def committed(self) -> set[tuple[int, int]]:
        """The ``(start, stop)`` of every chunk written so far."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return set()
        return {(int(m[1]), int(m[2])) for m in map(_PART.match, names) if m}

    def write(self, chunk: range, arrays: dict[str, np.ndarray]) -> None:
        """Commit the predictions of ``chunk`` (what :func:`irv2.evaluate.runner.predict_chunk` returns)."""
        with atomic_write(self.folder / part_name(chunk)) as f:
            np.savez(f, **arrays)

    def read(self, chunk: range) -> dict[str, np.ndarray]:
        """The predictions of ``chunk``; JobError when the part is damaged or holds other images."""
        path = self.folder / part_name(chunk)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError) as exc:
            raise JobError(f"{path}: a damaged part ({exc}); delete it and rerun to compute it again") from None
        if arrays.get("paths", np.array([])).tolist() != self.paths[chunk.start : chunk.stop]:
            raise JobError(
                f"{path}: holds other images than this job's {chunk.start}-{chunk.stop}; delete it and rerun"
            )
        return arrays

    def clean(self) -> None:
        """Remove the temporary files of writers that were killed."""
        for name in os.listdir(self.folder):
            if is_temporary(name):
                (self.folder / name).unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete this folder's predictions and manifest (``--overwrite``); nothing else."""
        if not self.folder.is_dir():
            return
        for name in os.listdir(self.folder):
            if _PART.match(name) or name == MANIFEST or is_temporary(name):
                (self.folder / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # left in place if it holds anything else
            self.folder.rmdir()

    def _check(self) -> bool:
        try:
            found = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            raise JobError(f"{self.folder / MANIFEST}: unreadable job manifest ({exc})") from None
        if found.get("job") != self.manifest["job"]:
            changed = "; ".join(differences(found, self.manifest)) or "its job id"
            raise JobError(
                f"{self.out} holds the predictions of an evaluation with other settings ({changed}); mixing the two "
                "would score predictions made two ways. Rerun with the original settings to continue it, choose "
                "another --out, or add --overwrite to start again"
            )
        return True
