"""``OUT/checkpoint.pt``: everything ``--resume`` needs to carry on after the last finished epoch.

An internal, resumable state (not a model format; the model is the irv2 module beside it), written with
``torch.save`` after every epoch to a temporary file and renamed into place, so an interruption leaves
either the previous checkpoint or the new one. It holds only tensors and plain Python values, so it
loads with ``torch.load(weights_only=True)``: no arbitrary code runs when a checkpoint is read.

Contents: ``epoch`` (epochs finished), ``config`` (the options), ``classes``, ``train`` and ``val``
(the image lists, to refuse resuming on different data), ``trainable`` (the state dict of what trains:
the head in linear mode, the whole network otherwise), ``optimizer``, ``scheduler``, ``history``,
``best`` (epoch, validation loss and accuracy, predictions), ``bad_epochs`` (for early stopping) and
``rng`` (each process's random generator states).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import CheckpointError

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "irv2-finetune-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save``, written atomically (:mod:`irv2.atomic`)."""
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, "version": VERSION, **state}, f)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint` (tensors on the CPU)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise CheckpointError(path, f"not a readable fine-tuning checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(path, "not an irv2 fine-tuning checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(path, "written by a newer irv2; upgrade irv2 to resume it")
    return state


def rng_state() -> dict[str, Any]:
    """This process's generator states: torch (CPU and CUDA), numpy's global one, Python's ``random``."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA only where the same GPUs are present)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
