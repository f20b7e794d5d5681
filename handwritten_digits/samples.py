"""Synthetic photos shared by the tests and the benchmarks, so that the time a benchmark reports and the bound a test
holds are measured on the same image."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def ballpoint_photo(width: int, height: int, pen: int) -> np.ndarray:
    """A phone-sized RGB photo of a 7 in blue ballpoint on off-white paper, lit unevenly, with sensor noise."""
    photo = Image.new("RGB", (width, height), (235, 230, 220))
    ImageDraw.Draw(photo).line([(0.4 * width, 0.3 * height), (0.6 * width, 0.3 * height),
                                (0.45 * width, 0.75 * height)], fill=(20, 30, 140), width=pen)
    pixels = np.asarray(photo).astype(np.float32) + np.linspace(-15, 15, width)[None, :, None]
    pixels += np.random.default_rng(0).normal(0, 4, (height, width))[..., None]
    return np.clip(pixels, 0, 255).astype(np.uint8)
