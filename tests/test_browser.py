"""The notebook's canvas in a real browser (conftest's `browser`), in JupyterLab and Notebook 7."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import NOTEBOOK, ROOT, stroke

pytestmark = pytest.mark.slow  # the slow tier: make test-slow
FRONTENDS = {"lab": "lab/tree/lab.ipynb", "notebook7": "notebooks/notebook7.ipynb"}  # a copy of the notebook each
SETTINGS = {
    "notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the page, not only those in view
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}  # no network, no pop-up


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory, mnist_root):
    """One Jupyter server on localhost serving a copy of the notebook per front end, in quick mode."""
    base = tmp_path_factory.mktemp("browser")
    (work := base / "work").mkdir()
    for frontend in FRONTENDS:  # the committed notebook is never touched; the package is installed
        shutil.copy(NOTEBOOK, work / f"{frontend}.ipynb")
    (work / "data").symlink_to(mnist_root)
    (work / "assets").symlink_to(ROOT / "assets")
    for name, values in SETTINGS.items():
        (path := base / "@jupyterlab" / f"{name}.jupyterlab-settings").parent.mkdir(parents=True)
        path.write_text(json.dumps(values))
    with open(base / "jupyter.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port=0",
             f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
             "--JupyterNotebookApp.expose_app_in_browser=True"], cwd=base, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "JUPYTER_RUNTIME_DIR": str(base),  # where it writes its address
                 "JUPYTERLAB_SETTINGS_DIR": str(base), "JUPYTERLAB_WORKSPACES_DIR": str(base)})
    try:
        deadline = time.monotonic() + 90
        while not (base / f"jpserver-{server.pid}-open.html").exists():  # written after the .json one, once it listens
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Jupyter server did not start:\n{(base / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield json.loads((base / f"jpserver-{server.pid}.json").read_text())  # its url, token, ...
    finally:
        server.terminate()  # the server shuts its kernels down
        server.wait(timeout=30)


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_drawing_on_the_canvas_shows_a_prediction(jupyter_server, browser, frontend):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{jupyter_server['url']}{FRONTENDS[frontend]}?token={jupyter_server['token']}")
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
        text, maps = prediction.inner_text(), page.locator("img[title^='conv']")  # feature_maps_html's maps
        shown = maps.evaluate_all("all => all.map(map => map.title.split(':')[0])")
        page.get_by_role("button", name="Clear").click()
        prediction.wait_for(state="detached", timeout=30_000)
        assert maps.count() == 0
    except Exception:
        page.screenshot(path=str(ROOT / "outputs" / f"canvas_test_{frontend}_failed.png"), full_page=True)
        raise
    finally:
        page.close()
    assert text.startswith("prediction: 1"), text  # a vertical stroke reads as a 1
    assert text.count("%") == 11, text  # the predicted digit's probability and ten bars
    assert shown == [f"conv{block}, channel {channel}" for block, channels in ((1, 16), (2, 32), (3, 64))
                     for channel in range(channels)]  # under the canvas, every feature map
