"""What a run leaves beside the module: ``metrics.json``, ``training_curves.png``, ``confusion_matrix.png``.

matplotlib is optional (``pip install irv2[finetune]``) and imported only here, when the plots are drawn.
Figures are drawn on matplotlib's headless Agg canvas directly, without pyplot, so no display is needed
and a caller's own pyplot backend and figures are left alone. Without matplotlib the run still writes
the module and metrics.json, and says that the plots were skipped.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write, write_text

METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """``[true class, predicted class]`` counts."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def write_metrics(out: Path, metrics: dict[str, Any]) -> Path:
    """``metrics.json``, written atomically (a reader never sees half a file)."""
    write_text(out / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return out / METRICS_FILE


def plot_curves(out: Path, history: Sequence[dict[str, float]]) -> Path:
    """Loss, accuracy and learning rate per epoch, training against validation."""
    figure = _figure((13, 3.8))
    axes = figure.subplots(1, 3)
    epochs = [h["epoch"] for h in history]
    for axis, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        axis.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        axis.plot(epochs, [h[f"val_{key}"] for h in history], "o-", label="validation")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.legend()
        axis.grid(alpha=0.3)
    axes[2].plot(epochs, [h["lr"] for h in history], "o-", color="gray")
    axes[2].set_title("learning rate (head, end of epoch)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, out / CURVES_FILE)


def plot_confusion(out: Path, matrix: np.ndarray, classes: Sequence[str], title: str) -> Path:
    """The validation confusion matrix, rows true classes, columns predictions, counts in the cells."""
    n = len(classes)
    side = min(max(4.0, 0.45 * n + 2.0), 30.0)
    figure = _figure((side + 1.0, side))
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set_xticks(range(n), classes, rotation=90 if n > 6 else 0)
    axis.set_yticks(range(n), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    if n <= 30:
        peak = matrix.max() if matrix.size else 0
        for i in range(n):
            for j in range(n):
                colour = "white" if matrix[i, j] > peak / 2 else "black"
                axis.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    return _save(figure, out / CONFUSION_FILE)


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    with atomic_write(path) as f:
        figure.savefig(f, dpi=100, format="png")
    return path
