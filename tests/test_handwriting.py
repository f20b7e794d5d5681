"""Tests of the notebook's "own handwriting" preprocessing (an image of a digit -> an MNIST-style field) and its pad."""

import base64
import io
import re
import time
from contextlib import nullcontext
from unittest.mock import Mock, call

import matplotlib
import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image, ImageDraw, ImageFilter
from torchvision import datasets

from handwritten_digits import notebook
from handwritten_digits.images import open_image
from scripts import make_examples


@pytest.fixture(scope="module")
def mnist_digits(mnist_root):
    """The first 100 MNIST test digits (uint8, 28 x 28, white on black) and their labels."""
    test = datasets.MNIST(str(mnist_root), train=False)
    return test.data[:100].numpy(), test.targets[:100].numpy()


def on_large_canvas(digit: np.ndarray, scale: float, top: int, left: int) -> np.ndarray:
    """The digit enlarged, inverted (dark ink on white) and placed off-centre on a large canvas."""
    big = np.asarray(Image.fromarray(digit).resize((round(28 * scale),) * 2, Image.BICUBIC))
    canvas = np.full((300, 300), 255, dtype=np.uint8)
    canvas[top:top + big.shape[0], left:left + big.shape[1]] = 255 - big
    return canvas


def ink_box(field: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(field > 0.3)
    return np.array([rows.min(), rows.max(), columns.min(), columns.max()])


def drawn(strokes: list[list[tuple[int, int]]], pad=None) -> np.ndarray:
    """What the notebook's 280 x 280 drawing pad holds after these strokes (each a list of points)."""
    pad = pad or notebook.DrawingPad(lambda image: None)
    for points in strokes:
        pad.mouse_down(*points[0])
        for point in points[1:]:
            pad.mouse_move(*point)
        pad.mouse_up(*points[-1])
    return np.asarray(pad.image)


@pytest.mark.parametrize(("scale", "top", "left"), [(1.5, 0, 0), (2.1, 5, 3), (3.3, 17, 101), (5.0, 50, 90)])
def test_a_shifted_scaled_inverted_digit_comes_back_boxed_and_centred_as_mnist_did(mnist_digits, scale, top, left):
    fields = np.stack([notebook.mnist_style(on_large_canvas(digit, scale, top, left)) for digit in mnist_digits[0]])
    assert (fields.shape, fields.dtype) == ((100, 28, 28), np.float32)
    for field, digit in zip(fields, mnist_digits[0], strict=True):  # the longer side scaled to 20 pixels, as MNIST's
        assert np.abs(ink_box(field) - ink_box(digit / 255)).max() <= 1  # every edge within one pixel
    differences = np.abs(fields - mnist_digits[0] / 255).mean(axis=(1, 2))
    assert np.mean(differences) < 0.045
    assert max(differences) < 0.1
    centres = [(fields * index).sum(axis=(1, 2)) / fields.sum(axis=(1, 2)) for index in np.indices((28, 28))]
    # rows, then columns: MNIST's centre of mass is pixel (14, 14); nearest_pixel takes within a thousandth of a half
    assert np.abs(np.array(centres) - 14).max() <= 0.5 + 1e-3


def test_digits_disguised_as_photos_are_read_and_blank_sheets_refused(mnist_digits, trained_digit_reader):
    """The notebook's dress-up as a photo of ink on paper, undone by mnist_style."""
    rng = np.random.default_rng(4)
    digits = [trained_digit_reader(notebook.disguise_as_photo(digit, rng))[0] for digit in mnist_digits[0]]
    assert np.mean(np.array(digits) == mnist_digits[1]) >= 0.95
    for _ in range(100):
        with pytest.raises(ValueError, match="no digit found"):
            notebook.mnist_style(notebook.disguise_as_photo(np.zeros((28, 28), dtype=np.uint8), rng))


@pytest.mark.parametrize(("bad", "error", "message"), [
    (np.full((50, 50, 3), 17, dtype=np.uint8), ValueError, "no ink found"),
    (np.pad(np.full((1, 1), 255, dtype=np.uint8), 30), ValueError, "no ink found: only isolated specks"),
    (np.zeros((28, 28, 2), dtype=np.uint8), ValueError, r"expected an image of shape \(H, W\)"),
    (np.zeros((28, 28), dtype=np.int64), ValueError, "expected pixels of type uint8, uint16 or bool, or floats"),
    (np.pad(np.full((notebook.MIN_DIGIT - 1, 2), 255, dtype=np.uint8), 20), ValueError, "too small to read"),
    (np.pad(np.full((notebook.MIN_DIGIT, 2), 255, dtype=np.uint8), 20), None, None),
    (np.full((28, 28), np.nan), ValueError, "expected pixels of .* floats from 0 to 1"),
    ([[0, 1], [1, 0]], TypeError, "expected a PIL image, a NumPy array or a tensor, not list"),
    (ROOT / "assets" / "example_drawing_7.png", TypeError, r"not PosixPath .*Image\.open"),
    *[(drawn([[(140, 140), (140 + drag, 140)]]), ValueError, "^a dot, not a digit: .* large$") for drag in (0, 6, 10)],
    (drawn([[(140, 105), (140, 175)]]), None, None),  # but a 1 a quarter of the canvas tall is read
])
def test_what_is_not_an_image_of_a_readable_digit_is_refused_saying_why(bad, error, message):
    with pytest.raises(error, match=message) if error else nullcontext():
        assert notebook.mnist_style(bad).shape == (28, 28)


@pytest.mark.parametrize(("digit", "to_the_edges", "inset"), [
    (0, [[(140, 0), (60, 70), (60, 210), (140, 279), (220, 210), (220, 70), (140, 0)]],  # a 0, top to bottom
     [[(140, 40), (85, 90), (85, 190), (140, 240), (195, 190), (195, 90), (140, 40)]]),
    (7, [[(20, 0), (260, 0), (120, 279)]], [[(60, 50), (220, 50), (130, 240)]]),  # a 7 whose bar is the top edge
])
def test_canvas_drawings_touching_the_edges_read_as_with_a_margin(trained_digit_reader, digit, to_the_edges, inset):
    assert trained_digit_reader(drawn(inset))[0] == trained_digit_reader(drawn(to_the_edges))[0] == digit


def test_fine_pen_strokes_are_thickened_towards_mnist_width_and_ordinary_ones_are_not(mnist_digits):
    """Digits enlarged six times and drawn with a thin pen come back closer to the original when thickened."""
    thickened = closer = unchanged = 0
    for digit in mnist_digits[0]:
        fine = np.asarray(Image.fromarray(digit).resize((168, 168), Image.BICUBIC).filter(ImageFilter.MinFilter(9)))
        plain, thick = notebook.mnist_style(fine, thicken=False), notebook.mnist_style(fine)
        if not np.array_equal(plain, thick):
            thickened += 1
            assert thick.sum() > plain.sum()  # more ink: wider strokes
            closer += np.abs(thick - digit / 255).mean() < np.abs(plain - digit / 255).mean()
        ordinary = on_large_canvas(digit, 3.0, 10, 10)
        unchanged += np.array_equal(notebook.mnist_style(ordinary, thicken=False), notebook.mnist_style(ordinary))
    assert thickened >= 60
    assert closer >= 0.95 * thickened
    assert unchanged >= 95


def test_drawing_pad_hands_each_stroke_to_the_callback_and_mirrors_it_on_the_canvas():
    strokes, canvas = [], Mock()  # the canvas as ipycanvas's, recording what it is told to draw
    pad = notebook.DrawingPad(lambda image: strokes.append(np.asarray(image).copy()), 280, 20, canvas)
    pad.mouse_move(10, 10)  # moving or letting go without pressing draws nothing
    pad.mouse_up(10, 10)
    drawn([[(140, 40), (140, 150), (140, 250)], [(60, 60)]], pad)  # a vertical stroke, a 1, then a dot: a stroke too
    assert len(strokes) == 2
    assert (ink_box(strokes[0]) == (30, 260, 130, 150)).all()  # round ends, 20 px wide
    canvas.stroke_line.assert_any_call(140, 40, 140, 150)
    pad.clear()
    assert not np.asarray(pad.image).any()
    assert canvas.fill_rect.call_args_list == [call(0, 0, 280, 280)] * 2  # black at the start and when cleared


def test_predict_digit_gives_the_network_the_normalised_field_and_recorded_blocks_hold_each_blocks_output_in_the_with(
        committed_network):
    (model, mean, std), image = committed_network, drawn([[(140, 40), (140, 240)]])
    with notebook.recorded_blocks(model) as maps:
        digit, probabilities = notebook.predict_digit(model, image, mean, std, torch.device("cpu"))
    field = ((torch.from_numpy(notebook.mnist_style(image)) - mean) / std)[None, None]
    with torch.inference_mode():
        logits, x = model(field)[0], field
        expected = [x := block(x) for block in (model.conv1, model.conv2, model.conv3)]  # each block on the last output
    assert digit == int(logits.argmax())
    assert np.allclose(probabilities, torch.softmax(logits, 0).numpy())
    assert list(maps) == ["conv1", "conv2", "conv3"]
    assert all(torch.equal(maps[name], output) for name, output in zip(maps, expected, strict=True))  # the very field
    notebook.predict_probabilities(model, torch.zeros(1, 1, 28, 28))  # after the with: nothing recorded
    assert all(torch.equal(maps[name], output) for name, output in zip(maps, expected, strict=True))


def test_feature_maps_html_draws_the_field_and_every_map_on_its_blocks_scale_titled_with_its_largest_value():
    field = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    maps = {name: torch.rand(1, channels, side, side) for name, channels, side in
            (("conv1", 16, 14), ("conv2", 32, 7), ("conv3", 64, 3))}
    maps["conv2"][0, 5] = 0  # a map with nothing in it: the bottom of the scale
    maps["conv2"][0, 9, 2, 4] = 7  # the block's largest value: the top of its scale, whatever the other blocks hold
    pictures = re.findall(r"<img title='([^']*)' style='[^']*' src='data:image/png;base64,([^']*)'>",
                          notebook.feature_maps_html(field, maps))
    assert len(pictures) == 1 + 16 + 32 + 64
    png = [np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))) for _, data in pictures]
    assert np.array_equal(png[0], np.round(255 * field).astype(np.uint8))
    viridis = matplotlib.colormaps["viridis"]([0.0, 1.0], bytes=True)[:, :3]
    assert (png[1 + 16 + 5] == viridis[0]).all()
    assert (png[1 + 16 + 9][2, 4] == viridis[1]).all()
    assert (png[1 + 16 + 9] != viridis[1]).any(axis=-1).sum() == 48
    assert pictures[1 + 16 + 9][0] == "conv2, channel 9: largest 7.00"
    assert pictures[1 + 16 + 32 + 63][0] == f"conv3, channel 63: largest {maps['conv3'][0, 63].max():.2f}"


def test_a_twelve_megapixel_photo_is_read_in_seconds_and_its_reduced_jpeg_decode_reads_as_the_full_one(tmp_path):
    """A blue ballpoint 7 on unevenly lit paper; open_image decodes the JPEG at a reduced scale (draft mode)."""
    photo = Image.new("RGB", (4000, 3000), (235, 230, 220))
    ImageDraw.Draw(photo).line([(1600, 900), (2400, 900), (1800, 2250)], fill=(20, 30, 140), width=8)
    light = np.linspace(-15, 15, 4000)[None, :, None] + np.random.default_rng(0).normal(0, 4, (3000, 4000, 1))
    Image.fromarray(np.clip(np.asarray(photo) + light, 0, 255).astype(np.uint8)).save(tmp_path / "7.jpg", quality=90)
    start = time.perf_counter()
    from_file = notebook.mnist_style(open_image(tmp_path / "7.jpg"))
    assert time.perf_counter() - start < 15  # only catches a return to minutes
    with Image.open(tmp_path / "7.jpg") as full:
        assert np.abs(from_file - notebook.mnist_style(np.asarray(full))).mean() < 0.02


def test_committed_example_images_are_what_the_script_makes_and_read_as_their_digit(tmp_path, trained_digit_reader):
    make_examples.main(tmp_path)
    committed = sorted((ROOT / "assets").glob("example_*.png"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [path.name for path in committed]
    for path in committed:
        with Image.open(path) as image, Image.open(tmp_path / path.name) as made:
            assert np.array_equal(np.asarray(made), np.asarray(image)), path.name
        assert trained_digit_reader(open_image(path))[0] == int(path.stem[-1]), path.name
