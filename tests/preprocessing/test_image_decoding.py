"""Decoding real photos in every awkward form a user can hand us; failing loudly on bad files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps
from png16_writer import png16

from irv2.errors import ImageError, Irv2Error
from irv2.preprocessing import decode_image, load_image, preprocess_for_eval
from irv2.preprocessing.decode import decode_native

_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    """A real, non-square photo (300 x 451 RGB, uint8)."""
    return skimage.data.chelsea()


def _encode(array_or_image, fmt: str, **options) -> bytes:
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buffer = io.BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def _u8(pixels) -> np.ndarray:
    """What convert_image_dtype makes of 8-bit samples: x * float32(1/255)."""
    return np.asarray(pixels).astype(np.float32) * np.float32(1 / 255)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    return exif


# --- plain formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_lossless_formats_decode_exactly(chelsea, fmt, options):
    decoded = decode_image(_encode(chelsea, fmt, **options))
    assert decoded.dtype == np.float32
    assert decoded.shape == (300, 451, 3)
    assert decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, _u8(chelsea))


def test_jpeg_decodes_close_to_the_original(chelsea):
    decoded = decode_image(_encode(chelsea, "JPEG", quality=95))
    assert decoded.shape == (300, 451, 3)
    error = np.abs(decoded - chelsea / 255.0)
    assert error.mean() < 0.01
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0


def test_lossy_webp_decodes_close_to_the_original(chelsea):
    decoded = decode_image(_encode(chelsea, "WEBP", quality=95))
    assert np.abs(decoded - chelsea / 255.0).mean() < 0.02


def test_grayscale_is_replicated_to_rgb():
    camera = skimage.data.camera()  # 512 x 512 uint8
    for fmt in ("PNG", "JPEG", "BMP", "TIFF"):
        decoded = decode_image(_encode(camera, fmt))
        assert decoded.shape == (512, 512, 3), fmt
        np.testing.assert_array_equal(decoded[..., 0], decoded[..., 1])
        np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])
    np.testing.assert_array_equal(decode_image(_encode(camera, "PNG"))[..., 1], _u8(camera))


def test_bilevel_image_becomes_black_and_white():
    bits = skimage.data.camera() > 128
    decoded = decode_image(_encode(Image.fromarray(bits), "PNG"))
    np.testing.assert_array_equal(decoded[..., 0], bits.astype(np.float32))


def test_rgba_drops_alpha_without_compositing(chelsea):
    alpha = np.zeros(chelsea.shape[:2], np.uint8)
    alpha[:, 200:] = 255
    alpha[100:, :] = 37
    rgba = np.dstack([chelsea, alpha])
    for fmt, options in (("PNG", {}), ("WEBP", {"lossless": True, "exact": True}), ("TIFF", {})):
        decoded = decode_image(_encode(rgba, fmt, **options))
        # Fully transparent pixels keep their colour (TF's decode_png(channels=3) does the same).
        np.testing.assert_array_equal(decoded, _u8(chelsea), err_msg=fmt)


def test_gray_alpha_drops_alpha():
    camera = skimage.data.camera()
    la = Image.fromarray(np.dstack([camera, np.full_like(camera, 9)]), mode="LA")
    decoded = decode_image(_encode(la, "PNG"))
    np.testing.assert_array_equal(decoded[..., 2], _u8(camera))


def test_palette_gif_and_png_give_palette_colours(chelsea):
    palette_image = Image.fromarray(chelsea).quantize(colors=64)
    expected = _u8(np.asarray(palette_image.convert("RGB")))
    np.testing.assert_array_equal(decode_image(_encode(palette_image, "GIF")), expected)
    np.testing.assert_array_equal(decode_image(_encode(palette_image, "PNG")), expected)
    # Transparency in the palette is dropped, like alpha.
    with_transparency = _encode(palette_image, "PNG", transparency=3)
    assert Image.open(io.BytesIO(with_transparency)).info.get("transparency") == 3
    np.testing.assert_array_equal(decode_image(with_transparency), expected)


def test_animated_gif_gives_the_first_frame(chelsea):
    first = Image.fromarray(chelsea).quantize(colors=32)
    second = Image.fromarray(255 - chelsea).quantize(colors=32)
    buffer = io.BytesIO()
    first.save(buffer, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    decoded = decode_image(buffer.getvalue())
    np.testing.assert_array_equal(decoded, _u8(np.asarray(first.convert("RGB"))))


def test_cmyk_jpeg_has_sensible_colours(chelsea):
    cmyk = _encode(Image.fromarray(chelsea).convert("CMYK"), "JPEG", quality=95)
    with Image.open(io.BytesIO(cmyk)) as im:
        assert im.mode == "CMYK"
        assert "adobe" in im.info  # Adobe marker: Pillow writes and reads inverted CMYK
    decoded = decode_image(cmyk)
    error = np.abs(decoded - chelsea / 255.0)
    # Inverted or channel-swapped colours would be off by ~0.3 on average.
    assert error.mean() < 0.01
    assert error.max() < 0.1


# --- 16 bits -------------------------------------------------------------------------------------


def test_16bit_grayscale_png_keeps_precision():
    ramp = (np.arange(64 * 80, dtype=np.uint32).reshape(64, 80) * 12 + 5).astype(np.uint16)
    data = _encode(Image.fromarray(ramp), "PNG")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode.startswith("I;16")
    decoded = decode_image(data)
    np.testing.assert_array_equal(decoded[..., 1], ramp.astype(np.float32) * np.float32(1 / 65535))
    assert decode_native(data).dtype == np.uint16
    # Not clipped at 255 and not truncated to 8 bits.
    assert len(np.unique(decoded)) == ramp.size


def test_16bit_grayscale_tiff_keeps_precision():
    ramp = (np.arange(32 * 40, dtype=np.uint32).reshape(32, 40) * 50).astype(np.uint16)
    decoded = decode_image(_encode(Image.fromarray(ramp), "TIFF"))
    np.testing.assert_array_equal(decoded[..., 0], ramp.astype(np.float32) * np.float32(1 / 65535))


@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "adam7"])
@pytest.mark.parametrize("channels", [1, 3, 4], ids=["gray", "rgb", "rgba"])
def test_16bit_png_keeps_precision(channels, interlace):
    samples = np.random.default_rng(channels).integers(0, 65536, (23, 37, channels), dtype=np.uint16)
    decoded = decode_image(png16(samples, interlace))
    expected = samples[..., :3].astype(np.float32) * np.float32(1 / 65535)
    if channels == 1:
        expected = np.repeat(expected, 3, axis=-1)
    np.testing.assert_array_equal(decoded, expected)


def test_16bit_gray_alpha_png_falls_back_to_8_bits():
    samples = np.random.default_rng(2).integers(0, 65536, (9, 11, 2), dtype=np.uint16)
    decoded = decode_image(png16(samples))
    np.testing.assert_array_equal(decoded[..., 0], _u8(samples[..., 0] >> 8))


# --- EXIF orientation ----------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(chelsea, orientation):
    data = _encode(chelsea, "PNG", exif=_exif(orientation))
    with Image.open(io.BytesIO(data)) as im:
        expected = _u8(np.asarray(ImageOps.exif_transpose(im).convert("RGB")))
    decoded = decode_image(data)
    assert decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)


def test_exif_rotated_jpeg_comes_out_upright(chelsea):
    # A camera held upright stores the sensor image turned a quarter counter-clockwise and tags
    # it with orientation 6 ("rotate 90 degrees clockwise to view").
    stored = np.ascontiguousarray(np.rot90(chelsea, k=1))
    tagged = decode_image(_encode(stored, "JPEG", quality=95, exif=_exif(6)))
    untagged = decode_image(_encode(stored, "JPEG", quality=95))
    assert tagged.shape == chelsea.shape
    np.testing.assert_array_equal(tagged, np.rot90(untagged, k=-1))
    assert np.abs(tagged - chelsea / 255.0).mean() < 0.01
    # load_image crops and resizes the upright image.
    upright = load_image(_encode(chelsea, "PNG"))
    assert np.abs(load_image(_encode(stored, "PNG", exif=_exif(6))) - upright).max() == 0


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored(chelsea):
    data = _encode(chelsea, "JPEG", quality=95, exif=b"Exif\x00\x00MM\x00*garbage")
    assert decode_image(data).shape == chelsea.shape


# --- input kinds ---------------------------------------------------------------------------------


def test_every_kind_of_source_gives_the_same_pixels(chelsea, tmp_path):
    data = _encode(chelsea, "PNG")
    path = tmp_path / "cat.png"
    path.write_bytes(data)
    expected = decode_image(data)
    with open(path, "rb") as handle:
        from_handle = decode_image(handle)
    for decoded in (
        decode_image(str(path)),
        decode_image(path),
        decode_image(bytearray(data)),
        decode_image(memoryview(data)),
        decode_image(io.BytesIO(data)),
        from_handle,
    ):
        np.testing.assert_array_equal(decoded, expected)
    np.testing.assert_array_equal(load_image(path), load_image(io.BytesIO(data)))


def test_load_image_equals_decode_then_preprocess(chelsea):
    data = _encode(chelsea, "PNG")
    out = load_image(data)
    assert out.shape == (299, 299, 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, preprocess_for_eval(decode_image(data)))
    np.testing.assert_array_equal(load_image(data, size=(128, 160)), preprocess_for_eval(chelsea, (128, 160)))
    assert load_image(data, central_fraction=None).shape == (299, 299, 3)


def test_grayscale_load_image_is_rgb():
    camera = skimage.data.camera()
    out = load_image(_encode(camera, "PNG"))
    assert out.shape == (299, 299, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_array_equal(out[..., 0], preprocess_for_eval(camera[..., None])[..., 0])


def test_an_80_megapixel_photo_loads():
    big = np.zeros((8000, 10000), np.uint8)
    big[::7] = 200
    out = load_image(_encode(big, "JPEG", quality=50))
    assert out.shape == (299, 299, 3)
    assert 0.0 < out.mean() < 1.0


def test_non_binary_source_is_a_type_error():
    with pytest.raises(TypeError, match="path, bytes or a binary file object"):
        decode_image(12345)


# --- errors --------------------------------------------------------------------------------------


def _assert_image_error(source, *fragments: str) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode_image(source)
    assert isinstance(info.value, Irv2Error)
    for fragment in fragments:
        assert fragment in str(info.value)
    return info.value


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_jpeg_raises_instead_of_padding_with_grey(chelsea, tmp_path, keep):
    data = _encode(chelsea, "JPEG", quality=95)
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    _assert_image_error(path, str(path), "truncated")
    with pytest.raises(ImageError, match="<bytes>"):
        load_image(data[: int(len(data) * keep)])


def test_truncated_png_raises(chelsea, tmp_path):
    data = _encode(chelsea, "PNG")
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    _assert_image_error(path, str(path))


def test_header_only_jpeg_raises(chelsea):
    _assert_image_error(_encode(chelsea, "JPEG")[:200], "<bytes>")


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _assert_image_error(path, str(path), "empty")
    _assert_image_error(b"", "<bytes>", "empty")
    _assert_image_error(io.BytesIO(b""), "empty")


def test_text_file_named_jpg_raises(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not the pixels you are looking for\n")
    _assert_image_error(path, str(path), "not a recognised image")
    with open(path, "rb") as handle:
        _assert_image_error(handle, str(path))


def test_missing_file_raises(tmp_path):
    path = tmp_path / "nowhere.png"
    _assert_image_error(path, str(path), "cannot read")
    _assert_image_error(tmp_path, str(tmp_path), "cannot read")


def test_text_mode_file_object_raises(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(b"\x89PNG")
    with open(path) as handle:
        _assert_image_error(handle, "binary mode")


def test_pixel_limit(chelsea):
    data = _encode(chelsea, "PNG")
    with pytest.raises(ImageError, match=r"<bytes>: 451x300 image .* limit of 1,000"):
        decode_image(data, max_pixels=1000)
    with pytest.raises(ImageError, match="limit"):
        load_image(data, max_pixels=1000)
    assert decode_image(data, max_pixels=None).shape == (300, 451, 3)


def test_decompression_bomb_header_is_refused(tmp_path):
    # A PNG header claiming 30000 x 30000 pixels with almost no data behind it.
    bomb = png16(np.zeros((1, 1, 3), np.uint16))
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    bomb = bomb[:12] + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header)) + bomb[33:]
    path = Path(tmp_path) / "bomb.png"
    path.write_bytes(bomb)
    _assert_image_error(path, str(path), "decompression bomb")
    with pytest.raises(ImageError, match="decompression bomb"):
        decode_image(path, max_pixels=None)  # Pillow's own process-wide limit still applies
