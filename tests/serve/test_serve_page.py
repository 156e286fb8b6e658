"""The web page at ``/`` in a real headless browser: upload a photo, see five labels with bars, and the heatmap
of the top class over the photo when the toggle is on.

Drives Debian's Chromium (``/usr/bin/chromium``; ``make test`` installs it) through Playwright; Playwright's
own browser download is never used. Without Chromium the tests skip locally and fail on CI (``CI=true``).
The screenshots are left as ``web_page.png`` and ``web_page_heatmap.png`` in the artefact directory
(``$IRV2_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import numpy as np
import pytest

import irv2
from browser_support import chromium
from irv2.explain.overlay import DEFAULT_ALPHA, jet, upsample


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


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


# What the page reads back from its heatmap canvas: its size and RGBA pixels, and where it lies on the photo.
_CANVAS = """canvas => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const box = canvas.getBoundingClientRect();
  const photo = document.getElementById("preview").getBoundingClientRect();
  return {
    size: [canvas.height, canvas.width],
    rgba: Array.from(pixels),
    box: [box.top - photo.top, box.left - photo.left, box.height, box.width],
    photo: [photo.height, photo.width],
  };
}"""


@pytest.mark.slow
def test_heatmap_toggle_draws_the_top_class_map_over_the_crop(
    browser, server, serve_module, photo_files, expected, artifacts, tmp_path
):
    from playwright.sync_api import expect

    names = list(photo_files)
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(photo_files["chelsea"])
    top = irv2.top_k(expected["logits"][names.index("chelsea")], k=1)[0][0]
    reference = irv2.explain(serve_module, serve_module.preprocess(photo_files["chelsea"])[None])[0]

    page = browser.new_page(viewport={"width": 900, "height": 1100})
    errors: list[str] = []
    explained: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: explained.append(request.url) if ":explain" in request.url else None)
    page.goto(f"{server.url}/")
    toggle = page.get_by_label("Show heatmap")
    heatmap = page.locator("canvas#heatmap")
    expect(toggle).to_be_hidden()  # nothing to explain before a photo is classified
    page.set_input_files("input#file", str(photo))
    expect(page.locator("#results li")).to_have_count(5, timeout=120_000)
    expect(toggle).to_be_visible()
    expect(toggle).not_to_be_checked()
    expect(heatmap).to_be_hidden()
    assert explained == []  # classifying alone never asks for the heatmap

    toggle.check()
    expect(heatmap).to_be_visible(timeout=120_000)
    expect(page.locator("#heatmap-caption")).to_contain_text(f"“{top.label}”")
    page.screenshot(path=str(artifacts / "web_page_heatmap.png"), full_page=True)
    drawn = heatmap.evaluate(_CANVAS)

    # The canvas holds the map at the network's input size, bilinearly upsampled, in jet colours with an
    # opacity growing to DEFAULT_ALPHA at the peak: what irv2.explain's own overlay computes in numpy.
    assert drawn["size"] == [299, 299]
    rgba = np.asarray(drawn["rgba"], np.float64).reshape(299, 299, 4)
    heat = upsample(reference, (299, 299))
    assert (rgba[..., 3] > 0).mean() > 0.2 and rgba[..., 3].max() >= 150  # not blank
    np.testing.assert_allclose(rgba[..., 3], 255 * DEFAULT_ALPHA * heat, atol=1.01)
    solid = rgba[..., 3] > 60  # the canvas stores colours premultiplied: faint pixels keep few bits of them
    np.testing.assert_allclose(rgba[..., :3][solid], 255 * jet(heat)[solid], atol=4)
    # ... laid over the central crop the network saw: chelsea is 300 x 451, the crop rows 18..282, columns 28..423.
    height, width = drawn["photo"]
    expected_box = [18 / 300 * height, 28 / 451 * width, 264 / 300 * height, 395 / 451 * width]
    assert drawn["box"] == pytest.approx(expected_box, abs=1.0)

    toggle.uncheck()
    expect(heatmap).to_be_hidden()
    toggle.check()
    expect(heatmap).to_be_visible()
    assert len(explained) == 1  # the photo's heatmap is asked for once, then kept

    # With the toggle on, the next photo gets its own heatmap right after its classification.
    other = tmp_path / "astronaut.jpg"
    other.write_bytes(photo_files["astronaut"])
    other_top = irv2.top_k(expected["logits"][names.index("astronaut")], k=1)[0][0]
    page.set_input_files("input#file", str(other))
    expect(page.locator("#heatmap-caption")).to_contain_text(f"“{other_top.label}”", timeout=120_000)
    expect(heatmap).to_be_visible()
    assert len(explained) == 2
    assert not errors
    page.close()
