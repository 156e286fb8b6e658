"""From decoded images to output rows: the network on each batch, then the rows of a Parquet table.

Shared by the batch jobs of ``irv2 classify`` / ``irv2 features`` and the Ray Data classes, so both give
the same rows for the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..api import Module
from ..labels import Prediction
from .decoding import Decoded
from .parquet import classify_table, features_table
from .stream import class_labels, embed_batch, output_shape, predict_batch

KINDS = ("classify", "features")


class RowBuilder:
    """Collects the rows of ``kind`` (``classify`` or ``features``) batch by batch; :meth:`table` gives them
    as one pyarrow Table in the order they were added, and starts again empty.

    Args:
        module: the loaded weights; ``classify`` needs a classifier head.
        k: predictions per image in ``top_k`` (classify).
        endpoint: the TF-Slim end point whose maps are the features (features), None for the 1536-d vector.
    """

    def __init__(self, kind: str, module: Module, *, k: int = 5, endpoint: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}: {' or '.join(KINDS)}")
        if kind == "classify" and not module.num_classes:
            raise ValueError("a feature-vector module without a classifier cannot classify")
        self.kind = kind
        self.module = module
        self.k = k
        self.endpoint = endpoint
        self.labels = class_labels(module) if kind == "classify" else []
        self._reset()

    def _reset(self) -> None:
        self.paths: list[str] = []
        self.errors: list[str | None] = []
        self.predictions: list[list[Prediction] | None] = []
        self.features: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.paths)

    def add(self, batch: Sequence[Decoded]) -> int:
        """Run the network on the images of ``batch`` and keep one row per item; returns how many failed."""
        self.paths.extend(d.input.path for d in batch)
        self.errors.extend(d.error if d.image is None else None for d in batch)
        if self.kind == "classify":
            self.predictions.extend(r.predictions for r in predict_batch(self.module, batch, self.k, self.labels))
        else:
            self.features.append(embed_batch(self.module, batch, self.endpoint))
        return sum(d.image is None for d in batch)

    def table(self):
        """The rows added since the last call, as a pyarrow Table (see :mod:`irv2.batch.parquet`)."""
        if self.kind == "classify":
            table = classify_table(self.paths, self.predictions, self.errors)
        else:
            shape = output_shape(self.module, self.endpoint)
            stacked = np.concatenate(self.features) if self.features else np.zeros((0, *shape), np.float32)
            table = features_table(self.paths, stacked, self.errors)
        self._reset()
        return table
