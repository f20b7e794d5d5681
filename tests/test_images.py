"""Tests of handwritten_digits.images: files read upright in grey; bad files refused with a message naming them."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from handwritten_digits.images import open_image

RAMP = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))  # grey levels from black to white
RAMP16 = np.linspace(0, 65535, 48 * 64).round().astype(np.uint16).reshape(48, 64)  # levels 8 bits cannot hold
ALPHA = 255 - RAMP  # opaque ink on the left, transparent paper on the right


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, text: int = 0) -> bytes:
    """A black 8-bit grey PNG whose header claims width x height, with a compressed comment of `text` bytes."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    extra = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * text)) if text else b""
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1) * min(height, 10)))
    return b"\x89PNG\r\n\x1a\n" + header + extra + pixels + chunk(b"IEND", b"")


def cut_short(path, pil_format: str) -> None:
    """A noisy image saved in pil_format, then its second half lost, as an interrupted download leaves it."""
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)).save(path, pil_format)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_phone_photo_is_turned_upright_from_its_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    Image.fromarray(np.rot90(RAMP).copy()).save(tmp_path / "photo.jpg", exif=exif, quality=95)  # as stored
    grey = open_image(tmp_path / "photo.jpg")
    assert grey.shape == RAMP.shape
    assert np.abs(grey - RAMP / 255).mean() < 0.02


@pytest.mark.parametrize(("name", "image", "expected"), [
    ("grey.png", Image.fromarray(RAMP), RAMP / 255),
    ("rgb.png", Image.fromarray(np.stack([RAMP] * 3, axis=-1)), RAMP / 255),
    ("palette.png", Image.fromarray(RAMP).convert("P"), RAMP / 255),
    ("1-bit.png", Image.fromarray(RAMP).convert("1", dither=Image.Dither.NONE), RAMP >= 128),
    ("16-bit-as-8.png", Image.fromarray(RAMP.astype(np.uint16) * 257), RAMP / 255),
    ("16-bit.png", Image.fromarray(RAMP16), RAMP16 / 65535),
    ("32-bit.tiff", Image.fromarray(RAMP16.astype(np.int32)), RAMP16 / 65535),  # mode "I", as some readers give
    ("ink-over-transparent.png", Image.fromarray(np.stack([np.full_like(RAMP, 100)] * 3 + [ALPHA], axis=-1)),
     100 / 255 * ALPHA / 255 + 1 - ALPHA / 255),  # alpha over white paper
])
def test_every_kind_of_pixel_is_read_as_its_grey_from_0_to_1(tmp_path, name, image, expected):
    image.save(tmp_path / name)
    grey = open_image(tmp_path / name)
    assert grey.dtype == np.float32
    assert np.allclose(grey, expected, atol=1e-6)


@pytest.mark.parametrize(("name", "make", "error", "message"), [
    ("notes.png", lambda path: path.write_text("eggs, milk"), ValueError, r"notes\.png is not an image file"),
    ("missing.png", lambda path: None, FileNotFoundError, r"missing\.png: no such file"),
    ("photos", lambda path: path.mkdir(), ValueError, r"photos is not a regular file"),
    ("camera.png", os.mkfifo, ValueError, r"camera\.png is not a regular file"),  # reading it would wait forever
    ("x" * 300 + ".png", lambda path: None, ValueError, r"cannot be looked up: File name too long \(\d+ characters\)"),
    ("cut.png", lambda path: cut_short(path, "PNG"), ValueError, r"cut\.png cannot be read as an image: .*cut short"),
    ("cut.jpg", lambda path: cut_short(path, "JPEG"), ValueError, r"cut\.jpg cannot be read as an image: .*cut short"),
    ("bomb.png", lambda path: path.write_bytes(png(20_000, 20_000)), ValueError, r"bomb\.png has too many pixels"),
    ("32-bit.tiff", lambda path: Image.fromarray(np.full((8, 8), 70_000, dtype=np.int32)).save(path), ValueError,
     r"32-bit\.tiff cannot be read as an image: expected 8- or 16-bit pixels"),
    ("text.png", lambda path: path.write_bytes(png(10, 10, text=50_000_000)), ValueError, r"text\.png cannot be read"),
])
def test_a_path_that_is_not_a_readable_image_is_refused_naming_it(tmp_path, name, make, error, message):
    make(tmp_path / name)
    with pytest.raises(error, match=message):
        open_image(tmp_path / name)
