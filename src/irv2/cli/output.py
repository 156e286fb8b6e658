"""Writers for ``irv2 classify`` results: ``text`` for people, ``json`` (JSON Lines) and ``csv`` for programs.

Every writer gets the results in input order, one image at a time, and flushes after each batch so a
pipe sees results as they are computed. Scores are softmax probabilities.

text::

    photos/cat.jpg
      0.7412  tabby  (282)
      0.1520  tiger cat  (283)
    photos/notes.jpg
      error: not a recognised image file (expected JPEG, PNG, GIF, BMP, WebP or TIFF)

json (one object per line)::

    {"path": "photos/cat.jpg", "predictions": [{"index": 282, "label": "tabby", "score": 0.7412}, ...]}
    {"path": "photos/notes.jpg", "error": "not a recognised image file (...)"}

csv (one row per prediction, or one row per failed image)::

    path,rank,index,label,score,error
    photos/cat.jpg,1,282,tabby,0.7412,
    photos/notes.jpg,,,,,not a recognised image file (...)
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from ..batch import Result

FORMATS = ("text", "json", "csv")
CSV_HEADER = ("path", "rank", "index", "label", "score", "error")


class _Writer:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, result: Result) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        self.stream.flush()


class TextWriter(_Writer):
    """The path on its own line, then one indented line per prediction: score, label, class index."""

    def write(self, result: Result) -> None:
        lines = [result.path]
        if result.error is not None:
            lines.append(f"  error: {result.error}")
        else:
            lines.extend(f"  {p.score:.4f}  {p.label}  ({p.index})" for p in result.predictions or ())
        self.stream.write("\n".join(lines) + "\n")


class JsonWriter(_Writer):
    """JSON Lines: one object per image, ``predictions`` or ``error``. ASCII-only, so any terminal copes."""

    def write(self, result: Result) -> None:
        record: dict[str, object] = {"path": result.path}
        if result.error is not None:
            record["error"] = result.error
        else:
            record["predictions"] = [
                {"index": p.index, "label": p.label, "score": p.score} for p in result.predictions or ()
            ]
        self.stream.write(json.dumps(record) + "\n")


class CsvWriter(_Writer):
    """``path,rank,index,label,score,error``: a row per prediction (rank from 1), a row per failed image."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._csv = csv.writer(stream, lineterminator="\n")
        self._csv.writerow(CSV_HEADER)

    def write(self, result: Result) -> None:
        if result.error is not None:
            self._csv.writerow((result.path, "", "", "", "", result.error))
            return
        for rank, p in enumerate(result.predictions or (), start=1):
            self._csv.writerow((result.path, rank, p.index, p.label, repr(p.score), ""))


def make_writer(fmt: str, stream: TextIO) -> _Writer:
    """The writer for ``fmt`` (one of :data:`FORMATS`) on ``stream``."""
    writers = {"text": TextWriter, "json": JsonWriter, "csv": CsvWriter}
    if fmt not in writers:
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
    return writers[fmt](stream)
