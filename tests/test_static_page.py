"""The static page opened from disk in headless Chromium: its network and mnist_style equal PyTorch's, within 1e-5, and
the feature maps it draws equal the network's blocks' outputs, within 1e-4."""

import base64
import io
import re

import matplotlib
import numpy as np
import pytest
import torch
from conftest import stroke
from PIL import Image, ImageDraw

from handwritten_digits import notebook
from scripts.notebook_html import main as write_page

pytestmark = pytest.mark.slow  # a browser: make test-slow
CPU, TOLERANCE = torch.device("cpu"), 1e-5  # TOLERANCE: the most the page's numbers may differ from PyTorch's
SHAPES = {  # digits as strokes of points in a unit square, drawn at each of PLACES (x, y, width, height of the pad)
    "1": [[(0.55, 0), (0.45, 1)]], "2": [[(0.1, 0.2), (0.5, 0), (0.9, 0.25), (0.1, 1), (0.95, 1)]],
    "3": [[(0.1, 0.05), (0.9, 0.15), (0.4, 0.5), (0.9, 0.8), (0.1, 1)]],
    "0": [[(0.5, 0), (0.1, 0.25), (0.1, 0.75), (0.5, 1), (0.9, 0.75), (0.9, 0.25), (0.5, 0)]],
    "4": [[(0.6, 0), (0.05, 0.65), (1, 0.65)], [(0.7, 0.3), (0.7, 1)]], "7": [[(0, 0), (1, 0), (0.45, 1)]]}
PLACES = [(0.01, 0.01, 0.98, 0.98), (0.01, 0.01, 0.45, 0.6), (0.54, 0.39, 0.45, 0.6), (0.6, 0.01, 0.39, 0.98)]
DRAWINGS = [[[(0.25, 0.18), (0.75, 0.18), (0.62, 0.45), (0.45, 0.88)]], [[(0.3, 0.15), (0.3, 0.85)]],  # the strokes
            [[(0.5, 0.12), (0.42, 0.88)]],  # of the other browser tests, then every shape at every place: the edges
            *([[(x + width * u, y + height * v) for u, v in points] for points in strokes]
              for strokes in SHAPES.values() for x, y, width, height in PLACES)]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page that `make html` writes."""
    write_page(["--output", str(page := tmp_path_factory.mktemp("static_page") / "page.html")])
    return page


def opened(browser, page, **options):
    """The page opened from disk in a touch-capable tab that records JavaScript errors and refuses every fetch."""
    tab = browser.new_page(**{"viewport": {"width": 1100, "height": 900}, "has_touch": True, **options})
    tab.fetched, tab.errors, tab.pad = [], [], tab.locator(".live-digit-pad")
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    tab.route(lambda url: not url.startswith("file:"), lambda route: tab.fetched.append(route.request.url)
              or route.abort())
    tab.goto(page.as_uri(), wait_until="load")
    return tab  # closed with the browser


@pytest.fixture(scope="module")
def tab(browser, page):
    return opened(browser, page)


def canvas_pixels(tab, canvas: str = ".live-digit-pad") -> np.ndarray:
    """A canvas's RGBA pixels, read back as a PNG (lossless: the canvases are opaque)."""
    url = tab.evaluate("canvas => document.querySelector(canvas).toDataURL('image/png')", canvas)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def assert_reads_as_predict_digit(tab, committed_network) -> dict:
    """The page's answer for its canvas is predict_digit's on its pixels, within TOLERANCE; returns that answer."""
    tab.locator(".digit-prediction").wait_for(state="visible", timeout=10_000)
    last = tab.evaluate("""() => { const last = LiveCanvas.state.last; return {digit: last.digit,
        milliseconds: last.milliseconds, probabilities: Array.from(last.probabilities),
        field: Array.from(last.field.data), maps: last.maps.map(block => Array.from(block.data))}; }""")
    (network, mean, std), pixels = committed_network, canvas_pixels(tab)
    digit, probabilities = notebook.predict_digit(network, pixels, mean, std, CPU)
    assert last["digit"] == digit
    assert tab.locator(".digit-prediction").inner_text().startswith(f"prediction: {digit} ")
    assert np.abs(np.array(last["field"]).reshape(28, 28) - notebook.mnist_style(pixels)).max() < TOLERANCE
    assert np.abs(np.array(last["probabilities"]) - probabilities).max() < TOLERANCE
    return last


def test_feature_maps_drawn_after_each_drawing_are_the_blocks_outputs_on_the_field_it_read(browser, page,
                                                                                           committed_network):
    (network, mean, std), milliseconds, tab = committed_network, [], opened(browser, page)  # the first drawing: the
    # first after the page has loaded
    for strokes in DRAWINGS:
        tab.get_by_role("button", name="Clear").click()
        for points in strokes:
            stroke(tab, tab.pad, points)
        last = assert_reads_as_predict_digit(tab, committed_network)
        field = ((torch.tensor(last["field"]).reshape(1, 1, 28, 28) - mean) / std).float()
        with notebook.recorded_blocks(network) as maps:
            notebook.predict_probabilities(network, field)
        for on_page, output in zip(last["maps"], maps.values(), strict=True):
            assert np.abs(np.array(on_page) - output.flatten().numpy()).max() < 1e-4
        drawn = tab.evaluate("""top => Array.from(document.querySelectorAll('.live-digit-grid'), grid => {
            const canvases = Array.from(grid.children), titles = canvases.map(canvas => canvas.title);
            const brightest = canvases.map(canvas => { const {width, height} = canvas, pixels = canvas.getContext('2d')
                .getImageData(0, 0, width, height).data;  // a pixel of viridis's top colour
                return pixels.some((v, i) => i % 4 === 0 && [v, pixels[i + 1], pixels[i + 2]].join() === top); });
            return {titles, brightest}; })""", ",".join(map(str, matplotlib.colormaps["viridis"](255, bytes=True)[:3])))
        for (name, output), shown in zip(maps.items(), drawn, strict=True):
            largest = output[0].flatten(1).max(dim=1).values
            assert shown["titles"] == [f"{name}, channel {c}: largest {v:.2f}" for c, v in enumerate(largest)]
            assert shown["brightest"][int(largest.argmax())]  # the block's largest value is the top of its scale
        milliseconds.append(last["milliseconds"])
    figures = [tab.locator(".live-digit-maps figure").nth(index).bounding_box() for index in range(4)]
    assert figures[0]["y"] == figures[1]["y"] < figures[2]["y"] == figures[3]["y"]  # two a row, as in the notebook
    assert (tab.fetched, tab.errors) == ([], [])
    assert all(tab.eval_on_selector_all("img", "all => all.map(image => image.complete && image.naturalWidth > 0)"))
    print(f"\nupdate after a stroke, {len(milliseconds)} drawings: median {np.median(milliseconds):.1f} ms, first "
          f"{milliseconds[0]:.1f} ms, slowest {max(milliseconds):.1f} ms (docs/static-page.md)")


def test_page_gives_predict_probabilities_on_mnist_test_images(tab, committed_network, mnist_root):
    from torchvision import datasets

    images = datasets.MNIST(str(mnist_root), train=False).data[::125]  # 80 images, every digit
    on_page = np.array(tab.evaluate(
        "fields => fields.map(field => Array.from(DigitCNN.forward(Float32Array.from(field)).probabilities))",
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
    assert assert_reads_as_predict_digit(tab, committed_network)["digit"] == 7
    tab.get_by_role("button", name="Clear").click()
    tab.get_by_text("draw a digit", exact=True).wait_for(state="visible", timeout=10_000)
    assert (tab.locator(".digit-prediction").count(), tab.evaluate("() => LiveCanvas.state.last")) == (0, None)
    assert not any(tab.locator(".live-digit-grid").evaluate_all("all => all.map(grid => grid.checkVisibility())"))
    assert canvas_pixels(tab)[..., :3].max() == canvas_pixels(tab, ".live-digit-field")[..., :3].max() == 0
    tab.evaluate("() => document.querySelector('.live-digit-pad').style.width = '180px'")  # as on a phone
    stroke(tab, tab.pad, [(0.3, 0.15), (0.3, 0.85)], touch=True)
    assert_reads_as_predict_digit(tab, committed_network)
    ink = canvas_pixels(tab)[..., 0] > 127
    columns, rows = np.nonzero(ink.any(axis=0))[0], np.nonzero(ink.any(axis=1))[0]
    assert abs((columns.min() + columns.max()) / 2 - 0.3 * ink.shape[1]) < 3  # under the finger: canvas pixels, not CSS
    assert abs(rows.min() - (0.15 * ink.shape[0] - 11)) < 3  # the stroke's round ends: 11 pixels beyond
    assert abs(rows.max() - (0.85 * ink.shape[0] + 11)) < 3
    assert (tab.fetched, tab.errors) == ([], [])


def test_on_a_dark_phone_the_canvas_fits_names_a_tapped_map_refuses_a_dot_and_clears_from_the_keyboard(browser, page):
    phone = opened(browser, page, viewport={"width": 390, "height": 844}, device_scale_factor=3, color_scheme="dark",
                   is_mobile=True)
    stroke(phone, phone.pad, [(0.5, 0.1), (0.45, 0.9)], touch=True)
    assert phone.locator(".digit-prediction").inner_text().startswith("prediction: 1")
    assert max(phone.evaluate("() => document.documentElement.scrollWidth"),  # nothing to scroll sideways
               phone.locator("#live-digit").bounding_box()["width"]) <= 390
    info, grids = phone.locator(".live-digit-map-info"), phone.locator(".live-digit-grid")
    phone.locator(".live-digit-grid canvas").nth(16 + 3).tap()
    assert info.inner_text().startswith("conv2, channel 3: largest ")
    colours = phone.evaluate("""() => { const info = document.querySelector('.live-digit-map-info');
        let under = info;  // the first element behind the text that paints a background
        while (getComputedStyle(under).backgroundColor === 'rgba(0, 0, 0, 0)') under = under.parentElement;
        return [getComputedStyle(info).color, getComputedStyle(under).backgroundColor]; }""")
    # WCAG's relative luminance of the text and of what is behind it
    luminance = [np.dot([0.2126, 0.7152, 0.0722], np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4))
                 for c in (np.array(re.findall(r"\d+", colour)[:3], float) / 255 for colour in colours)]
    assert (max(luminance) + 0.05) / (min(luminance) + 0.05) >= 4.5  # readable where the system is in dark mode
    stroke(phone, phone.pad, [(0.3, 0.5), (0.7, 0.5)], touch=True)  # another stroke: new maps, the old one's name goes
    assert info.inner_text() == ""
    assert grids.first.is_visible()
    phone.get_by_role("button", name="Clear").click()
    stroke(phone, phone.pad, [(0.5, 0.5)], touch=True)  # a tap: a dot, refused, and no maps
    assert phone.locator(".digit-error").inner_text().startswith("a dot, not a digit")
    assert not any(grids.evaluate_all("all => all.map(grid => grid.checkVisibility())"))
    stroke(phone, phone.pad, [(0.5, 0.1), (0.45, 0.9)], touch=True)
    phone.get_by_role("button", name="Clear").focus()
    phone.keyboard.press("Enter")
    phone.get_by_text("draw a digit", exact=True).wait_for(state="visible", timeout=10_000)
    assert (phone.fetched, phone.errors) == ([], [])
