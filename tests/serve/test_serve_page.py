"""The web page at ``/`` in a real headless browser: upload a photo, see five labels with bars.

Drives Debian's Chromium (``/usr/bin/chromium``; ``make test`` installs it) through Playwright; Playwright's
own browser download is never used. Without Chromium the test skips locally and fails on CI (``CI=true``).
The screenshot is left as ``web_page.png`` in the artefact directory (``$IRV2_TEST_ARTIFACTS``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import irv2
from requires import unavailable

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium; `make test` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Root (as in CI containers) cannot use Chromium's sandbox.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.mark.slow
def test_upload_shows_top_five_with_bars(browser, server, photo_files, expected, artifacts, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(photo_files["chelsea"])
    truth = irv2.top_k(expected["logits"][list(photo_files).index("chelsea")], k=5)[0]

    page = browser.new_page(viewport={"width": 900, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/")
    expect(page.locator("h1")).to_have_text("Inception-ResNet-v2")
    page.set_input_files("input#file", str(photo))
    rows = page.locator("#results li")
    expect(rows).to_have_count(5, timeout=120_000)
    expect(page.locator("#status")).to_contain_text("chelsea.jpg:")
    page.screenshot(path=str(artifacts / "web_page.png"), full_page=True)

    assert rows.locator(".label").all_text_contents() == [p.label for p in truth]
    shown = [float(text.rstrip("%")) for text in rows.locator(".score").all_text_contents()]
    assert shown == pytest.approx([100 * p.score for p in truth], abs=0.06)
    widths = rows.locator(".bar").evaluate_all("bars => bars.map(b => b.getBoundingClientRect().width)")
    tracks = rows.locator(".track").evaluate_all("tracks => tracks.map(t => t.getBoundingClientRect().width)")
    assert all(w > 0 for w in widths) and widths == sorted(widths, reverse=True)
    assert widths[0] / tracks[0] == pytest.approx(truth[0].score, abs=0.01)  # bar length is the probability
    assert not errors

    # A file that is not an image: the page says so instead of showing stale results.
    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    page.set_input_files("input#file", str(junk))
    expect(page.locator("#status")).to_contain_text("Could not classify notes.png", timeout=60_000)
    expect(rows).to_have_count(0)
    page.close()
