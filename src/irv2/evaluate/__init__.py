"""Scoring weights on labelled images: ``irv2.evaluate(module_or_handle, data, ...)`` and ``irv2 evaluate``.

Layout: ``layouts`` and ``devkit`` (which images, with which labels), ``classes`` (labels matched with the head
through synsets), ``configurations`` (the precisions and engines compared), ``runner`` (each image decoded
once, every configuration run on it) and ``state`` (the resumable predictions), ``metrics`` and ``summary``
(the scores, ``metrics.json``), ``report`` and ``charts`` (``report.html``), ``api`` (the function).
"""

from .api import METRICS_FILE, evaluate
from .layouts import LAYOUTS, LabelledImages, read_layout
from .report import REPORT_FILE

__all__ = ["LAYOUTS", "METRICS_FILE", "REPORT_FILE", "LabelledImages", "evaluate", "read_layout"]
