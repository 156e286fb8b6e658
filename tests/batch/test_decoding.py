"""The decoding pipeline: parallel threads give the same images in the same order as decoding inline, errors
become rows, memory stays bounded, and draft decoding of large JPEGs stays close to the exact pipeline."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

import irv2
from irv2.batch import Input, decode_batches, stack_images
from irv2.batch import decoding as decoding_module
from irv2.preprocessing import Preprocessing

RECIPE = Preprocessing()  # TF-Slim's evaluation preprocessing at 299 x 299, as the TF-Hub weights record it


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photo_arrays):
    root = tmp_path_factory.mktemp("decode")
    paths = []
    for index, (name, image) in enumerate(photo_arrays.items()):
        path = root / f"{index:02d}_{name}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    paths.insert(2, str(root / "broken.jpg"))
    return paths


def _inputs(paths):
    return [Input(p) for p in paths] + [Input("missing.jpg", error="no such file")]


def test_threads_match_inline_decoding_in_order(folder):
    inline = [d for batch in decode_batches(_inputs(folder), 2, RECIPE, workers=0) for d in batch]
    threaded = [d for batch in decode_batches(_inputs(folder), 2, RECIPE, workers=3, prefetch=1) for d in batch]
    assert [d.input.path for d in threaded] == [*folder, "missing.jpg"]
    for a, b in zip(inline, threaded, strict=True):
        assert a.input == b.input and a.error == b.error
        if a.image is None:
            assert b.image is None
        else:
            np.testing.assert_array_equal(a.image, b.image)
    errors = {d.input.path: d.error for d in threaded if d.error}
    assert set(errors) == {folder[2], "missing.jpg"}
    assert "not a recognised image" in errors[folder[2]] or "cannot" in errors[folder[2]]


def test_batches_have_the_requested_size(folder):
    sizes = [len(batch) for batch in decode_batches(_inputs(folder), 4, RECIPE, workers=2)]
    assert sizes == [4, 3]
    with pytest.raises(ValueError, match="batch_size"):
        next(decode_batches(_inputs(folder), 0, RECIPE))


def test_prefetch_is_bounded(folder, monkeypatch):
    """No more than (1 + prefetch) batches are ever decoded ahead of the consumer."""
    started = []
    lock = threading.Lock()
    real = decoding_module.decode_one

    def counting(item, *args, **kwargs):
        with lock:
            started.append(item.path)
        return real(item, *args, **kwargs)

    monkeypatch.setattr(decoding_module, "decode_one", counting)
    many = [Input(folder[0])] * 20
    batches = decode_batches(many, 2, RECIPE, workers=2, prefetch=1)
    next(batches)
    assert len(started) <= 2 * (1 + 1) + 2  # the first window, refilled by one batch
    batches.close()  # the consumer stops: nothing more is started
    settled = len(started)
    assert settled < 20


def test_stack_images_skips_failures(folder):
    batch = next(decode_batches(_inputs(folder)[:3], 3, RECIPE, workers=0))
    stacked = stack_images(batch)
    assert stacked.shape == (2, 299, 299, 3) and stacked.dtype == np.float32
    assert stack_images([d for d in batch if d.image is None]) is None


def _large_jpeg(path, photo: np.ndarray, size=(2400, 1600)):
    Image.fromarray(photo).resize(size, Image.Resampling.BICUBIC).save(path, quality=92)
    return path


def test_draft_decoding_reduces_large_jpegs_only(tmp_path, photo_arrays):
    big = _large_jpeg(tmp_path / "big.jpg", photo_arrays["chelsea"])
    exact = irv2.load_image(big)
    draft = irv2.load_image(big, draft=True)
    assert draft.shape == exact.shape == (299, 299, 3)
    # A smooth (upsampled) photo: the reduced decode is the same picture, not a different crop or shift.
    assert np.abs(draft - exact).mean() < 0.02  # about 3/255 on average
    assert np.abs(exact[:, ::-1] - exact).mean() > 0.05  # what a wrong crop or flip would look like
    assert np.abs(draft - exact).max() > 0  # it did decode at a reduced scale
    small = tmp_path / "small.jpg"
    Image.fromarray(photo_arrays["chelsea"]).save(small, quality=92)  # 451 x 300: nothing to reduce
    np.testing.assert_array_equal(irv2.load_image(small, draft=True), irv2.load_image(small))
    png = tmp_path / "big.png"
    Image.open(big).save(png)
    np.testing.assert_array_equal(irv2.load_image(png, draft=True), irv2.load_image(png))


def test_draft_keeps_the_crop_at_least_the_output_size(tmp_path, photo_arrays, monkeypatch):
    """The reduced image must still be downsampled to 299, never upsampled: its short side >= 299 / 0.875."""
    from irv2.preprocessing import eval as eval_module

    seen = []
    real = eval_module.preprocess_for_eval

    def spy(pixels, *args, **kwargs):
        seen.append(pixels.shape)
        return real(pixels, *args, **kwargs)

    monkeypatch.setattr(eval_module, "preprocess_for_eval", spy)
    big = _large_jpeg(tmp_path / "big.jpg", photo_arrays["coffee"], size=(3000, 2000))
    irv2.load_image(big, draft=True)
    height, width = seen[-1][:2]
    assert min(height, width) >= 342 and min(height, width) < 2000  # reduced (1/4 gives 750 x 500)
