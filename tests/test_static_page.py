"""The static page opened from disk in headless Chromium: its network and mnist_style equal PyTorch's, within 1e-5."""

import base64
import io

import numpy as np
import pytest
import torch
from conftest import stroke
from PIL import Image, ImageDraw

from handwritten_digits import notebook
from scripts.notebook_html import main as write_page

pytestmark = pytest.mark.slow  # a browser: make test-slow
CPU, TOLERANCE = torch.device("cpu"), 1e-5  # TOLERANCE: the most the page's numbers may differ from PyTorch's


@pytest.fixture(scope="module")
def tab(browser, tmp_path_factory):
    """The page opened from disk in a touch-capable tab that records JavaScript errors and refuses every fetch."""
    write_page(["--output", str(page := tmp_path_factory.mktemp("static_page") / "page.html")])
    tab = browser.new_page(viewport={"width": 1100, "height": 900}, has_touch=True)
    tab.fetched, tab.errors, tab.pad = [], [], tab.locator(".live-digit-pad")
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    tab.route(lambda url: not url.startswith("file:"), lambda route: tab.fetched.append(route.request.url)
              or route.abort())
    tab.goto(page.as_uri(), wait_until="load")
    return tab  # closed with the browser


def canvas_pixels(tab, canvas: str = ".live-digit-pad") -> np.ndarray:
    """A canvas's RGBA pixels, read back as a PNG (lossless: the canvases are opaque)."""
    url = tab.evaluate("canvas => document.querySelector(canvas).toDataURL('image/png')", canvas)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def assert_reads_as_predict_digit(tab, committed_network) -> int:
    """The page's answer for its canvas is predict_digit's on its pixels, within TOLERANCE; returns the digit."""
    tab.locator(".digit-prediction").wait_for(state="visible", timeout=10_000)
    last = tab.evaluate("""() => { const last = LiveCanvas.state.last; return {digit: last.digit,
        probabilities: Array.from(last.probabilities), field: Array.from(last.field.data)}; }""")
    (network, mean, std), pixels = committed_network, canvas_pixels(tab)
    digit, probabilities = notebook.predict_digit(network, pixels, mean, std, CPU)
    assert last["digit"] == digit
    assert tab.locator(".digit-prediction").inner_text().startswith(f"prediction: {digit} ")
    assert np.abs(np.array(last["field"]).reshape(28, 28) - notebook.mnist_style(pixels)).max() < TOLERANCE
    assert np.abs(np.array(last["probabilities"]) - probabilities).max() < TOLERANCE
    return digit


def test_page_gives_predict_probabilities_on_mnist_test_images(tab, committed_network, mnist_root):
    from torchvision import datasets

    images = datasets.MNIST(str(mnist_root), train=False).data[::125]  # 80 images, every digit
    on_page = np.array(tab.evaluate(
        "fields => fields.map(field => Array.from(DigitCNN.predict_probabilities(Float32Array.from(field))))",
        (images.reshape(len(images), -1).numpy() / np.float32(255)).tolist()))
    network, mean, std = committed_network
    expected = notebook.predict_probabilities(network, notebook.to_model_input(images, mean, std, CPU)).numpy()
    assert np.abs(on_page - expected).max() < TOLERANCE


def test_page_makes_the_field_mnist_style_makes_and_refuses_what_it_refuses(tab):
    rng, images = np.random.default_rng(0), []
    for index in range(30):  # strokes of many pens, sizes and places, antialiased; every third dark on white paper
        image, side = Image.new("L", (1120, 1120), 255 * (index % 3 == 2)), rng.uniform(0.1, 0.9) * 1120
        corner = rng.uniform(0, 1120 - side, size=2)
        ImageDraw.Draw(image).line([tuple(corner + rng.uniform(0, side, size=2)) for _ in range(rng.integers(2, 7))],
                                   fill=255 * (index % 3 != 2), width=4 * int(rng.choice([1, 3, 9, 22])), joint="curve")
        images.append(np.asarray(image.resize((280, 280), Image.BOX)))
    images += [np.zeros((280, 280), np.uint8) for _ in range(4)]
    images[-4][100:103, 90:94] = 255  # a tap of a fine pen: too small to read
    images[-3][100:122, 90:112] = 255  # a tap of DrawingPad's pen: a dot, not a digit
    images[-2][:] = 255  # all paper, like images[-1]: no ink found
    images, expected = [np.dstack([grey] * 3 + [np.full_like(grey, 255)]) for grey in images], []
    for image in images:
        try:
            expected.append(notebook.mnist_style(image))
        except ValueError as error:
            expected.append(str(error))
    on_page = tab.evaluate("""images => images.map(image => {
        const bytes = Uint8Array.from(atob(image.bytes), character => character.charCodeAt(0));
        try { return Array.from(MnistStyle.mnist_style({...image, bytes: bytes}).data); }
        catch (error) { return error.message; }
    })""", [{"height": 280, "width": 280, "bytes": base64.b64encode(image.tobytes()).decode()} for image in images])
    for have, want in zip(on_page, expected, strict=True):  # the same refusal, or the same field within TOLERANCE
        assert have == want if isinstance(want, str) else np.abs(np.reshape(have, (28, 28)) - want).max() < TOLERANCE
    refused = [isinstance(want, str) for want in expected]
    assert refused[-4:] == [True] * 4  # the four above
    assert sum(refused) <= 9  # and few of the strokes


def test_mouse_and_finger_strokes_read_as_predict_digit_and_clear_empties_the_canvas(tab, committed_network):
    stroke(tab, tab.pad, [(0.25, 0.18), (0.75, 0.18), (0.62, 0.45), (0.45, 0.88)])
    assert assert_reads_as_predict_digit(tab, committed_network) == 7
    tab.get_by_role("button", name="Clear").click()
    tab.get_by_text("draw a digit", exact=True).wait_for(state="visible", timeout=10_000)
    assert (tab.locator(".digit-prediction").count(), tab.evaluate("() => LiveCanvas.state.last")) == (0, None)
    assert canvas_pixels(tab)[..., :3].max() == canvas_pixels(tab, ".live-digit-field")[..., :3].max() == 0
    tab.evaluate("() => document.querySelector('.live-digit-pad').style.width = '180px'")  # as on a phone
    stroke(tab, tab.pad, [(0.3, 0.15), (0.3, 0.85)], touch=True)
    assert_reads_as_predict_digit(tab, committed_network)
    ink = canvas_pixels(tab)[..., 0] > 127
    columns, rows = np.nonzero(ink.any(axis=0))[0], np.nonzero(ink.any(axis=1))[0]
    assert abs((columns.min() + columns.max()) / 2 - 0.3 * ink.shape[1]) < 3  # under the finger: canvas pixels, not CSS
    assert abs(rows.min() - (0.15 * ink.shape[0] - 11)) < 3  # the stroke's round ends: 11 pixels beyond
    assert abs(rows.max() - (0.85 * ink.shape[0] + 11)) < 3


def test_page_fetches_nothing_raises_no_error_and_shows_every_figure(tab):
    assert (tab.fetched, tab.errors) == ([], [])
    assert all(tab.eval_on_selector_all("img", "all => all.map(image => image.complete && image.naturalWidth > 0)"))
