"""Scoring weights on labelled images: ``irv2.evaluate(module_or_handle, data, ...)`` and ``irv2 evaluate``.

Layout: ``layouts`` and ``devkit`` (which images, with which labels), ``classes`` (labels matched with the head
through synsets), ``configurations`` (the precisions and engines compared), ``runner`` (each image decoded
once, every configuration run on it) and ``state`` (the resumable predictions), ``metrics`` and ``summary``
(the scores, ``metrics.json``), ``report`` and ``charts`` (``report.html``), ``api`` (the function).
"""

from .._lazy import forwarding, lazy_attributes

__all__ = ["LAYOUTS", "METRICS_FILE", "REPORT_FILE", "LabelledImages", "evaluate", "read_layout"]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "METRICS_FILE": ".api",
        "LAYOUTS": ".layouts",
        "LabelledImages": ".layouts",
        "read_layout": ".layouts",
        "REPORT_FILE": ".report",
    },
    __all__,
)


evaluate = forwarding(
    __name__, ".api", "evaluate", "Top-1/top-5 accuracy, calibration and speed of a module on labelled images"
)
