"""digitrec.reading.decode and the library's bad-input contract: every bad file gets a clear
ImageError (never a traceback or a hang); odd but valid formats decode right."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from PIL import Image

from digitrec.reading.decode import FORMATS, MAX_BYTES, ImageError, load_image
from digitrec.reading.normalize import NoDigit, normalize
from tests.conftest import encode, png_declaring


def digit_image(mode="L", size=(64, 64)) -> Image.Image:
    """A dark '1'-like bar on light paper."""
    arr = np.full(size[::-1], 240, np.uint8)
    arr[10:54, 28:36] = 20
    return Image.fromarray(arr).convert(mode)


@pytest.mark.parametrize("raw, message", [
    (b"", "empty"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
    (b"just some notes\n", "text file"),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "unrecognised image data"),
])
def test_garbage_is_named(raw, message):
    with pytest.raises(ImageError, match=message):
        load_image(raw)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    raw = encode(digit_image("RGB", (200, 200)), fmt)
    with pytest.raises(ImageError, match="truncated|damaged|cannot be decoded"):
        load_image(raw[: len(raw) // 2])


def test_decompression_bomb_refused_from_header():
    raw = png_declaring(50_000, 50_000)
    assert len(raw) < 1000
    with pytest.raises(ImageError, match="pixels.*limit|limit.*pixels"):
        load_image(raw)
    with pytest.raises(ImageError, match="8000x8000 pixels; the limit"):
        load_image(png_declaring(8000, 8000))  # under Pillow's own bomb limit, over ours


def test_oversized_bytes_refused(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b"\x00" * (MAX_BYTES + 1))
    with pytest.raises(ImageError, match="limit"):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file") as caught:
        load_image(tmp_path / "nope.png")
    assert caught.value.reason == "no such file" and caught.value.path == tmp_path / "nope.png"
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_decodes(fmt):
    arr = load_image(encode(digit_image("RGB"), fmt))
    assert arr.dtype == np.uint8 and arr.shape[:2] == (64, 64)
    assert arr[30, 31].max() < 100 and arr[5, 5].min() > 180


def test_a_format_not_offered_is_refused_by_name():
    """Pillow reads PPM, but uploads offer FORMATS only: the library reads what the app accepts."""
    with pytest.raises(ImageError, match="unrecognised image data.*PNG, JPEG"):
        load_image(encode(digit_image("RGB"), "PPM"))


def test_sixteen_bit_png_scaled_to_eight_bits():
    arr16 = (np.asarray(digit_image()).astype(np.uint16) * 257)
    raw = encode(Image.fromarray(arr16, "I;16"), "PNG")
    arr = load_image(raw)
    assert arr.dtype == np.uint8 and arr[30, 31] < 30 and arr[5, 5] > 230


def test_cmyk_jpeg_becomes_rgb():
    arr = load_image(encode(digit_image("CMYK"), "JPEG"))
    assert arr.shape == (64, 64, 3) and arr[30, 31].max() < 100


def test_animated_gif_first_frame():
    first, second = digit_image(), Image.new("L", (64, 64), 240)
    raw = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    arr = load_image(raw)
    assert arr[30, 31].max() < 100  # the bar of the first frame, not the blank second


def test_palette_png_with_transparency_keeps_alpha():
    image = digit_image().convert("P")
    raw = encode(image, "PNG", transparency=int(np.asarray(image)[5, 5]))
    arr = load_image(raw)
    assert arr.shape == (64, 64, 4) and arr[5, 5, 3] == 0 and arr[30, 31, 3] == 255


def test_exif_rotation_is_applied():
    image = digit_image(size=(80, 40))  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    arr = load_image(encode(image.convert("RGB"), "JPEG", exif=exif))
    assert arr.shape[:2] == (80, 40)  # now tall


def test_one_pixel_and_flat_images_are_no_digit():
    for arr in (load_image(encode(Image.new("L", (1, 1), 0), "PNG")),
                np.full((50, 50), 255, np.uint8), np.zeros((50, 50), np.uint8)):
        with pytest.raises(NoDigit):
            normalize(arr)


def test_huge_photo_is_handled():
    arr = np.full((4000, 4000), 235, np.uint8)
    arr[1000:3000, 1900:2100] = 25
    result = normalize(arr)
    assert result.x28.shape == (28, 28)
    x, y, w, h = result.box
    assert abs(x - 1900) < 40 and abs(w - 200) < 80 and abs(h - 2000) < 80


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_image_error(raw):
    try:
        arr = load_image(raw)
    except ImageError:
        return
    assert arr.dtype == np.uint8


shapes = array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    arrays(np.uint8, shapes),
    arrays(np.uint16, shapes),
    arrays(np.float32, shapes, elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
    arrays(np.float64, shapes, elements=st.floats(0, 1)),
    arrays(bool, shapes),
))
def test_random_arrays_only_raise_documented_errors(arr):
    try:
        out = normalize(arr)
    except (NoDigit, ImageError):
        return
    assert out.x28.shape == (28, 28) and np.isfinite(out.x28).all()
    assert 0.0 <= out.x28.min() and out.x28.max() <= 1.0
