"""A development set of handwriting that this project did not make, read by the notebook's own treatment.

The digits 0-9 in 14 handwriting fonts (npm's @fontsource packages, pinned below, fetched with `npm pack` into
data/fonts/) and MNIST test digits, under several conditions, each image read by the notebook's `predict_digit`
(so `mnist_style`) with a saved network. Reported: the accuracy per condition and per font, the images refused
(a ValueError from mnist_style, counted as wrong), those that ran past the time limit (also wrong), the seconds per
image (and per megapixel), and for every image the two measures the notebook's refusals rest on: the paper contrast
(how many times the paper's own unevenness the strongest ink stands out by; PAPER_CONTRAST) and the dot ratio (the
cropped ink's longer side over its stroke width; DOT). Conditions, margin and tight from the very same images:

    ink-margin, ink-tight        black ink on white, with a margin / cropped to the ink (touching all four edges)
    photo-margin, photo-tight    blue ink on light, unevenly lit, noisy paper (RGB), with a margin / cropped tight
    mnist-margin, mnist-tight    MNIST test digits as they are (28 x 28) / cropped to their ink
    canvas-margin, canvas-edge   drawings made with the notebook's DrawingPad (its own canvas and pen) along the
                                 glyph's centre line: with a margin / running into the top and bottom
    phone                        one 12-megapixel (4000 x 3000) JPEG photo per font of a digit in thin ballpoint ink
    blank                        the photo-margin paper with no digit on it: right when it is refused
    dot                          a tap on the DrawingPad, or a drag of up to 10 pixels: right when it is refused

Everything is deterministic from --seed. Each image is read in a worker process under --time-limit seconds.

    python bench/handwriting_devset.py --output outputs/devset.json      # the full set (10-13 minutes on 2 cores)
    python bench/handwriting_devset.py --quick                            # smoke run: fewer sizes, 2 phone photos
    python bench/handwriting_devset.py --conditions ink-margin ink-tight  # some conditions only
    python bench/handwriting_devset.py --write-sample tests/data/handwriting  # the tests' 60 images, then stop
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import itertools
import json
import multiprocessing
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
from handwritten_digits.files import atomic_write

# isort: split
import common  # bench/common.py: the bench scripts' shared helpers (a script's own folder is on its path)

FONT_VERSION = "5.3.0"  # every @fontsource package below, as of this script (npm view @fontsource/<name> version)
FONTS = {  # display name: (npm package name after @fontsource/, SHA-256 of its latin 400-weight .woff)
    "Caveat": ("caveat", "38b98dbeb922a14a74dfb41f83fc24e0e645e2eed9ce72145fefbdae8828cbfb"),
    "Indie Flower": ("indie-flower", "2cf7154e899ad16246196238d6d13f0135c5feba2d8ccde5d97a22664d012660"),
    "Patrick Hand": ("patrick-hand", "0f7031f6665437e04d6f354c5f64d6ae6777b498afbe804638c45b957a7ce8aa"),
    "Shadows Into Light": ("shadows-into-light", "93cff8110a18bb3e1fb0179c95f706ed1e8037e2e527c4cb425b46deaddbd975"),
    "Gloria Hallelujah": ("gloria-hallelujah", "31e7def8cf155d4dcc98216517ad509923a8a197bc9c8937668d04767c52040e"),
    "Kalam": ("kalam", "70ab8c1d2c10a28f213c6f1c359888624d5e650ffcd64f93a8194c3e14403746"),
    "Homemade Apple": ("homemade-apple", "998f34b48e0bcb8974dc6e8d94961a87689ca40e3258554d2f6fc3778b1968a3"),
    "Reenie Beanie": ("reenie-beanie", "1b86681155e125625f01839b2e6688dde2b2a7766a8eb49645b3a8707c2bee9f"),
    "Rock Salt": ("rock-salt", "358d065405a805204d48cc51cc48a8447f8d86369aa05d44c70e0111d7ee7e29"),
    "Covered By Your Grace": ("covered-by-your-grace",
                              "876d8371eedf1f9add237910aea034ca42cd5bdc8f7d722c7a04819ab3f711b8"),
    "Architects Daughter": ("architects-daughter", "0249dd5f81431dbf8a8406996c43f8018bf707221cf261d75145f083bb7091cf"),
    "Permanent Marker": ("permanent-marker", "ab8ac2bb72d48e089e37d8eefbacdfe2d74ccd48ae786d952fce9874837d2b2b"),
    "Sue Ellen Francisco": ("sue-ellen-francisco", "e2c988155c07d4a26b81216397fa1841af0916c9737a61e05ea38bd1bd5361b1"),
    "Nanum Pen Script": ("nanum-pen-script", "08cdd640e142c977071b4c3d5c33fd9ec322990e540f5511ca2fccff4568d0ec"),
}
CONDITIONS = ("ink-margin", "ink-tight", "photo-margin", "photo-tight", "mnist-margin", "mnist-tight",
              "canvas-margin", "canvas-edge", "phone", "blank", "dot")
NOT_DIGITS, BLANK = ("blank", "dot"), -1  # a blank sheet's or a dot's "digit": read right when it is refused
PAD = notebook.DrawingPad(lambda image: None)  # the notebook's canvas, at its own size and pen width
PHONE = (3000, 4000)  # rows, columns: 12 megapixels
TIGHT = 0.1  # cropped "tight": to the pixels with at least this much ink
SIZES, QUICK_SIZES = (24, 40, 64, 100, 160), (40, 100)  # ink heights in pixels of the ink and photo conditions


def fetch_fonts(fonts_dir: Path) -> tuple[list[dict], dict[str, str]]:
    """The fonts' latin 400-weight .woff files, fetched once with `npm pack` and checked against their SHA-256; and
    the fonts that could not be fetched, with the reason."""
    fonts, skipped = [], {}
    for name, (package, sha256) in FONTS.items():
        folder = fonts_dir / f"{package}-{FONT_VERSION}"
        woff, spec = folder / f"{package}-latin-400-normal.woff", f"@fontsource/{package}@{FONT_VERSION}"
        try:
            if not woff.is_file() or not (folder / "package.json").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                packed = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(folder)],
                                        capture_output=True, text=True, check=True, timeout=300)
                tarball = folder / json.loads(packed.stdout)[0]["filename"]
                with tarfile.open(tarball) as archive:
                    for member in (f"files/{woff.name}", "LICENSE", "package.json"):
                        (folder / Path(member).name).write_bytes(archive.extractfile(f"package/{member}").read())
                tarball.unlink()
            if (digest := hashlib.sha256(woff.read_bytes()).hexdigest()) != sha256:
                raise OSError(f"{woff} has SHA-256 {digest}, not the pinned one: delete {folder} to fetch it again")
        except FileNotFoundError as error:
            if error.filename == "npm":
                sys.exit(f"npm is not installed: install Node.js (it brings npm), or put the fonts in {fonts_dir}")
            skipped[name] = str(error)
        except (OSError, KeyError, subprocess.SubprocessError) as error:  # npm's own message where it gave one
            skipped[name] = f"{spec}: {str(getattr(error, 'stderr', None) or error).strip()[-300:]}"
        else:
            license_name = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("license", "unknown")
            fonts.append({"name": name, "package": f"@fontsource/{package}", "version": FONT_VERSION,
                          "license": license_name, "file": woff.name, "sha256": sha256, "path": woff})
    for name, reason in skipped.items():
        print(f"skipped font {name}: {reason}", file=sys.stderr)
    return fonts, skipped


# Drawing the digits --------------------------------------------------------------------------------------------


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


def tight_box(coverage: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the pixels with at least TIGHT ink."""
    rows, columns = np.nonzero(coverage >= TIGHT)
    return slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1)


def on_paper(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blue ink on light, slightly yellow paper with a light gradient and a little noise: an 8-bit RGB photo."""
    height, width = coverage.shape
    direction = rng.uniform(0, 2 * np.pi)
    rows = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    columns = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    light = rng.uniform(0.78, 0.93) + rng.uniform(0.04, 0.12) * (np.cos(direction) * columns + np.sin(direction) * rows)
    paper = light[..., None] * np.array([1.0, 0.98, 0.92], dtype=np.float32)  # warm white
    ink = np.array([0.12, 0.18, 0.55], dtype=np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    strength = (rng.uniform(0.75, 0.95) * coverage).astype(np.float32)[..., None]
    photo = paper * (1 - strength) + ink * strength
    photo += rng.standard_normal(photo.shape, dtype=np.float32) * np.float32(0.02)
    return np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8)


def thinned(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning: the one-pixel-wide centre line of a binary image's strokes (scikit-image's
    morphology.thin would do it, but scikit-image is not among the project's requirements)."""
    image = np.pad(mask.astype(bool), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p2, p3, p4, p5 = image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:], image[2:, 2:]
            p6, p7, p8, p9 = image[2:, 1:-1], image[2:, :-2], image[1:-1, :-2], image[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            neighbours = sum(p.astype(np.uint8) for p in ring[:-1])
            crossings = sum((~a & b).astype(np.uint8) for a, b in itertools.pairwise(ring))
            first, second = (p2 & p4 & p6, p4 & p6 & p8) if step == 0 else (p2 & p4 & p8, p2 & p6 & p8)
            remove = image[1:-1, 1:-1] & (neighbours >= 2) & (neighbours <= 6) & (crossings == 1) & ~first & ~second
            if remove.any():
                image[1:-1, 1:-1] &= ~remove
                changed = True
    return image[1:-1, 1:-1]


def centre_line(path: Path, digit: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The glyph's centre line, rotated: its points (row, column, in pixels of a 240-pixel-tall glyph) and the pairs
    of neighbouring points, as the segments a pen would draw."""
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
    """The centre line drawn with the notebook's DrawingPad, white on black: running into the top and bottom of the
    canvas (`edge`; the pen's ink reaches past them), or about 150 pixels tall with a margin."""
    (points, pairs), size = line, PAD.size
    height, width = np.ptp(points, axis=0) + 1
    scale = (size - 8) / height if edge else 150 / max(height, width)
    top = 4 if edge else (size - height * scale) / 2 + rng.uniform(-15, 15)
    left = (size - width * scale) / 2 + rng.uniform(-15, 15) * (not edge or width * scale < size - 60)
    xy = placed(points, scale, top, left)
    PAD.clear()
    lone = set(range(len(points))) - set(pairs.ravel())  # points with no neighbour: a dot
    for i, j in [*pairs, *((i, i) for i in sorted(lone))]:
        PAD.mouse_down(*xy[i])
        PAD.mouse_up(*xy[j])
    return np.asarray(PAD.image)


def phone_photo(line: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A 4000 x 3000 JPEG photo (decoded, RGB) of the digit written with a ballpoint pen: 700 to 1400 pixels tall,
    strokes 5 to 9 pixels wide, blue ink on unevenly lit paper with a little noise."""
    points, pairs = line
    scale = rng.uniform(700, 1400) / (np.ptp(points[:, 0]) + 1)
    pen = int(rng.integers(5, 10))
    box = tuple(int(extent * scale) + 4 * pen for extent in np.ptp(points, axis=0) + 1)
    xy = placed(points, scale, 2 * pen, 2 * pen)
    ink = Image.new("L", box[::-1], 0)
    draw = ImageDraw.Draw(ink)
    for i, j in pairs:
        draw.line([tuple(xy[i]), tuple(xy[j])], fill=255, width=pen)
    for x, y in xy:
        draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    coverage = np.zeros(PHONE)
    top, left = int(rng.integers(200, PHONE[0] - box[0] - 200)), int(rng.integers(400, PHONE[1] - box[1] - 400))
    coverage[top:top + box[0], left:left + box[1]] = np.asarray(ink.filter(ImageFilter.GaussianBlur(pen / 5))) / 255
    buffer = io.BytesIO()
    Image.fromarray(on_paper(coverage, rng)).save(buffer, format="JPEG", quality=90)
    return np.asarray(Image.open(buffer).convert("RGB"))


# The set: for each glyph, its conditions' images, each made only when its condition is asked for -----------------


def typeset(font: dict, digit: int, height: int, rng: np.random.Generator) -> dict:
    """The ink, photo and blank conditions of one typeset glyph, with a margin of 15-50 % of its height a side."""
    coverage = glyph_coverage(font["path"], digit, height, rng.uniform(-10, 10))
    margins = [max(4, round(rng.uniform(0.15, 0.5) * coverage.shape[0])) for _ in range(4)]  # top, bottom, sides
    coverage = np.pad(coverage, [margins[:2], margins[2:]])
    tight, photo = tight_box(coverage), functools.cache(lambda: on_paper(coverage, rng))
    ink = np.round(255 * (1 - coverage)).astype(np.uint8)  # black on white, 8-bit grey
    return {"ink-margin": lambda: ink, "ink-tight": lambda: ink[tight], "photo-margin": photo,
            "photo-tight": lambda: photo()[tight], "blank": lambda: on_paper(np.zeros_like(coverage), rng)}


def drawn(font: dict, digit: int, rng: np.random.Generator) -> dict:
    """The canvas conditions of one glyph, drawn along its centre line."""
    line = functools.cache(functools.partial(centre_line, font["path"], digit, rng.uniform(-10, 10)))
    return {"canvas-margin": lambda: canvas_drawing(line(), False, rng),
            "canvas-edge": lambda: canvas_drawing(line(), True, rng)}


def chosen(conditions: set[str], font: str, images: dict, digit: int):
    """(condition, font, truth, image) for each of these images whose condition is asked for."""
    for condition, make in images.items():
        if condition in conditions:
            yield condition, font, BLANK if condition in NOT_DIGITS else digit, make()


def cases(conditions: set[str], fonts: list[dict], seed: int, quick: bool, data_root: str):
    """Every image of the chosen conditions, made one at a time (a phone photo holds some 36 MB); each image's random
    numbers come from the seed and what the image is, the same whatever else is made."""
    if conditions & {"mnist-margin", "mnist-tight"}:
        test = common.mnist(data_root, train=False)
        for i in np.random.default_rng([seed, 4]).choice(len(test.data), size=100 if quick else 500, replace=False):
            digit = test.data[i].numpy()
            yield from chosen(conditions, "MNIST", {"mnist-margin": lambda digit=digit: digit,
                                                    "mnist-tight": lambda digit=digit: digit[tight_box(digit / 255)]},
                              int(test.targets[i]))
    for index in range((20 if quick else 200) * ("dot" in conditions)):
        rng = np.random.default_rng([seed, 4, index])  # a tap, or (every other one) a drag of up to 10 pixels
        x, y = rng.uniform(PAD.line_width, PAD.size - PAD.line_width, size=2)
        drag = rng.uniform(-10, 10, size=2) if index % 2 else np.zeros(2)
        PAD.clear()
        PAD.mouse_down(x, y)
        PAD.mouse_up(x + drag[0], y + drag[1])
        yield "dot", "", BLANK, np.asarray(PAD.image)
    for f, font in enumerate(fonts):
        for digit in range(10):
            for s, size in enumerate(QUICK_SIZES if quick else SIZES):
                images = typeset(font, digit, size, np.random.default_rng([seed, 1, f, digit, s]))
                yield from chosen(conditions, font["name"], images, digit)
            for variant in range(1 if quick else 2):
                images = drawn(font, digit, np.random.default_rng([seed, 2, f, digit, variant]))
                yield from chosen(conditions, font["name"], images, digit)
        if "phone" in conditions and (f < 2 or not quick):
            rng = np.random.default_rng([seed, 3, f])
            digit = int(rng.integers(10))
            yield "phone", font["name"], digit, phone_photo(centre_line(font["path"], digit, rng.uniform(-10, 10)), rng)


# Reading the images, each under a time limit --------------------------------------------------------------------


def measures(image: np.ndarray) -> tuple[float | None, float | None]:
    """The paper contrast that the notebook's blank-sheet check measures (None for an image of one colour) and the dot
    check's ratio (None where there is no ink to crop), on the grey image mnist_style sees."""
    grey = notebook.downsized(notebook.to_grayscale(image))
    ink, unevenness = notebook.ink_above_paper(grey)
    contrast = float(ink.max() / unevenness) if unevenness > 0 else None if ink.max() == 0 else float("inf")
    try:
        cropped = notebook.crop_to(*notebook.strokes_only(notebook.white_on_black(grey)))
    except ValueError:
        return contrast, None
    width = float(notebook.stroke_width(torch.from_numpy(cropped > 0.5)))
    return contrast, max(cropped.shape) / width if width > 0 else None


def reader_worker(connection, model_path: str) -> None:
    """In a worker process: read each image received with the notebook's predict_digit and send back the outcome
    ("read", digit or "refused", message), the seconds, the contrast and the dot ratio. A bug ends the process."""
    cpu, model = torch.device("cpu"), notebook.DigitCNN()
    saved = load_checkpoint(model_path, model, cpu)
    connection.send("ready")
    while (image := connection.recv()) is not None:
        started = time.perf_counter()
        try:
            outcome = "read", notebook.predict_digit(model, image, saved["mean"], saved["std"], cpu)[0]
        except ValueError as error:
            outcome = "refused", str(error)
        connection.send((*outcome, time.perf_counter() - started, *measures(image)))


class TimedReader:
    """Reads images in a worker process, so that one that takes longer than `limit` seconds can be stopped."""

    def __init__(self, model_path: Path, limit: float):
        self.model_path, self.limit, self.process = str(model_path), limit, None

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.process = None

    def read(self, image: np.ndarray) -> tuple:
        """(outcome, answer, seconds, contrast, dot ratio); ("timed out", None, limit, None, None) past the limit."""
        if self.process is None:
            context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked thread pools
            self.connection, child = context.Pipe()
            self.process = context.Process(target=reader_worker, args=(child, self.model_path), daemon=True)
            self.process.start()
            if not self.connection.poll(300) or self.connection.recv() != "ready":
                raise RuntimeError("the reader process did not start within 300 s")
        self.connection.send(image)
        if not self.connection.poll(self.limit):
            self.stop()
            return "timed out", None, self.limit, None, None
        try:
            return self.connection.recv()
        except EOFError:
            raise RuntimeError("predict_digit failed on an image: the reader's traceback is above") from None


# Report ---------------------------------------------------------------------------------------------------------


def tally(records: list[dict]) -> dict:
    """Images, correct answers, accuracy, refusals, time-outs, time, contrast and dot ratio of a group of images."""
    timed = [r for r in records if r["outcome"] != "timed out"]
    correct = sum(r["outcome"] == "refused" if r["digit"] == BLANK else r["outcome"] == "read" and r["answer"] ==
                  r["digit"] for r in records)
    contrasts = [r["contrast"] for r in records if r["contrast"] is not None]
    ratios = [r["dot_ratio"] for r in records if r["dot_ratio"] is not None]
    return {"images": len(records), "correct": correct, "accuracy": correct / len(records),
            "refused": sum(r["outcome"] == "refused" for r in records), "timed_out": len(records) - len(timed),
            "seconds_per_image_median": statistics.median(r["seconds"] for r in timed) if timed else None,
            "seconds_per_image_mean": statistics.mean(r["seconds"] for r in timed) if timed else None,
            "seconds_per_megapixel_median": statistics.median(r["seconds"] / r["megapixels"] for r in timed)
            if timed else None,
            "megapixels_median": statistics.median(r["megapixels"] for r in records),
            "contrast_min": min(contrasts, default=None), "contrast_max": max(contrasts, default=None),
            "dot_ratio_min": min(ratios, default=None), "dot_ratio_max": max(ratios, default=None)}


def summarise(records: list[dict]) -> dict:
    """Tallies per condition, per font and per font and condition, and the kinds of refusal per condition."""
    by_condition, by_font = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for record in records:
        by_condition[record["condition"]].append(record)
        if record["condition"] not in NOT_DIGITS:  # the per-font table is about digits
            by_font[record["font"]][record["condition"]].append(record)
    refusals = {c: dict(Counter(re.split(r"[:(]", r["answer"])[0].strip() for r in group if r["outcome"] == "refused"))
                for c, group in by_condition.items()}
    return {"conditions": {c: tally(by_condition[c]) for c in CONDITIONS if c in by_condition},
            "fonts": {font: {"all": tally([r for group in groups.values() for r in group]),
                             **{c: tally(groups[c]) for c in CONDITIONS if c in groups}}
                      for font, groups in by_font.items()},
            "refusals": {c: kinds for c, kinds in refusals.items() if kinds},
            "timed_out": [{k: r[k] for k in ("condition", "font", "digit")} for r in records
                          if r["outcome"] == "timed out"]}


def markdown_tables(summary: dict) -> str:
    """The summary as two Markdown tables: per condition, and per font (accuracy, refusals and time-outs)."""
    def number(value):
        return "" if value is None else "no unevenness" if value == float("inf") else f"{value:.1f}"

    def seconds(value):
        return "" if value is None else f"{value:.4f}" if value < 1 else f"{value:.1f}"

    lines = ["| condition | images | accuracy | refused | timed out | s / image (median) | s / megapixel (phone) "
             "| contrast (lowest; blank: highest) | dot ratio (lowest; dot: highest) |", "|---|" + "---:|" * 8]
    for c, t in summary["conditions"].items():
        per_megapixel = seconds(t["seconds_per_megapixel_median"]) if t["megapixels_median"] >= 1 else ""
        lines.append(f"| {c}{' (refused = right)' * (c in NOT_DIGITS)} | {t['images']} | {t['accuracy']:.1%} | "
                     f"{t['refused']} | {t['timed_out']} | "
                     f"{seconds(t['seconds_per_image_median'])} | "
                     f"{per_megapixel} | {number(t['contrast_max' if c == 'blank' else 'contrast_min'])} | "
                     f"{number(t['dot_ratio_max' if c == 'dot' else 'dot_ratio_min'])} |")
    columns = [c for c in summary["conditions"] if any(c in f for f in summary["fonts"].values())] + ["all"]
    lines += ["", f"| font | {' | '.join(columns)} |", "|---|" + "---:|" * len(columns)]
    for font, tallies in summary["fonts"].items():
        cells = ["" if (t := tallies.get(c)) is None else f"{t['accuracy']:.0%}"
                 + f" ({t['refused']} r)" * bool(t["refused"]) + f" ({t['timed_out']} t)" * bool(t["timed_out"])
                 for c in columns]
        lines.append(f"| {font} | {' | '.join(cells)} |")
    return "\n".join([*lines, "\n(n r): n images refused; (n t): n images past the time limit; both count as wrong."])


# Main -----------------------------------------------------------------------------------------------------------


def write_sample(folder: Path, fonts: list[dict], seed: int) -> int:
    """60 small PNGs for the tests, <digit>_<condition>_<font>.png: each digit in ink, photo and canvas form, each as a
    margin and a tight (or edge) pair from the same glyph, the fonts taken in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    pairs = (("ink-margin", "ink-tight"), ("photo-margin", "photo-tight"), ("canvas-margin", "canvas-edge"))
    for digit, (family, pair) in itertools.product(range(10), enumerate(pairs)):
        font, rng = fonts[(3 * digit + family) % len(fonts)], np.random.default_rng([seed, 5, digit, family])
        images = drawn(font, digit, rng) if family == 2 else typeset(font, digit, int(rng.integers(28, 72)), rng)
        for condition in pair:
            name = f"{digit}_{condition}_{font['package'].removeprefix('@fontsource/')}.png"
            Image.fromarray(images[condition]()).save(folder / name, optimize=True)
    return 10 * 2 * len(pairs)


def main(args: argparse.Namespace) -> dict | None:
    if not args.write_sample and not args.model.is_file():
        sys.exit(f"{args.model} is missing: run `make run` first (it trains the network and saves it there), "
                 "or pass --model PATH")
    try:  # checked here, where a wrong file is one line, not in the reader's process
        args.write_sample or load_checkpoint(args.model, notebook.DigitCNN(), torch.device("cpu"))
    except (OSError, ValueError) as error:
        sys.exit(f"{args.model} cannot be read with: {error}")
    fonts, skipped = fetch_fonts(args.fonts_dir)
    if not fonts:
        sys.exit("no font could be fetched: is the npm registry reachable?")
    if args.write_sample:
        print(f"wrote {write_sample(args.write_sample, fonts, args.seed)} images to {args.write_sample}")
        return None
    reader, records, started = TimedReader(args.model, args.time_limit), [], time.perf_counter()
    try:
        for count, (condition, font, digit, image) in enumerate(
                cases(set(args.conditions), fonts, args.seed, args.quick, args.data_root), start=1):
            outcome, answer, seconds, contrast, ratio = reader.read(image)
            records.append({"condition": condition, "font": font, "digit": digit, "outcome": outcome,
                            "answer": answer, "seconds": seconds, "contrast": contrast, "dot_ratio": ratio,
                            "megapixels": image.shape[0] * image.shape[1] / 1e6})
            if condition == "phone" or count % 1000 == 0:
                print(f"{count} images read ({time.perf_counter() - started:.0f} s); last: {condition}, {font}, digit "
                      f"{digit}: {outcome} {answer if outcome != 'refused' else ''} in {seconds:.2f} s", flush=True)
    finally:
        reader.stop()
    summary = summarise(records)
    report = {"recipe": notebook.__file__, "model": str(args.model), "seed": args.seed, "quick": args.quick,
              "time_limit_s": args.time_limit, "conditions_run": [c for c in CONDITIONS if c in args.conditions],
              "font_files": [{k: v for k, v in font.items() if k != "path"} for font in fonts],
              "skipped_fonts": skipped, "seconds_total": time.perf_counter() - started, **summary}
    print(markdown_tables(summary))
    if args.output:
        with atomic_write(args.output) as temporary:  # never a half-written report
            temporary.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"report written to {args.output}")
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before any image is made."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path(common.DEFAULTS["OUTPUT_DIR"]) / "digit_cnn.pt",
                        help="the saved network to read with (default outputs/digit_cnn.pt, saved by `make run`)")
    parser.add_argument("--output", type=common.output_file, help="write the report as JSON here")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), metavar="CONDITION",
                        help=f"the conditions to run (default all: {', '.join(CONDITIONS)})")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 sizes instead of 5, 1 canvas drawing per "
                        "digit and font instead of 2, 100 MNIST digits instead of 500, 2 phone photos instead of 14")
    parser.add_argument("--seed", type=common.at_least(0), default=0, help="makes the whole set (default 0)")
    parser.add_argument("--time-limit", type=float, default=30.0,
                        help="seconds one image may take before it counts as wrong (default 30)")
    parser.add_argument("--write-sample", type=Path, metavar="DIR", help="write the tests' 60 PNGs to DIR, and stop")
    parser.add_argument("--fonts-dir", type=Path, default=common.ROOT / "data" / "fonts", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", default=common.DEFAULTS["DATA_ROOT"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.time_limit < float("inf"):
        parser.error(f"argument --time-limit: must be a positive number of seconds, not {args.time_limit}")
    return args


if __name__ == "__main__":
    main(parse_args())
