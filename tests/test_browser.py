"""A real browser draws a digit on the notebook's canvas, in JupyterLab and in Notebook 7 on localhost; `browser` is
the headless Chromium (Debian's, which .ci/run installs) of every browser test. Skipped where the browser or Playwright
is missing, except in CI (CI set), where that is a failure."""

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


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, driven by Playwright."""
    require(CHROMIUM is not None, "Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


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
def test_drawing_on_the_canvas_shows_a_prediction(jupyter_server, browser, frontend):
    address, token = jupyter_server
    screenshot = ROOT / "outputs" / f"canvas_test_{frontend}.png"
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
        page.close()
    assert text.startswith("prediction: 1"), text  # a vertical stroke reads as a 1
    assert text.count("%") == 11, text  # the predicted digit's probability and ten bars
