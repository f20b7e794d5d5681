"""Shared set-up: quick mode (QUICK = True in every kernel the tests start), real MNIST, the committed run's network
(read, not trained), the notebook's first cells, a read-only mount, and the one Chromium of the browser tests."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import papermill
import pytest
import torch

from handwritten_digits import notebook
from handwritten_digits.weights import CONVOLUTIONS, network_for, read_weights_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "HandWrittenDigitsRecognition.ipynb"
# The notebook's parameters cell, as papermill reads it: {"EPOCHS": 15, "BATCH_SIZE": 128, ...}.
DEFAULTS = {name: ast.literal_eval(parameter["default"])
            for name, parameter in papermill.inspect_notebook(str(NOTEBOOK)).items()}
os.environ.setdefault("MPLBACKEND", "Agg")  # figures without a display, in these tests and their kernels


def pytest_configure(config):
    """nbval has no parameters: the kernels these tests start set QUICK = True right after the notebook's parameters
    cell (known by its exact source), as `papermill -p QUICK True` would; papermill's injected cell overrides it."""
    parameters = next("".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]
                      if "parameters" in cell["metadata"].get("tags", []))
    (startup := Path(tempfile.mkdtemp(prefix="ipython-")) / "profile_default" / "startup").mkdir(parents=True)
    (startup / "quick.py").write_text(f"""
def quick_after_parameters(result):
    if result.info.raw_cell.strip() == {parameters.strip()!r}:
        get_ipython().user_ns["QUICK"] = True
get_ipython().events.register("post_run_cell", quick_after_parameters)
""")
    os.environ["IPYTHONDIR"] = str(startup.parents[1])  # read by every kernel the tests start, nbval's included


def pytest_unconfigure(config):
    shutil.rmtree(os.environ.pop("IPYTHONDIR", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The project's data root, holding the real MNIST files (fetched and verified by mnist_data if needed)."""
    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist(ROOT / "data", log=lambda _: None)
    return ROOT / "data"


@pytest.fixture(scope="session")
def mnist_data(mnist_root) -> tuple:
    """(training, validation) pairs of 2,000 and 500 real MNIST images, normalised as the notebook does, on the CPU."""
    from torchvision import datasets

    mnist = datasets.MNIST(str(mnist_root), train=True)
    images = notebook.to_model_input(mnist.data[:2_500], 0.1307, 0.3081, torch.device("cpu"))
    return (images[:2_000], mnist.targets[:2_000]), (images[2_000:], mnist.targets[2_000:2_500])


def network_from_weights(exported: dict):
    """The network a weights file describes, in PyTorch and eval mode: each block a convolution with the folded bias."""
    state = {f"{name}{'.0' if name in CONVOLUTIONS else ''}.{kind}": torch.from_numpy(array.copy())
             for name, pair in exported["arrays"].items() for kind, array in zip(("weight", "bias"), pair, strict=True)}
    (model := network_for(state)).load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="session")
def committed_network():
    """(DigitCNN, mean, std) of the committed run, as the static page runs it (batch norm folded into convolutions)."""
    exported = read_weights_script(ROOT / "assets" / "digit_cnn_weights.js")
    return network_from_weights(exported), exported["mean"], exported["std"]


@pytest.fixture(scope="session")
def trained_digit_reader(committed_network):
    """A function image -> (digit, ten probabilities) with a really trained network (the committed run's)."""
    model, mean, std = committed_network
    return lambda image: notebook.predict_digit(model, image, mean, std, torch.device("cpu"))


def run_first_cells(tmp_path: Path, count: int, *parameters: str, env: dict | None = None):
    """The first `count` code cells of the notebook through papermill's command line, given `NAME=VALUE` as make run."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][:count]
    (first := tmp_path / "first-cells.ipynb").write_text(json.dumps(notebook))
    pairs = [word for parameter in parameters for word in ("-p", *parameter.split("=", 1))]
    return subprocess.run([sys.executable, "-m", "papermill", str(first), str(tmp_path / "executed.ipynb"), "--cwd",
                           str(ROOT), "-k", "python3", "--no-progress-bar", "--log-output", *pairs],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def in_read_only_mount(source: Path, mount_point: Path, code: str) -> subprocess.CompletedProcess:
    """Run Python `code` where mount_point is `source` bind-mounted read-only, in a mount namespace of its own."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is missing")
    mount_point.mkdir(parents=True, exist_ok=True)
    script = (f'mount --bind "{source}" "{mount_point}" && mount -o remount,ro,bind "{mount_point}" && '
              f'exec "{sys.executable}" -c "$0"')
    done = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script, code],
                          capture_output=True, text=True, timeout=120)
    if refused := re.search(r"^(unshare|mount): .*(not permitted|[Pp]ermission denied)", done.stderr, flags=re.M):
        if os.environ.get("CI") and os.geteuid() == 0:  # as root, as .ci/run runs, it must work
            pytest.fail(f"CI must test a read-only mount: {refused[0]}")
        pytest.skip(f"this machine does not let a test mount: {refused[0]}")
    return done


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, driven by Playwright; where it is missing, skipped (failed in CI)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing (CI must have it)")
        pytest.skip("Debian's chromium is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:  # as root in a container Chromium needs --no-sandbox; the rest keep
        yield driver.chromium.launch(executable_path=CHROMIUM, args=[  # it from reaching for Google's servers
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update"])


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
