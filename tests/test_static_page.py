"""The static page's live canvas (make html) in headless Chromium, opened from file:// and over http on 127.0.0.1:
the JavaScript network and mnist_style are held to PyTorch's and the notebook's, within 1e-5, on MNIST test images and
on drawings. PyTorch runs the committed weights file (conftest's committed_network), so nothing is trained here."""

import base64
import functools
import http.server
import itertools
import threading

import numpy as np
import pytest
import test_browser
import torch
from PIL import Image, ImageDraw

from handwritten_digits import notebook
from scripts.notebook_html import main as write_page

pytestmark = pytest.mark.slow  # a browser: make test-slow
browser = test_browser.browser  # the one browser fixture of the browser tests
CPU = torch.device("cpu")
TOLERANCE = 1e-5  # the largest difference allowed between the page's numbers and PyTorch's


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("static_page")
    write_page(["--output", str(folder / "page.html")])
    return folder


def open_page(browser, url: str, local: str):
    """The page in a touch-capable tab; every request for something outside `local` is recorded and refused, and
    so is every JavaScript error."""
    tab = browser.new_page(viewport={"width": 1100, "height": 900}, has_touch=True)
    tab.fetched, tab.errors = [], []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)

    def only_local(route) -> None:
        if route.request.url.startswith(local):
            route.continue_()
        else:
            tab.fetched.append(route.request.url)
            route.abort()

    tab.route("**/*", only_local)
    tab.goto(url, wait_until="load")
    tab.locator(".live-digit-pad").scroll_into_view_if_needed()
    return tab


@pytest.fixture(scope="module")
def file_page(browser, page_folder):
    tab = open_page(browser, (page_folder / "page.html").as_uri(), "file:")
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def http_page(browser, page_folder):
    handler = functools.partial(QuietHandler, directory=str(page_folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}/"
    tab = open_page(browser, address + "page.html", address)
    yield tab
    tab.close()
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines in the test output
        pass


def drawings(count: int, seed: int = 0) -> list[np.ndarray]:
    """Digit-like strokes as a canvas holds them (RGBA, opaque), as DrawingPads of other line widths would draw them:
    white on black, antialiased, of many sizes and places; every third one with its border painted over, so that
    the paper is white and the ink dark."""
    rng, images = np.random.default_rng(seed), []
    for index in range(count):
        side, pen = rng.uniform(0.1, 0.9) * 280, int(rng.choice([1, 2, 3, 5, 9, 16, 22]))
        top, left = rng.uniform(0, 280 - side, size=2)
        points = [(4 * (left + rng.uniform(0, side * 0.7)), 4 * (top + rng.uniform(0, side)))
                  for _ in range(rng.integers(2, 7))]
        image = Image.new("L", (1120, 1120), 255 if index % 3 == 2 else 0)
        ImageDraw.Draw(image).line(points, fill=0 if index % 3 == 2 else 255, width=4 * pen, joint="curve")
        grey = np.asarray(image.resize((280, 280), Image.BOX))
        images.append(np.dstack([grey, grey, grey, np.full_like(grey, 255)]))
    return images


def page_mnist_style(tab, images: list[np.ndarray]) -> list:
    """The page's mnist_style of each image: a 28 x 28 array, or the message of the error it raised."""
    shipped = [{"height": image.shape[0], "width": image.shape[1], "bytes": base64.b64encode(image.tobytes()).decode()}
               for image in images]
    results = tab.evaluate("""images => images.map(image => {
        const bytes = Uint8Array.from(atob(image.bytes), character => character.charCodeAt(0));
        try { return Array.from(MnistStyle.mnist_style({...image, bytes: bytes}).data); }
        catch (error) { return error.message; }
    })""", shipped)
    return [np.array(result, dtype=np.float32).reshape(28, 28) if isinstance(result, list) else result
            for result in results]


def canvas_pixels(tab) -> np.ndarray:
    """The drawing canvas's pixels, read back from the page: RGBA, as the page itself reads them."""
    encoded, height, width = tab.evaluate("""() => {
        const pad = document.querySelector('.live-digit-pad');
        const bytes = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
        let text = '';
        for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
        return [btoa(text), pad.height, pad.width];
    }""")
    return np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).reshape(height, width, 4)


def mouse_stroke(tab, points: list[tuple[float, float]]) -> None:
    """One stroke with real mouse events through the points (fractions of the canvas's width and height)."""
    box = tab.locator(".live-digit-pad").bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    tab.mouse.move(*at[0])
    tab.mouse.down()
    for (x0, y0), (x1, y1) in itertools.pairwise(at):
        for step in range(1, 11):
            tab.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
    tab.mouse.up()


def touch_stroke(tab, points: list[tuple[float, float]]) -> None:
    """One stroke of a finger through the points, as Chromium's touch events (the DevTools protocol's)."""
    box = tab.locator(".live-digit-pad").bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    session = tab.context.new_cdp_session(tab)
    session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": at[0][0], "y": at[0][1]}]})
    for (x0, y0), (x1, y1) in itertools.pairwise(at):
        for step in range(1, 11):
            session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                {"x": x0 + (x1 - x0) * step / 10, "y": y0 + (y1 - y0) * step / 10}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    session.detach()


def page_answer(tab) -> dict:
    """What the page read after the last stroke: digit, probabilities, field, milliseconds, and the answer's text."""
    tab.locator(".digit-prediction").wait_for(state="visible", timeout=10_000)
    last = tab.evaluate("""() => { const last = LiveCanvas.state.last;
        return {digit: last.digit, probabilities: Array.from(last.probabilities), field: Array.from(last.field.data),
                milliseconds: last.milliseconds}; }""")
    return {**last, "text": tab.locator(".digit-prediction").inner_text()}


def assert_reads_as_predict_digit(tab, network, exported) -> dict:
    """The page's answer for its canvas equals predict_digit's on the canvas's pixels, read back: the same digit,
    the same field and probabilities within TOLERANCE."""
    answer = page_answer(tab)
    pixels = canvas_pixels(tab)
    digit, probabilities = notebook.predict_digit(network, pixels, exported["mean"], exported["std"], CPU)
    field = notebook.mnist_style(pixels)
    assert answer["digit"] == digit
    assert answer["text"].startswith(f"prediction: {digit} ")
    assert np.abs(np.array(answer["field"]).reshape(28, 28) - field).max() < TOLERANCE
    assert np.abs(np.array(answer["probabilities"]) - probabilities).max() < TOLERANCE
    return answer


def clear(tab) -> None:
    tab.get_by_role("button", name="Clear").click()
    tab.get_by_text("draw a digit", exact=True).wait_for(state="visible", timeout=10_000)


ONE = [(0.52, 0.12), (0.46, 0.88)]
SEVEN = [(0.25, 0.18), (0.75, 0.18), (0.62, 0.45), (0.45, 0.88)]


@pytest.fixture(scope="module")
def network(committed_network):
    return committed_network[0]


@pytest.fixture(scope="module")
def exported(committed_network):
    return {"mean": committed_network[1], "std": committed_network[2]}


def test_page_gives_predict_probabilities_on_mnist_test_images(file_page, network, exported, mnist_root):
    from torchvision import datasets

    test_set = datasets.MNIST(str(mnist_root), train=False)
    fields = (test_set.data[::125].numpy() / np.float32(255)).astype(np.float32)  # 80 images, every digit
    on_page = np.array(file_page.evaluate(
        "fields => fields.map(field => Array.from(DigitCNN.predict_probabilities(Float32Array.from(field))))",
        fields.reshape(len(fields), -1).tolist()))
    expected = notebook.predict_probabilities(
        network, notebook.to_model_input(test_set.data[::125], exported["mean"], exported["std"], CPU)).numpy()
    assert len(fields) >= 50
    assert np.abs(on_page - expected).max() < TOLERANCE
    assert (on_page.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_page_makes_the_field_mnist_style_makes_and_refuses_what_it_refuses(file_page):
    def canvas(grey: np.ndarray) -> np.ndarray:
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)])

    tie = np.zeros((100, 100), np.uint8)
    tie[30:61, 20:58] = 255  # crops to 33 x 40, 16.5 rows in the box, and its centre falls between two pixels
    speck, dot = np.zeros((280, 280), np.uint8), np.zeros((280, 280), np.uint8)
    speck[100:103, 90:94] = 255  # a tap of a fine pen: 3 x 4 pixels
    dot[100:122, 90:112] = 255  # a tap of DrawingPad's pen
    images = [*drawings(30), *map(canvas, (tie, speck, dot, np.zeros_like(dot), np.full_like(dot, 255)))]
    expected = []
    for image in images:
        try:
            expected.append(notebook.mnist_style(image))
        except ValueError as error:
            expected.append(str(error))
    on_page = page_mnist_style(file_page, images)
    assert [have for have in on_page if isinstance(have, str)] == [want for want in expected if isinstance(want, str)]
    assert max(np.abs(have - want).max() for have, want in zip(on_page, expected, strict=True)
               if not isinstance(want, str)) < TOLERANCE
    refusals = " ".join(want for want in expected if isinstance(want, str))
    assert all(kind in refusals for kind in ("too small to read", "a dot, not a digit", "no ink found"))
    assert sum(isinstance(want, np.ndarray) for want in expected) >= 25


def test_mouse_drawn_one_and_seven_get_the_answer_of_predict_digit(file_page, network, exported):
    clear(file_page)
    mouse_stroke(file_page, ONE)
    assert assert_reads_as_predict_digit(file_page, network, exported)["digit"] == 1
    clear(file_page)
    mouse_stroke(file_page, SEVEN)
    assert assert_reads_as_predict_digit(file_page, network, exported)["digit"] == 7


def test_finger_stroke_on_a_canvas_shown_smaller_lands_under_the_finger(file_page, network, exported):
    file_page.evaluate("() => document.querySelector('.live-digit-pad').style.width = '180px'")  # as on a phone
    try:
        clear(file_page)
        touch_stroke(file_page, [(0.3, 0.15), (0.3, 0.85)])
        assert_reads_as_predict_digit(file_page, network, exported)
        ink = canvas_pixels(file_page)[..., 0] > 127
        columns, rows = np.nonzero(ink.any(axis=0))[0], np.nonzero(ink.any(axis=1))[0]
        assert abs((columns.min() + columns.max()) / 2 - 0.3 * ink.shape[1]) < 3  # canvas pixels, not CSS pixels
        assert abs(rows.min() - (0.15 * ink.shape[0] - 11)) < 3  # the stroke's round ends: 11 pixels beyond
        assert abs(rows.max() - (0.85 * ink.shape[0] + 11)) < 3
    finally:
        file_page.evaluate("() => document.querySelector('.live-digit-pad').style.width = ''")


def test_cleared_canvas_shows_no_answer(file_page):
    mouse_stroke(file_page, ONE)
    page_answer(file_page)
    clear(file_page)
    assert file_page.locator(".digit-prediction").count() == 0
    assert file_page.evaluate("() => LiveCanvas.state.last") is None
    assert canvas_pixels(file_page)[..., :3].max() == 0
    field = file_page.evaluate("""() => Array.from(document.querySelector('.live-digit-field').getContext('2d')
        .getImageData(0, 0, 28, 28).data)""")
    assert max(field[i] for i in range(len(field)) if i % 4 < 3) == 0  # the field shown is black too


def test_page_served_over_http_reads_a_drawn_digit(http_page, network, exported):
    mouse_stroke(http_page, SEVEN)
    assert assert_reads_as_predict_digit(http_page, network, exported)["digit"] == 7


def test_page_fetches_nothing_raises_no_error_and_shows_every_figure(file_page, http_page):
    for tab in (file_page, http_page):
        assert tab.fetched == []
        assert tab.errors == []
    images = file_page.eval_on_selector_all("img", "all => all.map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 12
    assert all(complete and width > 0 for complete, width in images)
    graph = file_page.locator("img[src^='data:image/svg+xml;base64,']").first  # the architecture graph
    graph.scroll_into_view_if_needed()
    assert graph.bounding_box()["height"] > 300
