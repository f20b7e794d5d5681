"""A development set of handwriting that this project did not make, read by the notebook's own treatment.

The digits 0-9 in 14 handwriting fonts (npm's @fontsource packages, pinned below, fetched with `npm pack` into
data/fonts/) and MNIST test digits, under several conditions, each image read by the notebook's `predict_digit`
(so `mnist_style`) with a saved network. Reported: the accuracy per condition and per font, the images refused
(a ValueError from mnist_style, counted as wrong), those that ran past the time limit (also wrong), and the
seconds per image (and per megapixel). Conditions, margin and tight from the very same images:

    ink-margin, ink-tight        black ink on white, with a margin / cropped to the ink (touching all four edges)
    photo-margin, photo-tight    blue ink on light, unevenly lit, noisy paper (RGB), with a margin / cropped tight
    mnist-margin, mnist-tight    MNIST test digits as they are (28 x 28) / cropped to their ink
    canvas-margin, canvas-edge   280 x 280 white-on-black drawings made with the notebook's DrawingPad (22-pixel
                                 pen) along the glyph's centre line: with a margin / running into the top and bottom
    phone                        one 12-megapixel (4000 x 3000) JPEG photo per font of a digit in thin ballpoint ink
    blank                        the photo-margin paper with no digit on it: right when it is refused
    dot                          a tap on the DrawingPad, or a drag of up to 10 pixels: right when it is refused

For every image the report also keeps the contrast that the notebook's blank-sheet check measures (how many times
the paper's own unevenness the strongest ink stands out by), so that PAPER_CONTRAST can be judged on this set:
the lowest contrast of each condition with a digit, and the highest of the blank sheets; and the dot check's ratio
(the cropped ink's longer side over its stroke width, which mnist_style refuses under DOT): the lowest of each
condition with a digit, the highest of the dots.

Everything is deterministic from --seed. Each image is read in a worker process under --time-limit seconds.

    python bench/handwriting_devset.py                                  # the full set (10-13 minutes on 2 cores)
    python bench/handwriting_devset.py --quick                          # smoke run: fewer sizes, 2 phone photos
    python bench/handwriting_devset.py --conditions ink-margin ink-tight photo-margin   # some conditions only
    git show HEAD:HandWrittenDigitsRecognition.ipynb > /tmp/before.ipynb
    python bench/handwriting_devset.py --recipe /tmp/before.py --output outputs/before.json   # before a change
    python bench/handwriting_devset.py --write-sample tests/data/handwriting                        # the test sample
"""

from __future__ import annotations

import argparse
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
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from handwritten_digits import cli  # the bench scripts' command-line checks; the notebook's code
from handwritten_digits import recipe as project
from handwritten_digits.checkpoints import load_checkpoint
from handwritten_digits.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RECIPE = Path(project.__file__)

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
BLANK = -1  # the "digit" of a blank sheet or a dot: read right when it is refused
NOT_DIGITS = ("blank", "dot")
CANVAS, PEN = 280, 22  # the notebook's DrawingPad: a 280 x 280 canvas, a 22-pixel pen
PHONE = (3000, 4000)  # rows, columns: 12 megapixels
TIGHT = 0.1  # cropped "tight": to the pixels with at least this much ink
SIZES = (24, 40, 64, 100, 160)  # ink heights in pixels of the ink and photo conditions
QUICK_SIZES = (40, 100)


@dataclass(frozen=True)
class Font:
    """One handwriting font, as fetched from npm."""

    name: str
    package: str
    version: str
    license: str
    path: Path
    sha256: str


@dataclass
class Case:
    """One image of the set, with the truth about it."""

    condition: str
    font: str
    digit: int
    image: np.ndarray


# Fonts ---------------------------------------------------------------------------------------------------------


def fetch_font(name: str, package: str, sha256: str, fonts_dir: Path) -> Font:
    """The latin 400-weight .woff of @fontsource/<package>@FONT_VERSION, fetched once with `npm pack`."""
    folder = fonts_dir / f"{package}-{FONT_VERSION}"
    woff = folder / f"{package}-latin-400-normal.woff"
    if not woff.is_file() or not (folder / "package.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        spec = f"@fontsource/{package}@{FONT_VERSION}"
        try:
            packed = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(folder)],
                                    capture_output=True, text=True, check=True, timeout=300)
        except FileNotFoundError:
            sys.exit("npm is not installed: install Node.js (it brings npm), or put the fonts in " + str(fonts_dir))
        except subprocess.CalledProcessError as error:
            raise FileNotFoundError(f"`npm pack {spec}` failed: {error.stderr.strip()[-300:]}") from error
        tarball = folder / json.loads(packed.stdout)[0]["filename"]
        wanted = {f"package/files/{woff.name}": woff, "package/LICENSE": folder / "LICENSE",
                  "package/package.json": folder / "package.json"}
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                if member.name in wanted and member.isfile():
                    wanted.pop(member.name).write_bytes(archive.extractfile(member).read())
        tarball.unlink()
        if f"package/files/{woff.name}" in wanted:
            raise FileNotFoundError(f"{spec} has no {woff.name}")
    license_field = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("license", "unknown")
    digest = hashlib.sha256(woff.read_bytes()).hexdigest()
    if digest != sha256:
        raise OSError(f"{woff} has SHA-256 {digest}, not the pinned {sha256}: delete {folder} to fetch it again")
    return Font(name, package, FONT_VERSION, license_field, woff, digest)


def fetch_fonts(fonts_dir: Path) -> tuple[list[Font], dict[str, str]]:
    """The fonts that could be fetched and have ten distinct digits; the others with the reason they are skipped."""
    fonts, skipped = [], {}
    for name, (package, sha256) in FONTS.items():
        try:
            font = fetch_font(name, package, sha256, fonts_dir)
        except (FileNotFoundError, OSError, subprocess.TimeoutExpired) as error:
            skipped[name] = str(error)
            continue
        shapes = {glyph_coverage(font.path, digit, 60, 0.0).tobytes() for digit in range(10)}
        if len(shapes) < 10:  # a missing glyph is drawn as the same empty box for every digit
            skipped[name] = "the font lacks some of the digits 0-9"
            continue
        fonts.append(font)
    for name, reason in skipped.items():
        print(f"skipped font {name}: {reason}", file=sys.stderr)
    return fonts, skipped


# Drawing the digits --------------------------------------------------------------------------------------------


def render(path: Path, digit: int, font_size: int, angle: float) -> Image.Image:
    """The digit in this font as coverage (0 paper, 255 ink), rotated by `angle` degrees, cropped to its ink."""
    font = ImageFont.truetype(str(path), font_size)
    image = Image.new("L", (2 * font_size + 8, 2 * font_size + 8), 0)
    ImageDraw.Draw(image).text((font_size // 2 + 4, font_size // 4 + 4), str(digit), fill=255, font=font)
    image = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=0)
    box = image.getbbox()
    if box is None:
        raise ValueError(f"{path.name} draws nothing for the digit {digit}")
    return image.crop(box)


def glyph_coverage(path: Path, digit: int, ink_height: int, angle: float) -> np.ndarray:
    """The digit's ink coverage (0 to 1), about `ink_height` pixels tall, cropped to its ink."""
    probe = render(path, digit, 200, 0.0)
    font_size = max(6, round(200 * ink_height / probe.height))
    return np.asarray(render(path, digit, font_size, angle), dtype=np.float64) / 255


def with_margins(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The coverage inside a margin of 15 % to 50 % of its height on each side (at least 4 pixels)."""
    top, bottom, left, right = (max(4, round(rng.uniform(0.15, 0.5) * coverage.shape[0])) for _ in range(4))
    return np.pad(coverage, ((top, bottom), (left, right)))


def tight_box(coverage: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the pixels with at least TIGHT ink."""
    rows, columns = np.nonzero(coverage >= TIGHT)
    return slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1)


def black_ink(coverage: np.ndarray) -> np.ndarray:
    """Black ink on white paper, 8-bit grey."""
    return np.round(255 * (1 - coverage)).astype(np.uint8)


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
    """Zhang and Suen's thinning: the one-pixel-wide centre line of a binary image's strokes."""
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
            open_side = ~first & ~second
            remove = image[1:-1, 1:-1] & (neighbours >= 2) & (neighbours <= 6) & (crossings == 1) & open_side
            if remove.any():
                image[1:-1, 1:-1] &= ~remove
                changed = True
    return image[1:-1, 1:-1]


def centre_line(path: Path, digit: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The glyph's centre line, rotated: its points (row, column, in pixels of a 240-pixel-tall glyph) and the
    pairs of neighbouring points, as the segments a pen would draw."""
    line = thinned(glyph_coverage(path, digit, 240, angle) > 0.5)
    points = np.argwhere(line)
    index = -np.ones(line.shape, dtype=np.int64)
    index[tuple(points.T)] = np.arange(len(points))
    padded = np.pad(index, 1, constant_values=-1)
    pairs = []
    for d_row, d_column in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = padded[1 + d_row:1 + d_row + line.shape[0], 1 + d_column:1 + d_column + line.shape[1]][tuple(points.T)]
        pairs.extend((i, j) for i, j in zip(np.arange(len(points)), other, strict=True) if j >= 0)
    return points.astype(np.float64), np.array(pairs, dtype=np.int64).reshape(-1, 2)


def placed(points: np.ndarray, scale: float, top: float, left: float) -> np.ndarray:
    """The points scaled and moved so that their top-left corner lands on (top, left); as (x, y)."""
    moved = (points - points.min(axis=0)) * scale + np.array([top, left])
    return moved[:, ::-1]


def canvas_drawing(line: tuple[np.ndarray, np.ndarray], pad_class, edge: bool, rng: np.random.Generator) -> np.ndarray:
    """The centre line drawn on the notebook's DrawingPad, white on black, with its 22-pixel pen: running into the
    top and bottom of the canvas (`edge`), or about 150 pixels tall with a margin."""
    points, pairs = line
    height, width = np.ptp(points, axis=0) + 1
    if edge:  # the pen's ink reaches 7 pixels past the top and the bottom
        scale = (CANVAS - 8) / height
        top = 4
    else:
        scale = 150 / max(height, width)
        top = (CANVAS - height * scale) / 2 + rng.uniform(-15, 15)
    left = (CANVAS - width * scale) / 2 + rng.uniform(-15, 15) * (not edge or width * scale < CANVAS - 60)
    xy = placed(points, scale, top, left)
    pad = pad_class(lambda image: None, size=CANVAS, line_width=PEN)
    drawn = set()
    for i, j in pairs:
        pad.mouse_down(*xy[i])
        pad.mouse_up(*xy[j])
        drawn.update((i, j))
    for i in set(range(len(points))) - drawn:  # lone points: a dot
        pad.mouse_down(*xy[i])
        pad.mouse_up(*xy[i])
    return np.asarray(pad.image)


def phone_photo(line: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A 4000 x 3000 JPEG photo (decoded, RGB) of the digit written with a ballpoint pen: 700 to 1400 pixels
    tall, strokes 5 to 9 pixels wide, blue ink on unevenly lit paper with a little noise."""
    points, pairs = line
    height, width = np.ptp(points, axis=0) + 1
    scale = rng.uniform(700, 1400) / height
    pen = int(rng.integers(5, 10))
    box = (int(height * scale) + 4 * pen, int(width * scale) + 4 * pen)
    xy = placed(points, scale, 2 * pen, 2 * pen)
    ink = Image.new("L", box[::-1], 0)
    draw = ImageDraw.Draw(ink)
    for i, j in pairs:
        draw.line([tuple(xy[i]), tuple(xy[j])], fill=255, width=pen)
    for x, y in xy:
        draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    ink = np.asarray(ink.filter(ImageFilter.GaussianBlur(pen / 5)), dtype=np.float64) / 255
    coverage = np.zeros(PHONE)
    top = int(rng.integers(200, PHONE[0] - box[0] - 200))
    left = int(rng.integers(400, PHONE[1] - box[1] - 400))
    coverage[top:top + box[0], left:left + box[1]] = ink
    buffer = io.BytesIO()
    Image.fromarray(on_paper(coverage, rng)).save(buffer, format="JPEG", quality=90)
    return np.asarray(Image.open(buffer).convert("RGB"))


# The set -------------------------------------------------------------------------------------------------------


def case_rng(seed: int, *keys: int) -> np.random.Generator:
    """A random generator for one image, from the seed and what the image is: the same whatever else is made."""
    return np.random.default_rng([seed, *keys])


def font_cases(fonts: list[Font], conditions: set[str], seed: int, quick: bool, pad_class) -> Iterator[Case]:
    """The font-made images of the chosen conditions (all but MNIST's), one glyph at a time."""
    sizes, canvas_variants = (QUICK_SIZES, 1) if quick else (SIZES, 2)
    phone_fonts = fonts[:2] if quick else fonts
    for f, font in enumerate(fonts):
        for digit in range(10):
            for s, size in enumerate(sizes):
                rng = case_rng(seed, 1, f, digit, s)
                coverage = with_margins(glyph_coverage(font.path, digit, size, rng.uniform(-10, 10)), rng)
                tight = tight_box(coverage)
                if conditions & {"ink-margin", "ink-tight"}:
                    ink = black_ink(coverage)
                    yield from cases_in(conditions, font.name, digit, {"ink-margin": ink, "ink-tight": ink[tight]})
                if conditions & {"photo-margin", "photo-tight"}:
                    photo = on_paper(coverage, rng)
                    yield from cases_in(conditions, font.name, digit,
                                        {"photo-margin": photo, "photo-tight": photo[tight]})
                if "blank" in conditions:
                    yield Case("blank", font.name, BLANK, on_paper(np.zeros_like(coverage), rng))
            if conditions & {"canvas-margin", "canvas-edge"}:
                for v in range(canvas_variants):
                    rng = case_rng(seed, 2, f, digit, v)
                    line = centre_line(font.path, digit, rng.uniform(-10, 10))
                    yield from cases_in(conditions, font.name, digit, {
                        "canvas-margin": lambda line=line, rng=rng: canvas_drawing(line, pad_class, False, rng),
                        "canvas-edge": lambda line=line, rng=rng: canvas_drawing(line, pad_class, True, rng)})
        if "phone" in conditions and font in phone_fonts:
            rng = case_rng(seed, 3, f)
            digit = int(rng.integers(10))
            line = centre_line(font.path, digit, rng.uniform(-10, 10))
            yield Case("phone", font.name, digit, phone_photo(line, rng))


def dot_cases(conditions: set[str], seed: int, quick: bool, pad_class) -> Iterator[Case]:
    """Taps on the DrawingPad (a dot of its pen's width) and short drags of up to 10 pixels, anywhere on it."""
    if "dot" not in conditions:
        return
    for index in range(20 if quick else 200):
        rng = case_rng(seed, 4, index)
        x, y = rng.uniform(PEN, CANVAS - PEN, size=2)
        drag = rng.uniform(-10, 10, size=2) if index % 2 else np.zeros(2)
        pad = pad_class(lambda image: None, size=CANVAS, line_width=PEN)
        pad.mouse_down(x, y)
        pad.mouse_up(x + drag[0], y + drag[1])
        yield Case("dot", "", BLANK, np.asarray(pad.image))


def cases_in(conditions: set[str], font: str, digit: int, images: dict) -> Iterator[Case]:
    """The images of the chosen conditions among these (an image, or a function that makes it)."""
    for condition, image in images.items():
        if condition in conditions:
            yield Case(condition, font, digit, image() if callable(image) else image)


def mnist_cases(conditions: set[str], seed: int, quick: bool, data_root: str) -> Iterator[Case]:
    """MNIST test digits as they are (with MNIST's margin) and cropped to their ink."""
    if not conditions & {"mnist-margin", "mnist-tight"}:
        return
    from torchvision import datasets

    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist(data_root, log=lambda _: None)
    test = datasets.MNIST(data_root, train=False)
    chosen = case_rng(seed, 4).choice(len(test.data), size=100 if quick else 500, replace=False)
    for i in chosen:
        digit = test.data[i].numpy()
        yield from cases_in(conditions, "MNIST", int(test.targets[i]),
                            {"mnist-margin": digit, "mnist-tight": digit[tight_box(digit / 255)]})


# Reading the images, each under a time limit --------------------------------------------------------------------


def load_recipe(path: str):
    """The module exported from a notebook (the project's handwritten_digits/recipe.py, or one that `make export`
    wrote at another commit: git show COMMIT:handwritten_digits/recipe.py > /tmp/before.py), imported from its file."""
    import importlib.util

    if Path(path).resolve() == RECIPE.resolve():
        return project
    spec = importlib.util.spec_from_file_location("recipe_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reader_worker(connection, recipe_path: str, model_path: str) -> None:
    """In a worker process: read each image received with the recipe's predict_digit; answer with the outcome."""
    import torch

    recipe = load_recipe(recipe_path)
    cpu = torch.device("cpu")
    model = recipe.DigitCNN()
    saved = load_checkpoint(model_path, model, cpu)
    connection.send("ready")
    while (image := connection.recv()) is not None:
        started = time.perf_counter()
        try:
            digit, _ = recipe.predict_digit(model, image, saved["mean"], saved["std"], cpu)
            outcome = ("read", digit, time.perf_counter() - started)
        except ValueError as error:
            outcome = ("refused", str(error), time.perf_counter() - started)
        except Exception:  # a bug, not a refusal: stop the run with its traceback
            connection.send(("error", traceback.format_exc(), time.perf_counter() - started))
            continue
        connection.send((*outcome, paper_contrast(recipe, image), dot_ratio(recipe, image)))


def paper_contrast(recipe, image: np.ndarray) -> float | None:
    """How many times the paper's own unevenness the strongest ink stands out by, as the notebook's white_on_black
    measures it (after downsized, where the notebook has it); None for an image of one colour."""
    grey = recipe.to_grayscale(image)
    if hasattr(recipe, "downsized"):
        grey = recipe.downsized(grey)
    ink, unevenness = recipe.ink_above_paper(grey)
    return float(ink.max() / unevenness) if unevenness > 0 else None if ink.max() == 0 else float("inf")


def dot_ratio(recipe, image: np.ndarray) -> float | None:
    """The cropped ink's longer side over its stroke width, as the notebook's mnist_style measures it for its dot
    check; None where there is no ink to crop."""
    import torch

    if not hasattr(recipe, "stroke_width"):  # an older notebook's recipe (--recipe)
        return None
    grey = recipe.to_grayscale(image)
    if hasattr(recipe, "downsized"):
        grey = recipe.downsized(grey)
    try:
        ink = recipe.crop_to(*recipe.strokes_only(recipe.white_on_black(grey)))
    except ValueError:
        return None
    width = float(recipe.stroke_width(torch.from_numpy(ink > 0.5)))
    return max(ink.shape) / width if width > 0 else None


class TimedReader:
    """Reads images in a worker process, so that one that takes longer than `limit` seconds can be stopped."""

    def __init__(self, recipe_path: Path, model_path: Path, limit: float):
        self.recipe_path, self.model_path, self.limit = str(recipe_path), str(model_path), limit
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked thread pools
        self.process = None

    def start(self) -> None:
        self.connection, child = self.context.Pipe()
        self.process = self.context.Process(target=reader_worker, args=(child, self.recipe_path, self.model_path),
                                            daemon=True)
        self.process.start()
        if not self.connection.poll(300) or self.connection.recv() != "ready":
            raise RuntimeError("the reader process did not start within 300 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.process = None

    def read(self, image: np.ndarray) -> tuple[str, object, float, float | None, float | None]:
        """("read", digit, seconds, contrast, dot ratio), ("refused", message, seconds, contrast, dot ratio) or
        ("timed out", None, limit, None, None)."""
        if self.process is None:
            self.start()
        self.connection.send(image)
        if not self.connection.poll(self.limit):
            self.stop()
            return "timed out", None, self.limit, None, None
        outcome = self.connection.recv()
        if outcome[0] == "error":
            self.stop()
            raise RuntimeError(f"predict_digit failed on an image:\n{outcome[1]}")
        return outcome


# Report ---------------------------------------------------------------------------------------------------------


def tally(records: list[dict]) -> dict:
    """Images, correct answers, accuracy, refusals, time-outs and time of a group of read images."""
    seconds = [r["seconds"] for r in records if r["outcome"] != "timed out"]
    per_megapixel = [r["seconds"] / r["megapixels"] for r in records if r["outcome"] != "timed out"]
    correct = sum(r["outcome"] == "refused" if r["digit"] == BLANK
                  else r["outcome"] == "read" and r["answer"] == r["digit"] for r in records)
    contrasts = [r["contrast"] for r in records if r.get("contrast") is not None]
    ratios = [r["dot_ratio"] for r in records if r.get("dot_ratio") is not None]
    return {"images": len(records), "correct": correct, "accuracy": correct / len(records),
            "refused": sum(r["outcome"] == "refused" for r in records),
            "timed_out": sum(r["outcome"] == "timed out" for r in records),
            "seconds_per_image_median": statistics.median(seconds) if seconds else None,
            "seconds_per_image_mean": statistics.mean(seconds) if seconds else None,
            "seconds_per_megapixel_median": statistics.median(per_megapixel) if per_megapixel else None,
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
    refusals = {condition: dict(Counter(re.split(r"[:(]", r["answer"])[0].strip() for r in group
                                        if r["outcome"] == "refused"))
                for condition, group in by_condition.items()}
    return {"conditions": {c: tally(by_condition[c]) for c in CONDITIONS if c in by_condition},
            "fonts": {font: {"all": tally([r for group in groups.values() for r in group]),
                             **{c: tally(groups[c]) for c in CONDITIONS if c in groups}}
                      for font, groups in by_font.items()},
            "refusals": {c: kinds for c, kinds in refusals.items() if kinds},
            "timed_out": [{k: r[k] for k in ("condition", "font", "digit")} for r in records
                          if r["outcome"] == "timed out"]}


def condition_table(summary: dict) -> str:
    """The Markdown table of accuracy, refusals, seconds and contrast per condition (the notebook quotes it)."""
    def seconds(value):
        return "" if value is None else f"{value:.4f}" if value < 1 else f"{value:.1f}"

    def extreme(t, key, highest):
        value = t.get(f"{key}_max" if highest else f"{key}_min")
        return "" if value is None else "no unevenness" if value == float("inf") else f"{value:.1f}"

    lines = ["| condition | images | accuracy | refused | timed out | s / image (median) | s / megapixel (phone) "
             "| contrast (lowest; blank: highest) | dot ratio (lowest; dot: highest) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for condition, t in summary["conditions"].items():
        name = f"{condition} (refused = right)" if condition in NOT_DIGITS else condition
        lines.append(f"| {name} | {t['images']} | {t['accuracy']:.1%} | {t['refused']} | {t['timed_out']} | "
                     f"{seconds(t['seconds_per_image_median'])} | "
                     f"{seconds(t['seconds_per_megapixel_median']) if t['megapixels_median'] >= 1 else ''} | "
                     f"{extreme(t, 'contrast', condition == 'blank')} | "
                     f"{extreme(t, 'dot_ratio', condition == 'dot')} |")
    return "\n".join(lines)


def markdown_tables(summary: dict) -> str:
    """The summary as two Markdown tables: per condition, and per font (accuracy, refusals in brackets)."""
    lines = [condition_table(summary)]
    columns = [c for c in summary["conditions"] if c not in NOT_DIGITS
               and any(c in f for f in summary["fonts"].values())]
    lines += ["", "| font | " + " | ".join(columns) + " | all |", "|---|" + "---:|" * (len(columns) + 1)]
    for font, tallies in summary["fonts"].items():
        cells = []
        for column in [*columns, "all"]:
            t = tallies.get(column)
            cells.append("" if t is None else f"{t['accuracy']:.0%}" + (f" ({t['refused']} r)" if t["refused"] else "")
                         + (f" ({t['timed_out']} t)" if t["timed_out"] else ""))
        lines.append(f"| {font} | " + " | ".join(cells) + " |")
    lines.append("\n(n r): n images refused; (n t): n images past the time limit; both count as wrong.")
    return "\n".join(lines)


# Sample for the tests -------------------------------------------------------------------------------------------


def write_sample(folder: Path, fonts: list[Font], skipped: dict[str, str], seed: int, pad_class) -> list[Path]:
    """60 small PNGs for the tests: each digit in ink, photo and canvas form, each as a margin and a tight (or
    edge) pair from the same glyph, the fonts taken in turn; named <digit>_<condition>_<font>.png; and a README."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    written = []
    for digit in range(10):
        for family, (margin, tight) in enumerate((("ink-margin", "ink-tight"), ("photo-margin", "photo-tight"),
                                                  ("canvas-margin", "canvas-edge"))):
            font = fonts[(3 * digit + family) % len(fonts)]
            rng = case_rng(seed, 5, digit, family)
            angle = rng.uniform(-10, 10)
            if family < 2:
                coverage = with_margins(glyph_coverage(font.path, digit, int(rng.integers(28, 72)), angle), rng)
                image = black_ink(coverage) if family == 0 else on_paper(coverage, rng)
                pair = {margin: image, tight: image[tight_box(coverage)]}
            else:
                line = centre_line(font.path, digit, angle)
                pair = {margin: canvas_drawing(line, pad_class, False, rng),
                        tight: canvas_drawing(line, pad_class, True, rng)}
            for condition, image in pair.items():
                path = folder / f"{digit}_{condition}_{font.package}.png"
                Image.fromarray(image).save(path, optimize=True)
                written.append(path)
    (folder / "README.md").write_text(sample_readme(fonts, skipped, seed), encoding="utf-8")
    return written


def sample_readme(fonts: list[Font], skipped: dict[str, str], seed: int) -> str:
    rows = "\n".join(f"| {f.name} | [@fontsource/{f.package}](https://www.npmjs.com/package/@fontsource/{f.package}) "
                     f"| {f.version} | {f.license} |" for f in fonts)
    skipped_text = "".join(f"\nSkipped: {name} ({why}).\n" for name, why in skipped.items())
    return f"""# Handwriting sample for the tests

60 images of the digits 0-9 that this project did not draw by hand: glyphs of handwriting fonts, written by

    .venv/bin/python bench/handwriting_devset.py --write-sample tests/data/handwriting --seed {seed}

(`tests/test_handwriting_devset.py` reads them with a trained network). Each file is named
`<digit>_<condition>_<font>.png`, the digit being the truth. Conditions, in pairs made from the same glyph:

- `ink-margin`, `ink-tight`: black ink on white, with a margin / cropped to the ink (it touches all four edges);
- `photo-margin`, `photo-tight`: blue ink on light, unevenly lit, noisy paper (RGB), with a margin / cropped tight;
- `canvas-margin`, `canvas-edge`: 280 x 280 white-on-black drawings made with the notebook's `DrawingPad` and its
  22-pixel pen along the glyph's centre line: about 150 pixels tall with a margin / running into the top and
  bottom of the canvas.

The fonts, from npm's Fontsource packages (the latin, 400-weight `.woff` files; licence as in each package's
`package.json` and `LICENSE`):

| font | package | version | licence |
|---|---|---|---|
{rows}
{skipped_text}
The fonts themselves are not included here, only pictures drawn with them: both the SIL Open Font License 1.1
and the Apache License 2.0 allow using the fonts to make documents and images, which they do not restrict.
The images are part of this repository, under its licence (see `LICENSE` at the top).
"""


# Main -----------------------------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> dict | None:
    if not args.write_sample and not args.model.is_file():
        sys.exit(f"{args.model} is missing: run `make run` first (it trains the network and saves it there), "
                 "or pass --model PATH")
    # drawings are made with the project's DrawingPad, whatever --recipe reads them
    fonts, skipped = fetch_fonts(args.fonts_dir)
    if not fonts:
        sys.exit("no font could be fetched: is the npm registry reachable?")
    if args.write_sample:
        written = write_sample(args.write_sample, fonts, skipped, args.seed, project.DrawingPad)
        print(f"wrote {len(written)} images and README.md to {args.write_sample}")
        return None
    conditions = set(args.conditions)
    reader = TimedReader(args.recipe, args.model, args.time_limit)
    records, started = [], time.perf_counter()
    try:
        cases = itertools.chain(mnist_cases(conditions, args.seed, args.quick, args.data_root),
                                dot_cases(conditions, args.seed, args.quick, project.DrawingPad),
                                font_cases(fonts, conditions, args.seed, args.quick, project.DrawingPad))
        for count, case in enumerate(cases, start=1):  # made one at a time: a phone photo holds some 36 MB
            outcome, answer, seconds, contrast, ratio = reader.read(case.image)
            records.append({"condition": case.condition, "font": case.font, "digit": case.digit, "outcome": outcome,
                            "answer": answer, "seconds": seconds, "contrast": contrast, "dot_ratio": ratio,
                            "megapixels": case.image.shape[0] * case.image.shape[1] / 1e6})
            if case.condition == "phone" or count % 1000 == 0:
                print(f"{count} images read ({time.perf_counter() - started:.0f} s); last: {case.condition}, "
                      f"{case.font}, digit {case.digit}: {outcome} {answer if outcome != 'refused' else ''} "
                      f"in {seconds:.2f} s", flush=True)
    finally:
        reader.stop()
    summary = summarise(records)
    report = {"recipe": str(args.recipe), "model": str(args.model), "seed": args.seed, "quick": args.quick,
              "time_limit_s": args.time_limit, "conditions_run": [c for c in CONDITIONS if c in conditions],
              "font_files": [{"name": f.name, "package": f"@fontsource/{f.package}", "version": f.version,
                         "license": f.license, "file": f.path.name, "sha256": f.sha256} for f in fonts],
              "skipped_fonts": skipped, "seconds_total": time.perf_counter() - started, **summary}
    print(markdown_tables(summary))
    if args.output:
        with atomic_write(args.output) as temporary:  # never a half-written report
            temporary.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"report written to {args.output}")
    return report


def positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text}")
    return value


def report_file(text: str) -> Path:
    """A `type=` for --output: a file in a folder that can be written (checked now, not after the run)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give the report's file name, such as "
                                         f"{path / 'devset.json'}")
    cli.writable_folder(str(path.parent))
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "outputs" / "digit_cnn.pt",
                        help="the saved network to read with (default outputs/digit_cnn.pt, saved by `make run`)")
    parser.add_argument("--recipe", type=existing_file, default=RECIPE,
                        help="the module exported from the notebook whose treatment reads the images (default the "
                             "project's handwritten_digits/recipe.py)")
    parser.add_argument("--output", type=report_file, help="write the report as JSON here")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), metavar="CONDITION",
                        help=f"the conditions to run (default all: {', '.join(CONDITIONS)})")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 sizes instead of 5, 1 canvas drawing per digit and font instead of 2, "
                             "100 MNIST digits instead of 500, 2 phone photos instead of 14")
    parser.add_argument("--seed", type=cli.whole_number(0), default=0, help="makes the whole set (default 0)")
    parser.add_argument("--time-limit", type=positive_seconds, default=30.0,
                        help="seconds one image may take before it counts as wrong (default 30)")
    parser.add_argument("--write-sample", type=Path, metavar="DIR",
                        help="write the tests' small sample (60 PNGs and a README) to DIR, and stop")
    parser.add_argument("--fonts-dir", type=Path, default=ROOT / "data" / "fonts", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", default=str(ROOT / "data"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
