"""``report.html``: an evaluation as one self-contained page, readable offline and attachable to a message.

Everything is inside the file: the style, the figures (inline SVG, :mod:`irv2.evaluate.charts`) and the
thumbnails of the worst classes' misclassified images (small JPEGs as ``data:`` URIs, made with Pillow). It
loads nothing from anywhere, so it renders the same on any machine, with or without the images or a network.
"""

from __future__ import annotations

import base64
import io
import os
from html import escape
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..atomic import write_text
from .charts import confusion_svg, reliability_svg
from .datasets import SET_NAMES

REPORT_FILE = "report.html"
THUMBNAIL = 112  # pixels, the longer side
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #555; } .meta code { color: #222; }
figure { display: inline-block; margin: 0.3em; text-align: center; font-size: 0.8em; max-width: 150px; }
figcaption { overflow-wrap: anywhere; }
figure img { display: block; margin: 0 auto 0.2em; border: 1px solid #ccc; }
.missing { width: 112px; height: 84px; background: #eee; display: flex; align-items: center; justify-content: center; }
.scroll { overflow-x: auto; }
tr.this td { font-weight: bold; }
"""


def write_report(
    path: str | os.PathLike[str], metrics: dict[str, Any], confusion: tuple[list[str], np.ndarray] | None
) -> None:
    """Write the report of ``metrics`` (``metrics.json``'s content) to ``path``, atomically; ``confusion`` is
    :func:`irv2.evaluate.metrics.confusion`'s result (None: too many classes to draw)."""
    write_text(path, render_report(metrics, confusion))


def render_report(metrics: dict[str, Any], confusion: tuple[list[str], np.ndarray] | None) -> str:
    """The report as HTML text."""
    title = f"irv2 evaluate: {metrics['data']}"
    sections = [
        f"<h1>irv2 evaluate</h1>{_meta(metrics)}",
        "<h2>Summary</h2>" + _summary(metrics),
        *(["<h2>Published figures</h2>" + _published(metrics)] if metrics.get("published") else []),
        "<h2>Reliability</h2>" + _reliability(metrics),
        "<h2>Confusion matrix</h2>" + _confusion(metrics, confusion),
        "<h2>Worst classes</h2>" + _worst(metrics),
        "<h2>Unreadable files</h2>" + _errors(metrics),
        "<h2>Machine and versions</h2>" + _machine(metrics),
    ]
    body = "\n".join(f"<section>{s}</section>" for s in sections)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _meta(metrics: dict[str, Any]) -> str:
    rows = [
        ("data", metrics["data"]),
        ("layout", metrics["layout"]),
        ("labels", metrics.get("labels") or "the layout's own"),
        ("synset map", metrics.get("synsets")),
        ("weights", metrics["weights"]),
        ("classes", metrics["classes"]),
        ("evaluated", metrics["created"]),
    ]
    shown = "<br>".join(f"{name}: <code>{escape(str(value))}</code>" for name, value in rows if value is not None)
    return f'<p class="meta">{shown}</p>'


def _summary(metrics: dict[str, Any]) -> str:
    head = (
        "<tr><th>configuration</th><th>images</th><th>errors</th><th>top-1</th><th>top-5</th><th>ECE</th>"
        "<th>images/s (network)</th><th>top-1 agreement</th><th>mean KL</th></tr>"
    )
    rows = []
    for i, run in enumerate(metrics["runs"]):
        agreement = run["agreement"]
        rows.append(
            f"<tr><td>{escape(run['name'])}{' (reference)' if i == 0 else ''}</td>"
            f'<td class="number">{run["images"]}</td><td class="number">{run["errors"]}</td>'
            f'<td class="number">{_percent(run["top1"])}</td><td class="number">{_percent(run["top5"])}</td>'
            f'<td class="number">{_number(run["ece"], 4)}</td>'
            f'<td class="number">{_number(run["network_images_per_second"], 1)}</td>'
            f'<td class="number">{_percent(agreement["top1"])}</td>'
            f'<td class="number">{_number(agreement["mean_kl"], 5)}</td></tr>'
        )
    rate = _number(metrics.get("images_per_second"), 1)
    whole = (
        f"<p>The whole pass: {metrics['inputs']} images in {_number(metrics['seconds'], 1)} s, {rate} images/s "
        "(each image decoded once, then every configuration run on it).</p>"
    )
    skipped = "".join(
        f"<li>{escape(str(s['dtype']))} on {escape(str(s['engine']))}: {escape(s['reason'])}</li>"
        for s in metrics.get("skipped", [])
    )
    left_out = f"<p>Not run:</p><ul>{skipped}</ul>" if skipped else ""
    notes = ""
    if metrics["scored_classes"] != metrics["classes"]:
        notes += (
            f"<p>Scored over the {metrics['scored_classes']} classes of the data's folders (the ImageNet-A/-R "
            f"protocol); over all {metrics['classes']} outputs: top-1 {_percent(metrics['top1_all_classes'])}, "
            f"top-5 {_percent(metrics['top5_all_classes'])}.</p>"
        )
    if metrics.get("images_without_labels"):
        notes += f"<p>{metrics['images_without_labels']} images have no ReaL labels and are left out.</p>"
    return f'<table id="summary">{head}{"".join(rows)}</table>{whole}{notes}{left_out}'


def _published(metrics: dict[str, Any]) -> str:
    """The figures published for these weights, set by set, beside this evaluation's on its set."""
    published, this_set = metrics["published"], metrics.get("set")
    head = "<tr><th>set</th><th>top-1</th><th>top-5</th><th>source</th><th>preprocessing</th></tr>"
    rows = []
    for publication in published["publications"]:
        for name, figures in publication["sets"].items():
            mine = ' class="this"' if name == this_set else ""
            rows.append(
                f"<tr{mine}><td>{escape(SET_NAMES.get(name, name))}</td>"
                f'<td class="number">{figures["top1"]:.2f}%</td><td class="number">{figures["top5"]:.2f}%</td>'
                f"<td>{escape(publication['source'])}</td><td>{escape(publication['preprocessing'])}</td></tr>"
            )
    if this_set is not None:
        rows.insert(
            0,
            f'<tr class="this"><td>{escape(SET_NAMES[this_set])}: this evaluation</td>'
            f'<td class="number">{_percent(metrics["top1"])}</td><td class="number">{_percent(metrics["top5"])}</td>'
            f"<td>irv2, {escape(metrics['runs'][0]['name'])}</td><td>the weights' own (TF-Slim's for TF-Hub's and "
            "TF-Slim's weights)</td></tr>",
        )
        where = f"This evaluation is on {escape(SET_NAMES[this_set])}."
    else:
        where = (
            "The layout does not say which set this is (a folder of 1000 classes may be the validation set or "
            "ImageNet-Sketch)."
        )
    return (
        f"<p>Published for <code>{escape(published['weights'])}</code>, these weights. {where} Figures differ by "
        "tenths of a point with the preprocessing and the head (1000 or 1001 classes), and can only be compared on "
        "the same set: see docs/evaluate.md.</p>"
        f'<table id="published">{head}{"".join(rows)}</table>'
    )


def _reliability(metrics: dict[str, Any]) -> str:
    if not metrics["reliability"]:
        return "<p>No image was read, so there is nothing to draw.</p>"
    return (
        f"<p>{escape(metrics['runs'][0]['name'])}: expected calibration error {_number(metrics['ece'], 4)} "
        f"({len(metrics['reliability'])} bins of confidence; the dashed diagonal is perfect calibration).</p>"
        + reliability_svg(metrics["reliability"])
    )


def _confusion(metrics: dict[str, Any], confusion: tuple[list[str], np.ndarray] | None) -> str:
    if confusion is None:
        return f"<p>Drawn for up to 50 classes; these labels have {len(metrics['per_class'])}.</p>"
    keys, matrix = confusion
    names = [_display(key, metrics["per_class"][key]["name"]) for key in keys]
    return (
        "<p>Rows: the true class; columns: the top-1 prediction (the last column: any class outside these).</p>"
        f'<div class="scroll">{confusion_svg(names, matrix)}</div>'
    )


def _worst(metrics: dict[str, Any]) -> str:
    if not metrics["worst_classes"]:
        return "<p>No class to show.</p>"
    rows = []
    for entry in metrics["worst_classes"]:
        figures = "".join(_thumbnail(example) for example in entry["examples"]) or "none misclassified"
        rows.append(
            f"<tr><td>{escape(_display(entry['class'], entry['name']))}</td>"
            f'<td class="number">{entry["images"]}</td><td class="number">{_percent(entry["top1"])}</td>'
            f'<td class="number">{_percent(entry["top5"])}</td><td>{figures}</td></tr>'
        )
    head = "<tr><th>class</th><th>images</th><th>top-1</th><th>top-5</th><th>misclassified examples</th></tr>"
    return f'<table id="worst">{head}{"".join(rows)}</table>'


def _thumbnail(example: dict[str, Any]) -> str:
    caption = f"{os.path.basename(example['path'])} → {_display(example['predicted'], example['predicted_name'])}"
    source = thumbnail_uri(example["path"])
    picture = (
        f'<img src="{source}" alt="{escape(os.path.basename(example["path"]))}">'
        if source
        else '<div class="missing">unreadable</div>'
    )
    return f'<figure title="{escape(example["path"])}">{picture}<figcaption>{escape(caption)}</figcaption></figure>'


def thumbnail_uri(path: str, size: int = THUMBNAIL) -> str | None:
    """The image at ``path`` shrunk to ``size`` pixels on its longer side (turned upright), as a JPEG ``data:``
    URI; None when it cannot be read any more."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=80)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _errors(metrics: dict[str, Any]) -> str:
    if not metrics["error_files"]:
        return "<p>None: every image was read.</p>"
    items = "".join(f"<li><code>{escape(e['path'])}</code>: {escape(e['error'])}</li>" for e in metrics["error_files"])
    count = metrics["errors"]
    files = "1 file" if count == 1 else f"{count} files"
    return f"<p>{files} could not be read; they are left out of every score.</p><ul>{items}</ul>"


def _machine(metrics: dict[str, Any]) -> str:
    machine = metrics.get("machine", {})
    versions = {f"{k} version": v for k, v in metrics.get("versions", {}).items() if k not in machine}
    rows = {**machine, **versions}
    cells = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows.items())
    return f'<table id="machine">{cells}</table>'


def _display(key: str, name: str) -> str:
    return key if key == name else f"{key} {name}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
