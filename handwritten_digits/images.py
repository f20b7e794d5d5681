"""Image files read safely, for the notebook's Part II (D) and the tools: `open_image(path)` gives a photo's or scan's
grey pixels, upright, or an error that names the file and says what is wrong with it."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


def regular_file(path) -> Path:
    """The path, if it names a regular file: a folder, a pipe or a device would be misread or waited on forever."""
    path = Path(path)
    try:
        found, regular = path.exists(), path.is_file()
    except OSError as error:  # a name longer than the system allows, or a path it cannot look up
        raise ValueError(f"{str(path)[:80]}... cannot be looked up: {error.strerror} ({len(str(path))} characters); "
                         "expected the path of an image or checkpoint file") from error
    if not found:
        raise FileNotFoundError(f"{path}: no such file; check the name and the folder")
    if not regular:
        raise ValueError(f"{path} is not a regular file (a folder, a pipe or a device?): expected a file")
    return path


def grey_pixels(image: Image.Image) -> np.ndarray:
    """A PIL image in any mode -> 2-D float32 array, 0 black .. 1 white: Pillow's luma (0.299 R + 0.587 G + 0.114 B),
    all levels of a 16-bit grey image kept, transparent pixels made white paper."""
    if image.mode.startswith("I") and "transparency" not in image.info:  # 16-bit grey: "I;16", or "I" from some readers
        pixels = np.asarray(image, dtype=np.float32) / 65535
        if pixels.min() < 0 or pixels.max() > 1:
            raise ValueError(f"expected 8- or 16-bit pixels, found values up to {pixels.max() * 65535:.0f}")
        return pixels
    grey, alpha = np.moveaxis(np.asarray(image.convert("LA"), dtype=np.float32) / 255, -1, 0)
    return grey * alpha + (1 - alpha)  # alpha over white paper


def open_image(path) -> np.ndarray:
    """An image file -> 2-D float32 grey array (0 black .. 1 white), turned upright as its EXIF orientation says."""
    from .notebook import PHOTO_SIZE  # here, not at the top: regular_file alone must not load the notebook's module

    path = regular_file(path)
    try:
        with Image.open(path) as opened:
            # A JPEG is decoded at 1/2, 1/4 or 1/8 scale where that still leaves PHOTO_SIZE pixels, the size that
            # mnist_style shrinks a photo to anyway: a 40-megapixel photo in a fraction of the time.
            opened.draft(opened.mode, (PHOTO_SIZE, PHOTO_SIZE))
            return grey_pixels(ImageOps.exif_transpose(opened))
    except UnidentifiedImageError as error:
        raise ValueError(f"{path} is not an image file that Pillow can read (expected PNG, JPEG, ...)") from error
    except Image.DecompressionBombError as error:  # far more pixels than a photo of a digit: perhaps an attack
        raise ValueError(f"{path} has too many pixels to be read safely ({error})") from error
    except (OSError, SyntaxError, ValueError) as error:  # cut short, damaged, or a text chunk inflating to gigabytes
        raise ValueError(f"{path} cannot be read as an image: {error} (a damaged file, or one cut short?)") from error
