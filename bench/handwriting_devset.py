"""A development set of handwriting this project did not make, read by the notebook's `predict_digit`: digits in 14
handwriting fonts as ink, photos, drawings and phone photos, MNIST digits, blank sheets and dots (docs/handwriting.md).
Per condition: accuracy, refusals, seconds per image, and the paper contrast and dot ratio the refusals rest on.

    python bench/handwriting_devset.py --model outputs/digit_cnn_tuned.pt --output outputs/devset.json [--quick]"""

import argparse
import hashlib
import io
import itertools
import json
import re
import statistics
import subprocess
import sys
import tarfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from handwritten_digits import notebook
from handwritten_digits.checkpoints import load_checkpoint

# isort: split
import common  # bench/common.py (a script's own folder is on its path)

FONT_VERSION = "5.3.0"  # of every @fontsource package below (npm view @fontsource/<name> version)
FONTS = ("caveat", "indie-flower", "patrick-hand", "shadows-into-light", "gloria-hallelujah", "kalam", "homemade-apple",
         "reenie-beanie", "rock-salt", "covered-by-your-grace", "architects-daughter", "permanent-marker",
         "sue-ellen-francisco", "nanum-pen-script")
CONDITIONS = ("ink-margin", "ink-tight", "photo-margin", "photo-tight", "mnist-margin", "mnist-tight",
              "canvas-margin", "canvas-edge", "phone", "blank", "dot")
NOT_DIGITS, BLANK = ("blank", "dot"), -1  # a blank sheet's or a dot's "digit": read right when it is refused
PAD = notebook.DrawingPad(lambda image: None)  # the notebook's canvas, at its own size and pen width
PHONE = (3000, 4000)  # rows, columns: 12 megapixels
TIGHT = 0.1  # cropped "tight": to the pixels with at least this much ink


def fetch_fonts(fonts_dir: Path) -> list[dict]:
    """The fonts' latin 400-weight .woff files, fetched once with `npm pack` (which checks each package's integrity)."""
    fonts = []
    for package in FONTS:
        folder, spec = fonts_dir / f"{package}-{FONT_VERSION}", f"@fontsource/{package}@{FONT_VERSION}"
        woff = folder / f"{package}-latin-400-normal.woff"
        if not (folder / "package.json").is_file():  # written last
            folder.mkdir(parents=True, exist_ok=True)
            try:
                packed = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(folder)],
                                        capture_output=True, text=True, check=True, timeout=300)
            except (OSError, subprocess.SubprocessError) as error:  # npm's own message where it gave one
                sys.exit(f"npm could not fetch {spec} (install Node.js, or put the fonts in {fonts_dir}): "
                         + str(getattr(error, "stderr", None) or error).strip()[-300:])
            with tarfile.open(tarball := folder / json.loads(packed.stdout)[0]["filename"]) as archive:
                for member in (f"files/{woff.name}", "LICENSE", "package.json"):
                    (folder / Path(member).name).write_bytes(archive.extractfile(f"package/{member}").read())
            tarball.unlink()
        licence = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("license", "unknown")
        fonts.append({"name": package.replace("-", " ").title(), "package": f"@fontsource/{package}", "path": woff,
                      "version": FONT_VERSION, "license": licence, "file": woff.name,
                      "sha256": hashlib.sha256(woff.read_bytes()).hexdigest()})
    return fonts


def render(path: Path, digit: int, font_size: int, angle: float) -> Image.Image:
    """The digit in this font as coverage (0 paper, 255 ink), rotated by `angle` degrees, cropped to its ink."""
    image = Image.new("L", (2 * font_size + 8, 2 * font_size + 8), 0)
    ImageDraw.Draw(image).text((font_size // 2 + 4, font_size // 4 + 4), str(digit), fill=255,
                               font=ImageFont.truetype(str(path), font_size))
    image = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=0)
    return image.crop(image.getbbox())


def glyph_coverage(path: Path, digit: int, ink_height: int, angle: float) -> np.ndarray:
    """The digit's ink coverage (0 to 1), about `ink_height` pixels tall, cropped to its ink."""
    font_size = max(6, round(200 * ink_height / render(path, digit, 200, 0.0).height))
    return np.asarray(render(path, digit, font_size, angle), dtype=np.float64) / 255


def on_paper(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blue ink on light, slightly yellow paper with a light gradient and a little noise: an 8-bit RGB photo."""
    rows, columns = (np.linspace(-0.5, 0.5, size, dtype=np.float32) for size in coverage.shape)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(direction) * columns[None, :] + np.sin(direction) * rows[:, None]
    light = rng.uniform(0.78, 0.93) + rng.uniform(0.04, 0.12) * gradient
    paper = light[..., None] * np.array([1.0, 0.98, 0.92], dtype=np.float32)  # warm white
    ink = np.array([0.12, 0.18, 0.55], dtype=np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    strength = (rng.uniform(0.75, 0.95) * coverage).astype(np.float32)[..., None]
    photo = paper * (1 - strength) + ink * strength
    photo += rng.standard_normal(photo.shape, dtype=np.float32) * np.float32(0.02)
    return np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8)


def thinned(image: np.ndarray) -> np.ndarray:
    """The strokes' one-pixel centre line: Zhang and Suen's thinning (skimage.morphology.thin; not installed here)."""
    image = np.pad(image, 1)
    while True:
        removed = False
        for step in (0, 1):
            ring = [image[1 + r:image.shape[0] - 1 + r, 1 + c:image.shape[1] - 1 + c] for r, c in  # p2-p9 clockwise
                    ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]
            p2, p4, p6, p8 = ring[::2]
            crossings = sum((~a & b).astype(np.uint8) for a, b in itertools.pairwise([*ring, p2]))
            first, second = (p2 & p4 & p6, p4 & p6 & p8) if step == 0 else (p2 & p4 & p8, p2 & p6 & p8)
            remove = image[1:-1, 1:-1] & (crossings == 1) & ~first & ~second
            remove &= ((neighbours := sum(p.astype(np.uint8) for p in ring)) >= 2) & (neighbours <= 6)
            image[1:-1, 1:-1] &= ~remove
            removed |= bool(remove.any())
        if not removed:
            return image[1:-1, 1:-1]


def centre_line(path: Path, digit: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The rotated glyph's centre line (240 pixels tall): its points (row, column) and the neighbouring pairs."""
    line = thinned(glyph_coverage(path, digit, 240, angle) > 0.5)
    points = np.argwhere(line)
    index = np.pad(np.full(line.shape, -1), 1, constant_values=-1)
    index[1:-1, 1:-1][tuple(points.T)] = np.arange(len(points))
    pairs = [(i, j) for d_row, d_column in ((0, 1), (1, 0), (1, 1), (1, -1))
             for i, j in enumerate(index[1 + d_row + points[:, 0], 1 + d_column + points[:, 1]]) if j >= 0]
    return points.astype(np.float64), np.array(pairs, dtype=np.int64).reshape(-1, 2)


def placed(points: np.ndarray, scale: float, top: float, left: float) -> np.ndarray:
    """The points scaled and moved so that their top-left corner lands on (top, left); as (x, y)."""
    return ((points - points.min(axis=0)) * scale + np.array([top, left]))[:, ::-1]


def canvas_drawing(line: tuple[np.ndarray, np.ndarray], edge: bool, rng: np.random.Generator) -> np.ndarray:
    """The centre line drawn on the DrawingPad: into the canvas's top and bottom (`edge`), or 150 pixels tall."""
    (points, pairs), size = line, PAD.size
    height, width = np.ptp(points, axis=0) + 1
    scale = (size - 8) / height if edge else 150 / max(height, width)
    top = 4 if edge else (size - height * scale) / 2 + rng.uniform(-15, 15)
    left = (size - width * scale) / 2 + rng.uniform(-15, 15) * (not edge or width * scale < size - 60)
    xy = placed(points, scale, top, left)
    PAD.clear()
    for i, j in [*pairs, *((i, i) for i in sorted(set(range(len(points))) - set(pairs.ravel())))]:  # lone points: dots
        PAD.mouse_down(*xy[i])
        PAD.mouse_up(*xy[j])
    return np.asarray(PAD.image)


def phone_photo(line: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A 4000 x 3000 JPEG photo (decoded) of the digit in ballpoint ink, 700-1400 pixels tall, strokes 5-9 wide."""
    points, pairs = line
    scale, pen = rng.uniform(700, 1400) / (np.ptp(points[:, 0]) + 1), int(rng.integers(5, 10))
    box = tuple(int(extent * scale) + 4 * pen for extent in np.ptp(points, axis=0) + 1)
    xy = placed(points, scale, 2 * pen, 2 * pen)
    draw = ImageDraw.Draw(ink := Image.new("L", box[::-1], 0))
    for i, j in pairs:
        draw.line([tuple(xy[i]), tuple(xy[j])], fill=255, width=pen)
    for x, y in xy:
        draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    coverage = np.zeros(PHONE)
    top, left = int(rng.integers(200, PHONE[0] - box[0] - 200)), int(rng.integers(400, PHONE[1] - box[1] - 400))
    coverage[top:top + box[0], left:left + box[1]] = np.asarray(ink.filter(ImageFilter.GaussianBlur(pen / 5))) / 255
    Image.fromarray(on_paper(coverage, rng)).save(buffer := io.BytesIO(), format="JPEG", quality=90)
    return np.asarray(Image.open(buffer).convert("RGB"))


def typeset(path: Path, digit: int, height: int, rng: np.random.Generator):
    """The ink, photo and blank images of one glyph, with a margin of 15-50 % of its height a side and cut tight."""
    coverage = glyph_coverage(path, digit, height, rng.uniform(-10, 10))
    margins = [max(4, round(rng.uniform(0.15, 0.5) * coverage.shape[0])) for _ in range(4)]  # top, bottom, sides
    coverage = np.pad(coverage, [margins[:2], margins[2:]])
    tight, ink = coverage >= TIGHT, np.round(255 * (1 - coverage)).astype(np.uint8)  # black on white
    yield from (("ink-margin", ink), ("ink-tight", notebook.crop_to(ink, tight)))
    yield from (("photo-margin", photo := on_paper(coverage, rng)), ("photo-tight", notebook.crop_to(photo, tight)))
    yield "blank", on_paper(np.zeros_like(coverage), rng)


def every_image(fonts: list[dict], seed: int, quick: bool, data_root: str):
    """(condition, font, truth, image), one at a time, each image's random numbers from the seed and what it is."""
    test = common.mnist(data_root, train=False)
    for i in np.random.default_rng([seed, 4]).choice(len(test.data), size=100 if quick else 500, replace=False):
        digit, truth = test.data[i].numpy(), int(test.targets[i])
        yield from (("mnist-margin", "MNIST", truth, digit),
                    ("mnist-tight", "MNIST", truth, notebook.crop_to(digit, digit / 255 >= TIGHT)))
    for index in range(20 if quick else 200):
        rng = np.random.default_rng([seed, 4, index])  # a tap, or (every other one) a drag of up to 10 pixels
        x, y = rng.uniform(PAD.line_width, PAD.size - PAD.line_width, size=2)
        drag = rng.uniform(-10, 10, size=2) if index % 2 else np.zeros(2)
        PAD.clear()
        PAD.mouse_down(x, y)
        PAD.mouse_up(x + drag[0], y + drag[1])
        yield "dot", "", BLANK, np.asarray(PAD.image)
    for f, font in enumerate(fonts):
        name, path = font["name"], font["path"]
        for digit in range(10):
            for s, size in enumerate((40, 100) if quick else (24, 40, 64, 100, 160)):  # ink heights in pixels
                for condition, image in typeset(path, digit, size, np.random.default_rng([seed, 1, f, digit, s])):
                    yield condition, name, BLANK if condition == "blank" else digit, image
            for variant in range(1 if quick else 2):
                rng = np.random.default_rng([seed, 2, f, digit, variant])
                line = centre_line(path, digit, rng.uniform(-10, 10))
                yield from (("canvas-margin", name, digit, canvas_drawing(line, False, rng)),
                            ("canvas-edge", name, digit, canvas_drawing(line, True, rng)))
        if f < 2 or not quick:
            rng = np.random.default_rng([seed, 3, f])
            digit = int(rng.integers(10))
            yield "phone", name, digit, phone_photo(centre_line(path, digit, rng.uniform(-10, 10)), rng)


def measures(image: np.ndarray) -> tuple[float | None, float | None]:
    """The blank-sheet check's paper contrast (None: one colour) and the dot check's ratio (None: no ink)."""
    grey = notebook.downsized(notebook.to_grayscale(image))
    ink, unevenness = notebook.ink_above_paper(grey)
    contrast = float(ink.max() / unevenness) if unevenness > 0 else None if ink.max() == 0 else float("inf")
    try:
        cropped = notebook.crop_to(*notebook.strokes_only(notebook.white_on_black(grey)))
    except ValueError:
        return contrast, None
    width = float(notebook.stroke_width(torch.from_numpy(cropped > 0.5)))
    return contrast, max(cropped.shape) / width if width > 0 else None


def tally(records: list[dict]) -> dict:
    """Images, correct answers, accuracy, refusals, median seconds, contrast and dot ratio of a group of images."""
    correct = sum(r["outcome"] == "refused" if r["digit"] == BLANK else r["outcome"] == "read" and r["answer"] ==
                  r["digit"] for r in records)
    return {"images": len(records), "correct": correct, "accuracy": correct / len(records),
            "refused": sum(r["outcome"] == "refused" for r in records),
            "seconds_per_image_median": statistics.median(r["seconds"] for r in records),
            **{f"{key}_{pick.__name__}": pick((r[key] for r in records if r[key] is not None), default=None)
               for key in ("contrast", "dot_ratio") for pick in (min, max)}}


def summarise(records: list[dict]) -> dict:
    """Tallies per condition, and the kinds of refusal per condition."""
    by_condition = defaultdict(list)
    for record in records:
        by_condition[record["condition"]].append(record)
    refusals = {c: dict(Counter(re.split(r"[:(]", r["answer"])[0].strip() for r in group if r["outcome"] == "refused"))
                for c, group in by_condition.items()}
    return {"conditions": {c: tally(by_condition[c]) for c in CONDITIONS if c in by_condition},
            "refusals": {c: kinds for c, kinds in refusals.items() if kinds}}


def markdown_tables(summary: dict) -> str:
    """The summary as a Markdown table, one row per condition."""
    def number(value):
        return "" if value is None else "no unevenness" if value == float("inf") else f"{value:.1f}"

    lines = ["| condition | images | accuracy | refused | s / image (median) | contrast (lowest; blank: highest) "
             "| dot ratio (lowest; dot: highest) |", "|---|" + "---:|" * 6]
    for c, t in summary["conditions"].items():
        lines.append(f"| {c}{' (refused = right)' * (c in NOT_DIGITS)} | {t['images']} | {t['accuracy']:.1%} | "
                     f"{t['refused']} | {t['seconds_per_image_median']:.4f} | "
                     f"{number(t['contrast_max' if c == 'blank' else 'contrast_min'])} | "
                     f"{number(t['dot_ratio_max' if c == 'dot' else 'dot_ratio_min'])} |")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> dict:
    model, cpu = notebook.DigitCNN(), torch.device("cpu")
    try:
        saved = load_checkpoint(args.model, model, cpu)
    except (OSError, ValueError) as error:
        sys.exit(f"{args.model} cannot be read ({error}): `make run` saves a network there, or pass --model PATH")
    fonts = fetch_fonts(common.ROOT / "data" / "fonts")
    records, started = [], time.perf_counter()
    for condition, font, digit, image in every_image(fonts, args.seed, args.quick, args.data_root):
        start = time.perf_counter()
        try:
            outcome, answer = "read", notebook.predict_digit(model, image, saved["mean"], saved["std"], cpu)[0]
        except ValueError as error:
            outcome, answer = "refused", str(error)
        seconds, (contrast, ratio) = time.perf_counter() - start, measures(image)
        records.append({"condition": condition, "font": font, "digit": digit, "outcome": outcome, "answer": answer,
                        "seconds": seconds, "contrast": contrast, "dot_ratio": ratio})
        if condition == "phone" or len(records) % 1000 == 0:
            print(f"{len(records)} images read ({time.perf_counter() - started:.0f} s)", flush=True)
    summary = summarise(records)
    report = {"recipe": str(Path(notebook.__file__).relative_to(common.ROOT)), "model": str(args.model),
              "seed": args.seed, "quick": args.quick,
              "font_files": [{k: v for k, v in font.items() if k != "path"} for font in fonts],
              "seconds_total": time.perf_counter() - started, **summary}
    print(markdown_tables(summary))
    if args.output:
        common.write_json(args.output, report)
        print(f"report written to {args.output}")
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before any image is made."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path(common.DEFAULTS["OUTPUT_DIR"]) / "digit_cnn.pt",
                        help="the saved network to read with (default outputs/digit_cnn.pt, saved by `make run`)")
    parser.add_argument("--output", type=common.output_file, help="write the report as JSON here")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer sizes, drawings, digits and photos")
    parser.add_argument("--seed", type=common.at_least(0), default=0, help="makes the whole set (default 0)")
    parser.add_argument("--data-root", default=common.DEFAULTS["DATA_ROOT"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
