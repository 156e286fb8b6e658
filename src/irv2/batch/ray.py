"""Ray Data integration: callable classes for ``Dataset.map_batches`` that load the weights once per actor.

>>> import ray
>>> from irv2.batch.ray import Classifier
>>> ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)   # columns bytes, path
>>> ds = ds.map_batches(Classifier, fn_constructor_kwargs={"weights": "my-module/", "top_k": 5},
...                     batch_size=64, concurrency=4)                          # 4 actors, one module each
>>> ds.write_parquet("s3://bucket/classes/")

Each batch (a dict of columns, Ray's default ``numpy`` format, or a pyarrow Table / pandas DataFrame)
needs ``path``, and optionally ``bytes`` (the encoded file: then ``path`` only names the row). The result
is a pyarrow Table with the columns of ``irv2 classify|features --output`` (see :mod:`irv2.batch.parquet`):
images are decoded and preprocessed by irv2 exactly as the CLI does, and an unreadable image becomes a
row with ``error`` set. This module needs pyarrow, not ray itself: Ray calls the classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..api import load
from ..process_settings import flush_denormals
from .decoding import IMAGE_ERRORS, Decoded, default_workers, error_text
from .inputs import Input
from .rows import RowBuilder


class _Batches:
    kind = ""

    def __init__(
        self,
        weights: str | None = None,
        *,
        top_k: int = 5,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        engine: str | None = None,
        draft: bool = True,
        workers: int | None = None,
    ) -> None:
        # Once per actor: the weights stay loaded for every batch Ray sends this actor.
        self.module = load(weights, device=device, dtype=dtype, engine=engine, progress=False)
        # An actor owns its process, as the CLI does, and flushes subnormals as it does (once torch is loaded,
        # if the engine needs it): rows match the CLI's rows.
        flush_denormals()
        self.rows = RowBuilder(self.kind, self.module, k=top_k)
        self.batch_size = batch_size
        self.draft = draft
        self.pool = ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="irv2-decode")

    def __call__(self, batch: Any) -> Any:
        """The rows of ``batch`` (columns ``path`` and optionally ``bytes``) as a pyarrow Table, in order."""
        columns = _columns(batch)
        paths = [str(p) for p in columns["path"]]
        data: Sequence[Any] = columns.get("bytes", [None] * len(paths))
        decoded = list(self.pool.map(self._decode, paths, data))
        # Through the network batch_size images at a time, as the CLI does (a batch's size sets its rounding).
        for start in range(0, len(decoded), self.batch_size):
            self.rows.add(decoded[start : start + self.batch_size])
        return self.rows.table()

    def _decode(self, path: str, data: bytes | None) -> Decoded:
        item = Input(path)
        try:
            image = self.module.preprocess(path if data is None else bytes(data), draft=self.draft)
        except IMAGE_ERRORS as exc:
            return Decoded(item, None, error_text(path, exc))
        return Decoded(item, image, None)


class Classifier(_Batches):
    """``ds.map_batches(Classifier, fn_constructor_kwargs={"weights": ..., "top_k": 5})``: columns ``path``,
    ``label``, ``index``, ``score``, ``top_k``, ``error``. Options as ``irv2.load`` and the CLI take them."""

    kind = "classify"


class Embedder(_Batches):
    """``ds.map_batches(Embedder, fn_constructor_kwargs={"weights": ...})``: columns ``path``, ``features``
    (1536 float32) and ``error``."""

    kind = "features"


def _columns(batch: Any) -> dict[str, Sequence[Any]]:
    if isinstance(batch, dict):
        return batch
    if hasattr(batch, "to_pydict"):  # pyarrow Table
        return batch.to_pydict()
    if hasattr(batch, "to_dict"):  # pandas DataFrame
        return {name: list(values) for name, values in batch.items()}
    raise TypeError(f"expected a batch of columns (dict, pyarrow Table or pandas DataFrame), got {type(batch)}")
