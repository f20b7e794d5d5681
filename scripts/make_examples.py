"""Make the example images in assets/ that the notebook's "own handwriting" section reads: three MNIST test digits
dressed up as photos of ink on paper (the notebook's own disguise_as_photo), and one 7 drawn as pen strokes in blue
ink on a transparent background (RGBA).

    python scripts/make_examples.py      (or: make assets)"""

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
BALLPOINT = (20, 30, 140, 255)  # blue ink, opaque


def main(folder: Path = ROOT / "assets") -> None:
    """Write the four example images in `folder`."""
    try:
        ensure_mnist(ROOT / "data", log=lambda _: None)
    except MnistUnavailableError as error:
        raise SystemExit(f"error: {error}") from None
    test, rng = datasets.MNIST(str(ROOT / "data"), train=False), np.random.default_rng(2026)
    images = {f"example_photo_{test.targets[i].item()}.png":
              Image.fromarray(notebook.disguise_as_photo(test.data[i].numpy(), rng)) for i in PHOTO_INDICES}
    seven = images["example_drawing_7.png"] = Image.new("RGBA", (240, 240), (0, 0, 0, 0))  # transparent
    draw = ImageDraw.Draw(seven)
    draw.line([(40, 50), (150, 45), (110, 120), (85, 200)], fill=BALLPOINT, width=11, joint="curve")  # off-centre
    draw.line([(75, 125), (135, 120)], fill=BALLPOINT, width=9)  # the crossbar some people write
    for name, image in images.items():
        with atomic_write(path := folder / name) as temporary:  # complete files only, even if interrupted
            image.save(temporary, format="PNG")
        print(f"wrote {os.path.relpath(path)} ({path.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
