"""A real browser draws a digit on the notebook's canvas, in JupyterLab and in Notebook 7 on localhost; `browser` is
the headless Chromium (Debian's, which .ci/run installs) of every browser test. Skipped where the browser or Playwright
is missing, except in CI (CI set), where that is a failure."""

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the slow tier: make test-slow
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "HandWrittenDigitsRecognition.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRONTENDS = {"lab": "lab/tree/lab", "notebook7": "notebooks/notebook7"}  # URL of each copy of the notebook
SETTINGS = {
    "notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the page, not only those in view
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},  # no network, no pop-up
}


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, driven by Playwright."""
    if CHROMIUM is None or importlib.util.find_spec("playwright") is None:
        reason = "Debian's chromium or the playwright package is not installed"
        pytest.fail(f"{reason}: CI must run the browser tests") if os.environ.get("CI") else pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:  # as root in a container Chromium needs --no-sandbox; the rest keep
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=[  # it from reaching for Google's servers
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update"])
        yield chromium
        chromium.close()


def stroke(tab, canvas, points: list[tuple[float, float]], touch: bool = False) -> None:
    """One stroke through the points (fractions of the canvas's width and height), by mouse or by a finger."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    if touch:  # Chromium's touch events, as the DevTools protocol sends them
        send = tab.context.new_cdp_session(tab).send
        for kind, touched in [("touchStart", at[:1]), *(("touchMove", [point]) for point in at[1:]), ("touchEnd", [])]:
            send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in touched]})
        return
    tab.mouse.move(*at[0])
    tab.mouse.down()
    for point in at[1:]:
        tab.mouse.move(*point, steps=10)
    tab.mouse.up()


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory, mnist_root):
    """One Jupyter server on localhost serving a copy of the notebook per front end, in quick mode."""
    base = tmp_path_factory.mktemp("browser")
    for frontend in FRONTENDS:  # the committed notebook is never touched; the package is installed
        (work := base / "work" / frontend).mkdir(parents=True)
        shutil.copy(ROOT / NOTEBOOK, work / NOTEBOOK)
        (work / "data").symlink_to(mnist_root)
        (work / "assets").symlink_to(ROOT / "assets")
    for name, values in SETTINGS.items():
        (path := base / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings").parent.mkdir(parents=True)
        path.write_text(json.dumps(values))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address, token = f"http://127.0.0.1:{probe.getsockname()[1]}", os.urandom(16).hex()
    with open(base / "jupyter.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={address.rsplit(':', 1)[1]}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={base / 'work'}", "--LabApp.expose_app_in_browser=True",
             "--JupyterNotebookApp.expose_app_in_browser=True"], cwd=base, stdout=log,
            stderr=subprocess.STDOUT, env={**os.environ, "MNIST_QUICK": "1", "MNIST_PROGRESS": "0",
                                           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
                                           "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces")})
    try:
        for _ in range(180):  # 90 seconds or more
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{address}/api/status?token={token}", timeout=2)
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the Jupyter server did not start:\n{(base / 'jupyter.log').read_text()[-3000:]}")
        yield address, token
    finally:
        server.terminate()  # the server shuts its kernels down
        server.wait(timeout=30)


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_drawing_on_the_canvas_shows_a_prediction(jupyter_server, browser, frontend):
    address, token = jupyter_server
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{address}/{FRONTENDS[frontend]}/{NOTEBOOK}?token={token}")
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
                           "?.connectionStatus === 'connected'", timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        canvas = page.locator(".jp-OutputArea-output canvas").first
        canvas.wait_for(state="visible", timeout=180_000)  # every cell above it runs first (quick mode)
        # the browser told the kernel that it drew the canvas: the "not loaded" text has gone
        page.get_by_text("draw a digit", exact=True).wait_for(state="visible", timeout=30_000)
        page.wait_for_timeout(500)
        stroke(page, canvas, [(0.5, 0.12), (0.42, 0.88)])
        (prediction := page.locator(".digit-prediction")).wait_for(state="visible", timeout=60_000)
        text = prediction.inner_text()
        page.get_by_role("button", name="Clear").click()
        prediction.wait_for(state="detached", timeout=30_000)
    except Exception:
        page.screenshot(path=str(ROOT / "outputs" / f"canvas_test_{frontend}_failed.png"), full_page=True)
        raise
    finally:
        page.close()
    assert text.startswith("prediction: 1"), text  # a vertical stroke reads as a 1
    assert text.count("%") == 11, text  # the predicted digit's probability and ten bars
