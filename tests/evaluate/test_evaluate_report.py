"""``report.html``: one self-contained file that Debian's Chromium renders with every part of the report.

The browser test drives ``/usr/bin/chromium`` through Playwright, as the server's web-page test does (never
Playwright's own browser download); without Chromium it skips locally and fails on CI (``CI=true``). Every
request the page makes besides the file itself is recorded, and there must be none. The screenshot is left as
``evaluate_report.png`` in the artefact directory (``$IRV2_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import irv2
from browser_support import chromium
from evaluate_support import write_folders


@pytest.fixture(scope="module")
def report(tmp_path_factory, drawn, eval_module) -> tuple[Path, dict]:
    """An evaluation's report and metrics: 14 readable images of a handful of classes, one broken."""
    data = write_folders(tmp_path_factory.mktemp("report") / "val", drawn.files, drawn.labels)
    out = data.parent / "out"
    metrics = irv2.evaluate(eval_module, data, out=out, quiet=True, worst=3)
    return out / "report.html", metrics


def test_the_report_is_self_contained(report):
    path, metrics = report
    html = path.read_text()
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/jpeg;base64,") for s in sources)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    for heading in ("Summary", "Reliability", "Confusion matrix", "Worst classes", "Unreadable files", "Machine"):
        assert f"<h2>{heading}" in html
    assert metrics["error_files"][0]["path"] in html and metrics["machine"]["cpu"] in html


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.slow
def test_the_report_renders_in_chromium(browser, report, tmp_path):
    path, metrics = report
    artifacts = Path(os.environ.get("IRV2_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts / "evaluate_report.png"), full_page=True)

    assert not errors
    assert [url for url in requests if not url.startswith("data:")] == [path.as_uri()]  # nothing else fetched
    assert page.locator("#summary tr").count() == 1 + len(metrics["runs"])
    assert page.locator("#summary td").first.inner_text() == "torch float32 (reference)"
    drawn_bins = [b for b in metrics["reliability"] if b["images"]]
    assert page.locator("#reliability rect.bin").count() == len(drawn_bins)
    classes = len(metrics["per_class"])
    assert page.locator("#confusion rect.cell").count() == classes * (classes + 1)
    box = page.locator("#confusion").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    images = page.locator("#worst img")
    examples = sum(len(w["examples"]) for w in metrics["worst_classes"])
    assert examples > 0 and images.count() == examples
    widths = images.evaluate_all("images => images.map(i => i.complete ? i.naturalWidth : 0)")
    assert all(width > 0 for width in widths)  # every thumbnail decoded by the browser
    assert page.locator("#machine").inner_text().count("version") >= 3
    page.close()
