"""Writing files safely: whole files only, and folders checked before the work."""

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or the error's type when it has no message."""
    return (str(error).strip() or type(error).__name__).splitlines()[0]


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why files cannot be saved in the folder (created if missing), or None: the package's one write probe."""
    folder = Path(folder)
    if blocker := next((above for above in (folder, *folder.parents) if above.exists() and not above.is_dir()), None):
        return "it is a file, not a folder" if blocker == folder else f"{str(blocker)!r} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-").close()  # deleted as it is closed
    except OSError as error:
        return error.strerror or str(error)
    return None


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`, unique to this writer, renamed to `path` at the end: never half a file."""
    path, temporary = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(handle)
        os.umask(mask := os.umask(0o022))  # read the umask: the permissions of a file written in place, not mkstemp's
        os.chmod(temporary, 0o666 & ~mask)
        yield Path(temporary)
        os.replace(temporary, path)
    except OSError as error:  # a full disk, say, or no permission
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        raise type(error)(error.errno, f"cannot write {path}: " + (f"the disk that holds {path.parent} is full" if full
                          else error.strerror or str(error)) + f" (nothing written: the previous {path.name}, if there "
                          "was one, is unchanged); free some space or choose a folder you can write to (OUTPUT_DIR in "
                          "the parameters cell)") from error
    finally:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
