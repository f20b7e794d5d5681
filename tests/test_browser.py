"""A real browser draws a digit on the notebook's canvas, in JupyterLab and in Notebook 7 on localhost.

Headless Chromium (Debian's `chromium`, which `.ci/run` installs) driven by Playwright. Skipped where the
browser or Playwright is missing, except in CI (CI set), where that is a failure.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "HandWrittenDigitsRecognition.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root in a container Chromium needs --no-sandbox; the rest keep it from reaching for Google's servers.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
FRONTENDS = {"lab": "lab/tree/lab", "notebook7": "notebooks/notebook7"}  # URL of each copy of the notebook
SETTINGS = {
    "notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the page, not only those in view
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},  # no network, no pop-up
}

pytestmark = pytest.mark.slow  # the slow tier: make test-slow


def require(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs what it needs)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Jupyter server did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.5)


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory, mnist_root):
    """One Jupyter server on localhost serving a copy of the notebook per front end, in quick mode."""
    base = tmp_path_factory.mktemp("browser")
    for frontend in FRONTENDS:
        work = base / "work" / frontend  # the committed notebook is never touched
        work.mkdir(parents=True)
        shutil.copy(ROOT / NOTEBOOK, work / NOTEBOOK)  # the package is installed: the set-up cell finds it
        (work / "data").symlink_to(mnist_root)
        (work / "assets").symlink_to(ROOT / "assets")
    for name, values in SETTINGS.items():
        path = base / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    port, token = free_port(), secrets.token_hex(16)
    log_path = base / "jupyter.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={base / 'work'}",
             "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
             f"--LabApp.user_settings_dir={base / 'settings'}",
             f"--JupyterNotebookApp.user_settings_dir={base / 'settings'}",
             f"--LabApp.workspaces_dir={base / 'workspaces'}"],
            cwd=base, env={**os.environ, "MNIST_QUICK": "1", "MNIST_PROGRESS": "0"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{address}/api/status?token={token}", server, log_path)
        yield address, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def draw_a_one(page, canvas) -> None:
    """A vertical stroke down the middle of the canvas, with real mouse events."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x = box["x"] + box["width"] * 0.5
    page.mouse.move(x, box["y"] + box["height"] * 0.12)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x - step * 0.4, box["y"] + box["height"] * (0.12 + 0.76 * step / 20))
    page.mouse.up()


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_drawing_on_the_canvas_shows_a_prediction(jupyter_server, frontend):
    require(CHROMIUM is not None, "Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed")
    address, token = jupyter_server
    screenshot = ROOT / "outputs" / f"canvas_test_{frontend}.png"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(f"{address}/{FRONTENDS[frontend]}/{NOTEBOOK}?token={token}")
            page.wait_for_function(
                "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
                " return kernel && kernel.connectionStatus === 'connected'; }", timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            screenshot.parent.mkdir(exist_ok=True)
            try:
                canvas = page.locator(".jp-OutputArea-output canvas").first
                canvas.wait_for(state="visible", timeout=180_000)  # every cell above it runs first (quick mode)
                # the browser told the kernel that it drew the canvas: the "not loaded" text has gone
                page.get_by_text("draw a digit", exact=True).wait_for(state="visible", timeout=30_000)
                page.wait_for_timeout(500)
                draw_a_one(page, canvas)
                prediction = page.locator(".digit-prediction")
                prediction.wait_for(state="visible", timeout=60_000)
                text = prediction.inner_text()
                page.screenshot(path=str(screenshot))

                page.get_by_role("button", name="Clear").click()
                prediction.wait_for(state="detached", timeout=30_000)
            except Exception:
                page.screenshot(path=str(screenshot.with_name(f"{screenshot.stem}_failed.png")), full_page=True)
                raise
        finally:
            browser.close()
    assert text.startswith("prediction: 1"), text  # a vertical stroke reads as a 1
    assert text.count("%") == 11, text  # the predicted digit's probability and ten bars


def test_static_page_shows_every_figure_and_no_error(tmp_path):
    """`make html`'s page of the committed notebook, opened from disk with the network cut off."""
    require(CHROMIUM is not None, "Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed")
    page_path = tmp_path / "page.html"
    done = subprocess.run([sys.executable, "scripts/notebook_html.py", "--output", str(page_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    screenshot = ROOT / "outputs" / "static_page.png"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            fetched = []  # anything the page asks for beyond its own file: nothing is expected

            def only_local_files(route) -> None:
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    fetched.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local_files)
            page.goto(page_path.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "all => all.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            graph = page.locator("img[src^='data:image/svg+xml;base64,']").first  # the one SVG output
            graph.scroll_into_view_if_needed()
            graph_visible, graph_box = graph.is_visible(), graph.bounding_box()
            graph_svg = base64.b64decode(graph.get_attribute("src").split(",", 1)[1]).decode()
            stderr = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
            text = page.inner_text("body")
            screenshot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    saved_figures = sum(1 for cell in json.loads((ROOT / NOTEBOOK).read_text())["cells"]
                        for output in cell.get("outputs", []) for kind in output.get("data", {})
                        if kind in ("image/png", "image/svg+xml"))
    assert len(images) == saved_figures >= 12  # every figure of the notebook
    assert all(complete and width > 0 and height > 0 for complete, width, height in images), images
    assert "ConvolutionBackward0" in graph_svg  # torchviz's graph of DigitCNN
    assert graph_visible
    assert graph_box["height"] > 300  # the architecture graph is drawn at full size
    assert not [output for output in stderr if "Error" in output or "Traceback" in output]
    assert "Traceback" not in text
    assert "test accuracy: " in text
    assert fetched == []
