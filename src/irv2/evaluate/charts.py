"""The report's two figures as inline SVG: the reliability diagram and the confusion matrix.

Drawn as SVG text rather than with a plotting library, so that the report needs nothing beyond irv2's own
dependencies and stays one self-contained file that any browser renders, sharp at every zoom.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

_FONT = 'font-family="system-ui, sans-serif"'


def reliability_svg(bins: Sequence[dict[str, Any]], *, size: int = 360) -> str:
    """Accuracy against confidence per bin (bars), the confidence each bin should reach (the diagonal) and the
    gap between them (shaded): a calibrated model's bars meet the diagonal."""
    left, top, plot = 48, 12, size - 48 - 16
    parts = [
        f'<svg id="reliability" xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 16}" '
        f'viewBox="0 0 {size} {size + 16}" role="img" aria-label="reliability diagram">',
        f'<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="#fafafa" stroke="#999"/>',
    ]

    def x(value: float) -> float:
        return left + value * plot

    def y(value: float) -> float:
        return top + (1 - value) * plot

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        at, level = x(tick), y(tick)
        parts.append(f'<line x1="{at:.1f}" y1="{y(0):.1f}" x2="{at:.1f}" y2="{y(0) + 4:.1f}" stroke="#999"/>')
        parts.append(_text(at, y(0) + 16, f"{tick:g}", size=11, anchor="middle"))
        parts.append(f'<line x1="{x(0) - 4:.1f}" y1="{level:.1f}" x2="{x(0):.1f}" y2="{level:.1f}" stroke="#999"/>')
        parts.append(_text(x(0) - 7, level + 4, f"{tick:g}", size=11, anchor="end"))
    for b in bins:
        if not b["images"]:
            continue
        x0, width = x(b["lower"]), (b["upper"] - b["lower"]) * plot
        accuracy, confidence = b["accuracy"], b["confidence"]
        tip = (
            f"confidence {b['lower']:.2f}-{b['upper']:.2f}: {b['images']} images, accuracy {accuracy:.3f}, "
            f"mean confidence {confidence:.3f}"
        )
        parts.append(
            f'<rect class="bin" x="{x0 + 1:.1f}" y="{y(accuracy):.1f}" width="{width - 2:.1f}" '
            f'height="{y(0) - y(accuracy):.1f}" fill="#3b6fb6"><title>{escape(tip)}</title></rect>'
        )
        low, high = sorted((accuracy, confidence))
        parts.append(
            f'<rect x="{x0 + 1:.1f}" y="{y(high):.1f}" width="{width - 2:.1f}" height="{y(low) - y(high):.1f}" '
            'fill="#d9534f" fill-opacity="0.35"/>'
        )
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#333" stroke-dasharray="4 3"/>')
    parts.append(_text(x(0.5), size + 12, "confidence (top-1 probability)", size=12, anchor="middle"))
    parts.append(
        f'<text x="12" y="{y(0.5):.1f}" font-size="12" text-anchor="middle" transform="rotate(-90 12 {y(0.5):.1f})" '
        f"{_FONT}>accuracy</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def confusion_svg(names: Sequence[str], matrix: np.ndarray) -> str:
    """The confusion matrix ``[true, predicted]`` (the last column: any other class), each cell shaded by its share
    of the row, with its count where the cell is large enough to hold it."""
    n = len(names)
    cell = int(max(10, min(32, 640 // max(n, 1))))
    label_width, header = 175, 175
    width, height = label_width + cell * (n + 1) + 8, header + cell * n + 8
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    share = matrix / rows
    parts = [
        f'<svg id="confusion" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="confusion matrix">'
    ]
    columns = [*names, "other"]
    for j, name in enumerate(columns):
        cx = label_width + j * cell + cell / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{header - 6}" font-size="11" transform="rotate(-60 {cx:.1f} {header - 6})" {_FONT}>'
            f"{escape(_short(name))}</text>"
        )
    for i, name in enumerate(names):
        cy = header + i * cell
        parts.append(
            f'<text x="{label_width - 6}" y="{cy + cell / 2 + 4:.1f}" font-size="11" text-anchor="end" {_FONT}>'
            f"{escape(_short(name))}</text>"
        )
        for j in range(n + 1):
            value, fraction = int(matrix[i, j]), float(share[i, j])
            shade = _shade(fraction, diagonal=i == j)
            tip = f"true {names[i]}, predicted {columns[j]}: {value}"
            parts.append(
                f'<rect class="cell" x="{label_width + j * cell}" y="{cy}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{shade}"><title>{escape(tip)}</title></rect>'
            )
            if value and cell >= 18:
                colour = "#fff" if fraction > 0.55 else "#222"
                parts.append(
                    f'<text x="{label_width + j * cell + (cell - 1) / 2:.1f}" y="{cy + cell / 2 + 4:.1f}" '
                    f'font-size="10" text-anchor="middle" fill="{colour}" {_FONT}>{value}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)


def _text(x: float, y: float, text: str, *, size: int, anchor: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {_FONT}>{escape(text)}</text>'


def _shade(fraction: float, *, diagonal: bool) -> str:
    """White to blue for correct predictions (the diagonal), white to red elsewhere, by the row's share."""
    base = (59, 111, 182) if diagonal else (201, 64, 60)
    mixed = [round(255 + (c - 255) * fraction) for c in base]
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def _short(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
