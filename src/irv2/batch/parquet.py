"""The Parquet tables of batch jobs: their schemas, building them from results, writing them atomically.

pyarrow is imported only here and only when a job writes Parquet (``pip install 'irv2[parquet]'``).

classify: ``path`` string, ``label`` string, ``index`` int32, ``score`` float32 (the top-1 softmax
probability), ``top_k`` list<struct<label string, index int32, score float32>> (best first) and ``error``
string. features: ``path``, ``features`` fixed_size_list<float32>[1536] and ``error``; with ``--endpoint``,
``features`` holds the end point's maps as Arrow's fixed-shape tensor ``[h, w, c]`` (the extension type
``arrow.fixed_shape_tensor``, stored as a fixed_size_list of h*w*c floats in NHWC order). A row whose image
failed has nulls everywhere but ``path`` and ``error``; ``error`` is null on every row that succeeded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..extras import require_extra
from ..labels import Prediction
from ..model import NUM_FEATURES

# Keys of the file-level metadata: which job wrote the file and what it holds.
JOB_KEY = b"irv2.job"
SUMMARY_KEY = b"irv2.summary"
MANIFEST_KEY = b"irv2.manifest"  # the settings behind the rows, so a later run can say what it changed


def pyarrow() -> Any:
    """The ``pyarrow`` module (with ``pyarrow.parquet`` loaded), or MissingDependencyError saying how to
    install it."""
    require_extra("parquet", "writing Parquet")
    import pyarrow as pa
    import pyarrow.parquet  # loads pa.parquet

    return pa


def schema(kind: str, features_shape: Sequence[int] | None = None) -> Any:
    """The ``pyarrow.Schema`` of a ``classify`` or ``features`` table; ``features_shape`` is the shape of one
    row's features when they are an end point's maps (``[h, w, c]``), None for the 1536-d vector."""
    pa = pyarrow()
    if kind == "classify":
        prediction = pa.struct([("label", pa.string()), ("index", pa.int32()), ("score", pa.float32())])
        fields = [
            ("path", pa.string()),
            ("label", pa.string()),
            ("index", pa.int32()),
            ("score", pa.float32()),
            ("top_k", pa.list_(prediction)),
            ("error", pa.string()),
        ]
    elif kind == "features":
        fields = [("path", pa.string()), ("features", _features_type(features_shape)), ("error", pa.string())]
    else:
        raise ValueError(f"unknown job kind {kind!r}: classify or features")
    return pa.schema(fields)


def _features_type(shape: Sequence[int] | None) -> Any:
    pa = pyarrow()
    if shape is None or list(shape) == [NUM_FEATURES]:
        return pa.list_(pa.float32(), NUM_FEATURES)
    return pa.fixed_shape_tensor(pa.float32(), list(shape))


def classify_table(paths: Sequence[str], predictions: Sequence[list[Prediction] | None], errors: Sequence[str | None]):
    """The classify table of these rows; ``predictions[i]`` is None exactly where ``errors[i]`` is set."""
    pa = pyarrow()
    top1 = [p[0] if p else None for p in predictions]
    columns = {
        "path": list(paths),
        "label": [p.label if p else None for p in top1],
        "index": [p.index if p else None for p in top1],
        "score": [p.score if p else None for p in top1],
        "top_k": [
            None if p is None else [{"label": q.label, "index": q.index, "score": q.score} for q in p]
            for p in predictions
        ],
        "error": list(errors),
    }
    return pa.Table.from_pydict(columns, schema=schema("classify"))


def features_table(paths: Sequence[str], features: np.ndarray, errors: Sequence[str | None]):
    """The features table of these rows: ``features`` float32 ``[N, 1536]`` (or an end point's ``[N, h, w, c]``),
    any values where ``errors[i]`` is set (those rows become null)."""
    pa = pyarrow()
    shape = features.shape[1:]
    features = np.ascontiguousarray(features, dtype=np.float32)
    valid = pa.array([e is None for e in errors], type=pa.bool_())
    # Built from buffers rather than Python lists: a million rows of 1536 floats stay one numpy copy.
    storage = pa.Array.from_buffers(
        pa.list_(pa.float32(), int(np.prod(shape))),
        len(paths),
        [None if all(e is None for e in errors) else valid.buffers()[1]],
        children=[pa.array(features.reshape(-1))],
    )
    kind = _features_type(shape)
    vectors = storage if kind == storage.type else pa.ExtensionArray.from_storage(kind, storage)
    return pa.Table.from_arrays(
        [pa.array(list(paths), pa.string()), vectors, pa.array(list(errors), pa.string())],
        schema=schema("features", shape),
    )


def with_metadata(table, job: str, summary: dict[str, Any] | None = None):
    """``table`` with the job id (and a summary) in its file-level metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata[JOB_KEY] = job.encode()
    if summary is not None:
        metadata[SUMMARY_KEY] = json.dumps(summary).encode()
    return table.replace_schema_metadata(metadata)


def file_metadata(path: str | os.PathLike[str]) -> dict[bytes, bytes]:
    """The file-level key-value metadata of a Parquet file (reads the footer only)."""
    return dict(pyarrow().parquet.read_schema(path).metadata or {})


def write_atomic(table, path: str | os.PathLike[str]) -> None:
    """Write ``table`` to ``path`` atomically (:mod:`irv2.atomic`): ``path`` is either absent or complete,
    whatever happens (Ctrl-C, ``kill -9``, power loss)."""
    parquet = pyarrow().parquet
    with atomic_write(path) as f:
        parquet.write_table(table, f)
