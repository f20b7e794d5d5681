"""Make the example images in assets/ that the notebook's "own handwriting" section reads.

Three MNIST test digits dressed up as photos of ink on paper (the notebook's own disguise_as_photo),
and one digit drawn as pen strokes in blue ink on a transparent background (RGBA).

    python scripts/make_examples.py      (or: make assets)
"""

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torchvision import datasets

from handwritten_digits import notebook
from handwritten_digits.files import atomic_write
from handwritten_digits.mnist_data import MnistUnavailableError, ensure_mnist

ROOT = Path(__file__).resolve().parents[1]

PHOTO_INDICES = (3, 11, 61)  # test images of a 0, a 6 and an 8


def pen_drawing_of_a_seven(size: int = 240) -> Image.Image:
    """A 7 in blue ballpoint strokes on a transparent background, off-centre."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    stroke = [(40, 50), (150, 45), (110, 120), (85, 200)]
    draw.line(stroke, fill=(20, 30, 140, 255), width=11, joint="curve")
    draw.line([(75, 125), (135, 120)], fill=(20, 30, 140, 255), width=9)  # the crossbar some people write
    return image


def main(folder: Path = ROOT / "assets") -> None:
    try:
        ensure_mnist(ROOT / "data", log=lambda _: None)
    except MnistUnavailableError as error:
        raise SystemExit(f"error: {error}") from None
    test = datasets.MNIST(str(ROOT / "data"), train=False)
    rng = np.random.default_rng(2026)
    images = {f"example_photo_{test.targets[i].item()}.png":
              Image.fromarray(notebook.disguise_as_photo(test.data[i].numpy(), rng)) for i in PHOTO_INDICES}
    images["example_drawing_7.png"] = pen_drawing_of_a_seven()
    for name, image in images.items():
        path = folder / name
        with atomic_write(path) as temporary:  # complete files only, even if interrupted
            image.save(temporary, format="PNG")
        print(f"wrote {os.path.relpath(path)} ({path.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
