"""Image files read safely, for the notebook's Part II (E) and the tools: `open_image(path)` gives a photo's or scan's
grey pixels, upright, or an error that names the file and says what is wrong with it."""

import numpy as np
from PIL import Image, ImageOps

from .files import regular_file
from .notebook import PHOTO_SIZE


def open_image(path) -> np.ndarray:
    """An image file -> 2-D float32 grey array (0 black .. 1 white), upright as its EXIF orientation says."""
    path = regular_file(path)
    try:
        with Image.open(path) as opened:
            opened.draft(opened.mode, (PHOTO_SIZE, PHOTO_SIZE))  # a JPEG decoded at 1/2..1/8 scale, still PHOTO_SIZE
            image = ImageOps.exif_transpose(opened)
            if image.mode.startswith("I") and "transparency" not in image.info:  # 16-bit grey ("I;16", or "I")
                pixels = np.asarray(image, dtype=np.float32) / 65535
                if pixels.min() < 0 or pixels.max() > 1:
                    raise ValueError(f"expected 8- or 16-bit pixels, found values up to {pixels.max() * 65535:.0f}")
                return pixels
            # Pillow's luma; transparent pixels become white paper
            grey, alpha = np.moveaxis(np.asarray(image.convert("LA"), dtype=np.float32) / 255, -1, 0)
            return grey * alpha + (1 - alpha)  # alpha over white paper
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:  # cut short, a bomb, ...
        raise ValueError(f"{path} cannot be read as an image: {error}") from error
