"""Writing files safely: whole files only, and folders checked before the work."""

import errno
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or the error's type when it has no message."""
    return (str(error).strip() or type(error).__name__).splitlines()[0]


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why files cannot be saved in the folder (created if missing), or None: the package's one write probe."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-").close()  # deleted as it is closed
    except OSError as error:
        if blocker := next((above for above in (folder, *folder.parents) if above.is_file()), None):
            return ("it" if blocker == folder else repr(str(blocker))) + " is a file, not a folder"
        return error.strerror or str(error)
    return None


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`, unique to this writer, renamed to `path` at the end: never half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")  # made by the writer, as in place
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        os.replace(temporary, path)
    except OSError as error:  # a full disk, say, or no permission
        reason = (f"the disk that holds {path.parent} is full" if error.errno in (errno.ENOSPC, errno.EDQUOT)
                  else error.strerror or str(error))
        raise type(error)(error.errno, f"cannot write {path}: {reason} (nothing written; any previous {path.name} is "
                          "unchanged): free some space or choose a folder you can write to") from error
    finally:
        temporary.unlink(missing_ok=True)


def regular_file(path) -> Path:
    """The path, if it names a regular file: a folder, a pipe or a device would be misread or waited on forever."""
    if (path := Path(path)).is_file():
        return path
    if path.exists():
        raise ValueError(f"{path} is not a regular file (a folder, a pipe or a device?): expected a file")
    raise FileNotFoundError(f"{path}: no such file; check the name and the folder")
