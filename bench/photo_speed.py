"""Seconds that the notebook's predict_digit takes on phone-sized photos (12 and 40 megapixels), from a JPEG file and
from an array, with the network that `make run` saved: the figures of docs/handwriting.md.

    python bench/photo_speed.py [--runs 3] [--model outputs/digit_cnn.pt]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from handwritten_digits import cli, recipe
from handwritten_digits.checkpoints import load_checkpoint
from handwritten_digits.samples import ballpoint_photo  # the photo the tests bound: a blue ballpoint 7

ROOT = Path(__file__).resolve().parents[1]

SIZES = ((4000, 3000, 8), (7300, 5500, 14))  # width, height, pen width in pixels: 12 and 40 megapixels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=cli.positive, default=3, help="runs of each case (default 3)")
    parser.add_argument("--model", type=Path, default=ROOT / "outputs" / "digit_cnn.pt")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"{args.model} is missing: run `make run` first (it saves the network there)")
    cpu = torch.device("cpu")
    model = recipe.DigitCNN()
    saved = load_checkpoint(args.model, model, cpu)
    with tempfile.TemporaryDirectory() as folder:
        for width, height, pen in SIZES:
            photo, path = ballpoint_photo(width, height, pen), Path(folder) / f"photo_{width}.jpg"
            Image.fromarray(photo).save(path, quality=90)
            for kind, image in (("JPEG file", path), ("array", photo)):
                seconds = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    digit, _ = recipe.predict_digit(model, image, saved["mean"], saved["std"], cpu)
                    seconds.append(time.perf_counter() - started)
                megapixels = width * height / 1e6
                print(f"{megapixels:.0f} MP {kind:<9}: read {digit} in {min(seconds):.2f}-{max(seconds):.2f} s "
                      f"({min(seconds) / megapixels:.3f} s per megapixel)")


if __name__ == "__main__":
    main()
