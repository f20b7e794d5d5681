"""Tests of handwritten_digits.images: files read upright in grey; bad files refused with a message naming them."""

import os

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from handwritten_digits.images import open_image

RAMP = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))  # grey levels from black to white
RAMP16 = np.linspace(0, 65535, 48 * 64).round().astype(np.uint16).reshape(48, 64)  # levels 8 bits cannot hold
ALPHA = 255 - RAMP  # opaque ink on the left, transparent paper on the right
NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8))
EXIF = Image.Exif()
EXIF[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
HUGE_TEXT = PngImagePlugin.PngInfo()
HUGE_TEXT.add_text("Comment", "a" * 2_000_000, zip=True)  # inflates past Pillow's limit for a text chunk


@pytest.mark.parametrize(("name", "image", "expected"), [
    ("photo.jpg", Image.fromarray(np.rot90(RAMP).copy()), RAMP / 255),  # stored on its side, EXIF says turn it
    ("rgb.png", Image.fromarray(np.stack([RAMP] * 3, axis=-1)), RAMP / 255),
    ("1-bit.png", Image.fromarray(RAMP).convert("1", dither=Image.Dither.NONE), RAMP >= 128),
    ("16-bit.png", Image.fromarray(RAMP16), RAMP16 / 65535),
    ("32-bit.tiff", Image.fromarray(RAMP16.astype(np.int32)), RAMP16 / 65535),  # mode "I", as some readers give
    ("ink-over-transparent.png", Image.fromarray(np.stack([np.full_like(RAMP, 100)] * 3 + [ALPHA], axis=-1)),
     100 / 255 * ALPHA / 255 + 1 - ALPHA / 255),  # alpha over white paper
])
def test_every_kind_of_pixel_is_read_upright_as_its_grey_from_0_to_1(tmp_path, name, image, expected):
    image.save(tmp_path / name, exif=EXIF, quality=95) if name.endswith(".jpg") else image.save(tmp_path / name)
    grey = open_image(tmp_path / name)
    assert grey.dtype == np.float32
    assert np.abs(grey - expected).mean() < (0.02 if name.endswith(".jpg") else 1e-6)


@pytest.mark.parametrize(("name", "make", "error", "message"), [
    ("notes.png", lambda path: path.write_text("eggs, milk"), ValueError, "cannot identify image file"),
    ("missing.png", lambda path: None, FileNotFoundError, "no such file"),
    ("camera.png", os.mkfifo, ValueError, "is not a regular file"),  # a folder too; a pipe would wait forever
    ("cut.jpg", lambda path: NOISE.save(path) or path.write_bytes(path.read_bytes()[:2000]), ValueError, "truncated"),
    ("bomb.png", lambda path: Image.new("1", (16_000, 12_000)).save(path), ValueError, "decompression bomb"),
    ("32-bit.tiff", lambda path: Image.fromarray(np.full((8, 8), 70_000, dtype=np.int32)).save(path), ValueError,
     "expected 8- or 16-bit pixels"),
    ("text.png", lambda path: NOISE.save(path, pnginfo=HUGE_TEXT), ValueError, "too large"),
])
def test_a_path_that_is_not_a_readable_image_is_refused_naming_it(tmp_path, name, make, error, message):
    make(tmp_path / name)
    with pytest.raises(error, match=f"^{tmp_path / name}.*{message}"):
        open_image(tmp_path / name)
