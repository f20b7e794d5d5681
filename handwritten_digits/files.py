"""Writing files safely: whole files only, folders checked before the work, errors that say what to do."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or the error's type when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why files cannot be saved in the folder (created if missing), or None: a probe file is written and removed."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return "it is a file, not a folder"
    if blocker := next((above for above in folder.parents if above.exists() and not above.is_dir()), None):
        return f"{str(blocker)!r} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-").close()  # deleted as it is closed
    except OSError as error:
        return error.strerror or str(error)
    return None


def write_error(path: Path, error: OSError) -> OSError:
    """The error from writing `path`, told as which file could not be written, why, and what to do."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(path.parent).free / 1e6
        return OSError(error.errno, f"cannot write {path}: the disk that holds {path.parent} is full ({free:.1f} MB "
                                    "free); free some space or choose another folder (OUTPUT_DIR in the parameters "
                                    f"cell); the previous {path.name}, if there was one, is unchanged")
    return type(error)(error.errno, f"cannot write {path}: {error.strerror or error}; choose a folder you can write "
                                    "to (OUTPUT_DIR in the parameters cell) or fix its permissions")


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`, unique to this writer, renamed to `path` at the end: never half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as error:
        raise write_error(path, error) from error
    os.close(handle)
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(temporary, 0o666 & ~mask)  # the permissions of a file written in place (mkstemp's are private)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except OSError as error:  # a full disk, say: the previous file is left as it was
        raise write_error(path, error) from error
    finally:
        Path(temporary).unlink(missing_ok=True)
