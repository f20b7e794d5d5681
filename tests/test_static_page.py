"""The static page's live canvas (make html): the trained network and mnist_style in plain JavaScript, in Chromium.

The page that scripts/notebook_html.py writes, opened from file:// and served over http on 127.0.0.1, in one headless
Chromium (Debian's, driven by Playwright as tests/test_browser.py drives it), loaded once per origin. PyTorch checks
the page with a DigitCNN built from the committed weights file (scripts/export_weights.py), so nothing is trained
here. Skipped where the browser or Playwright is missing, except in CI (CI set), where that is a failure.
"""

import base64
import functools
import http.server
import itertools
import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter
from test_browser import CHROMIUM, CHROMIUM_FLAGS, require

from handwritten_digits import recipe
from handwritten_digits.checkpoints import save_checkpoint
from handwritten_digits.data import notebook_split
from handwritten_digits.export import NOTEBOOK
from handwritten_digits.weights import (
    export_weights,
    fold_batch_norm,
    network_from_weights,
    notebook_constants,
    read_weights_script,
)
from scripts.export_weights import WEIGHTS_FILE, main
from scripts.notebook_html import write_html

CPU = torch.device("cpu")
TOLERANCE = 1e-5  # the largest difference allowed between the page's numbers and PyTorch's


@pytest.fixture(scope="module")
def exported():
    return read_weights_script(WEIGHTS_FILE)


@pytest.fixture(scope="module")
def network(exported):
    """The committed weights as a PyTorch DigitCNN: what the page runs, computed by PyTorch."""
    return network_from_weights(exported)


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("static_page")
    write_html(NOTEBOOK, folder / "page.html")
    return folder


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM is not None, "Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed")
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield chromium
    chromium.close()
    playwright.stop()


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


def drawn_like_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Digit-like pen strokes as uint8 grey images, as photos and scans of handwriting give them: off-centre and of
    many sizes, dark on light paper or light on dark, fine to thick pens, many antialiased (drawn 4 times larger and
    shrunk), some blurred, some on noisy paper."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        height, width = [(280, 280), (200, 320), (360, 240), (150, 150)][index % 4]
        supersample = 4 if index % 3 else 1
        side = rng.uniform(0.15, 0.8) * min(height, width)
        top, left = rng.uniform(0, height - side), rng.uniform(0, width - side)
        points = [(left + rng.uniform(0, side * 0.7), top + rng.uniform(0, side)) for _ in range(rng.integers(3, 7))]
        pen = int(rng.choice([1, 2, 3, 5, 9, 16, 22]))
        paper, ink = ((int(rng.integers(180, 250)), int(rng.integers(0, 80))) if index % 2 == 0  # dark on light
                      else (int(rng.integers(0, 40)), int(rng.integers(170, 256))))
        image = Image.new("L", (width * supersample, height * supersample), paper)
        ImageDraw.Draw(image).line([(x * supersample, y * supersample) for x, y in points], fill=ink,
                                   width=pen * supersample, joint="curve")
        image = image.resize((width, height), Image.BOX) if supersample > 1 else image
        image = image.filter(ImageFilter.GaussianBlur(1)) if index % 5 == 4 else image
        pixels = np.asarray(image).astype(np.float64)
        pixels += rng.normal(0, 4, pixels.shape) if index % 4 == 3 else 0
        images.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return images


def page_mnist_style(tab, images: list[np.ndarray]) -> list:
    """The page's mnist_style of each image: a 28 x 28 array, or the message of the error it raised."""
    shipped = [{"height": image.shape[0], "width": image.shape[1], "channels": 1 if image.ndim == 2 else image.shape[2],
                "bytes": base64.b64encode(image.tobytes()).decode()} for image in images]
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
    digit, probabilities = recipe.predict_digit(network, pixels, exported["mean"], exported["std"], CPU)
    field = recipe.mnist_style(pixels)
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


def test_folding_batch_norm_keeps_what_the_convolution_computes():
    rng = np.random.default_rng(0)
    conv_weight, gamma, beta, mean = (rng.normal(size=shape) for shape in ((4, 2, 3, 3), 4, 4, 4))
    variance, images = rng.uniform(0.5, 2, 4), rng.normal(size=(3, 2, 9, 9))
    weight, bias = fold_batch_norm(conv_weight, gamma, beta, mean, variance, 1e-5)
    convolved = torch.nn.functional.conv2d(torch.from_numpy(images), torch.from_numpy(conv_weight), padding=1)
    normalised = torch.nn.functional.batch_norm(convolved, torch.from_numpy(mean), torch.from_numpy(variance),
                                                torch.from_numpy(gamma), torch.from_numpy(beta), eps=1e-5)
    folded = torch.nn.functional.conv2d(torch.from_numpy(images), torch.from_numpy(weight), torch.from_numpy(bias),
                                        padding=1)
    assert torch.allclose(folded, normalised, rtol=0, atol=1e-12)


def test_export_gives_the_checkpoints_answers_and_the_same_bytes_every_time(tmp_path, capsys):
    torch.manual_seed(0)
    model = recipe.DigitCNN()
    for name in ("conv1", "conv2", "conv3"):  # batch norm statistics as training leaves them, not the identity
        norm = getattr(model, name)[1]
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.2)
            norm.running_mean.normal_(0, 0.3)
            norm.running_var.uniform_(0.3, 3)
    checkpoint = tmp_path / "digit_cnn.pt"
    save_checkpoint(model, checkpoint, 0.1307, 0.3081)
    main([str(checkpoint), str(tmp_path / "first.js")])
    assert "(98,442 numbers" in capsys.readouterr().out
    again = export_weights(checkpoint, tmp_path / "second.js")
    assert (tmp_path / "first.js").read_bytes() == (tmp_path / "second.js").read_bytes()
    images = torch.randn(16, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert (network_from_weights(again)(images) - model(images)).abs().max() < 1e-4
    assert (again["mean"], again["std"], again["checkpoint"]) == (0.1307, 0.3081, "digit_cnn.pt")
    assert again["constants"] == notebook_constants()


def test_constants_only_brings_an_old_weights_file_up_to_the_notebook(tmp_path):
    old = tmp_path / "old_weights.js"
    old.write_text(re.sub(r'"PAPER_CONTRAST": [0-9.]+', '"PAPER_CONTRAST": 2.5',
                          WEIGHTS_FILE.read_text(encoding="utf-8"), count=1), encoding="utf-8")
    main(["--constants-only", str(old)])
    refreshed = read_weights_script(old)
    assert refreshed["constants"] == notebook_constants()
    assert refreshed["weights"] == read_weights_script(WEIGHTS_FILE)["weights"]


def test_committed_weights_read_mnist_with_the_runs_normalisation_and_the_notebooks_constants(exported, network,
                                                                                             mnist_root):
    from torchvision import datasets

    _, _, mean, std = notebook_split(datasets.MNIST(str(mnist_root), train=True).data, recipe.SEED)
    assert exported["constants"] == notebook_constants(), (
        f"{WEIGHTS_FILE} holds other constants than the notebook's: run `make assets` to rewrite them")
    assert (exported["mean"], exported["std"]) == pytest.approx((mean, std), abs=1e-7)
    test_set = datasets.MNIST(str(mnist_root), train=False)
    images = recipe.to_model_input(test_set.data[:2000], exported["mean"], exported["std"], CPU)
    accuracy = (recipe.predict_probabilities(network, images).argmax(dim=1) == test_set.targets[:2000]).float().mean()
    assert accuracy > 0.985  # a trained network, its layers read in the right order


@pytest.mark.slow  # a browser
def test_page_gives_predict_probabilities_on_mnist_test_images(file_page, network, exported, mnist_root):
    from torchvision import datasets

    test_set = datasets.MNIST(str(mnist_root), train=False)
    fields = (test_set.data[::125].numpy() / np.float32(255)).astype(np.float32)  # 80 images, every digit
    on_page = np.array(file_page.evaluate(
        "fields => fields.map(field => Array.from(DigitCNN.predict_probabilities(Float32Array.from(field))))",
        fields.reshape(len(fields), -1).tolist()))
    expected = recipe.predict_probabilities(
        network, recipe.to_model_input(test_set.data[::125], exported["mean"], exported["std"], CPU)).numpy()
    assert len(fields) >= 50
    assert np.abs(on_page - expected).max() < TOLERANCE
    assert (on_page.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.slow  # a browser
def test_page_makes_the_field_mnist_style_makes_and_refuses_what_it_refuses(file_page):
    images = drawn_like_images(24)
    blank, speck = np.full((200, 200), 230, np.uint8), np.full((200, 200), 230, np.uint8)
    speck[100:103, 90:94] = 20  # a digit 3 x 4 pixels small (5 x 6 with the edges strokes_only keeps)
    faint = blank.copy()
    faint[50:150, 95:105] = 200  # ink 0.12 from the paper: below white_on_black's 0.15
    rgba = np.dstack([images[0]] * 3 + [np.full(images[0].shape, 255, np.uint8)])  # as a canvas holds it
    tie = np.zeros((100, 100), np.uint8)
    tie[30:61, 20:58] = 255  # crops to 33 x 40, 16.5 rows in the box, and its centre falls between two pixels
    special = [rgba, tie, blank, speck, faint]
    on_page = page_mnist_style(file_page, [*images, *special])
    expected = []
    for image in [*images, *special]:
        try:
            expected.append(recipe.mnist_style(image))
        except ValueError as error:
            expected.append(str(error))
    refused = [want for want in expected if isinstance(want, str)]
    assert [type(have) for have in on_page] == [type(want) for want in expected]
    assert [have for have in on_page if isinstance(have, str)] == refused
    assert max(np.abs(have - want).max() for have, want in zip(on_page, expected, strict=True)
               if not isinstance(want, str)) < TOLERANCE
    assert len(expected) - len(refused) >= 20
    assert any("too small to read" in message for message in refused)
    assert any("no ink found" in message for message in refused)


@pytest.mark.slow  # a browser
def test_mouse_drawn_one_and_seven_get_the_answer_of_predict_digit(file_page, network, exported):
    clear(file_page)
    mouse_stroke(file_page, ONE)
    assert assert_reads_as_predict_digit(file_page, network, exported)["digit"] == 1
    clear(file_page)
    mouse_stroke(file_page, SEVEN)
    assert assert_reads_as_predict_digit(file_page, network, exported)["digit"] == 7


@pytest.mark.slow  # a browser
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


@pytest.mark.slow  # a browser
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


@pytest.mark.slow  # a browser
def test_page_served_over_http_reads_a_drawn_digit(http_page, network, exported):
    mouse_stroke(http_page, SEVEN)
    assert assert_reads_as_predict_digit(http_page, network, exported)["digit"] == 7


@pytest.mark.slow  # a browser
def test_page_fetches_nothing_and_raises_no_error(file_page, http_page):
    for tab in (file_page, http_page):
        assert tab.fetched == []
        assert tab.errors == []
        assert tab.evaluate("() => DigitCNN.parameter_count") == 98_442
