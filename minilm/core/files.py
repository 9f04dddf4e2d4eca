"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Write to a temporary file in the same folder, flush it to disk, then rename it over the target
(``os.replace`` is atomic on POSIX and Windows). An interrupted run leaves the old file intact and
no temporary file behind; a killed one (no chance to clean up) may leave one. Its name holds the
writer's process id, so the next start of the stage that wrote it (:func:`remove_orphan_temporaries`)
and the next write of the same file remove it at once when that process is gone, and leave alone
a temporary file that another process is writing right now.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> atomic_write_text(path, "hello")
>>> path.read_text()
'hello'
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all. A failure (disk full, no permission) raises an
    OSError that names ``path``, not the temporary file the user never asked for."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        if hasattr(os, "fchmod"):  # POSIX: mkstemp's 0600 would hide the file from other users
            os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(err.errno, f"cannot write {path}: {err.strerror or err} (is its folder writable, "
                                     "with space left? MINILM_RUNS moves the runs folder)") from err
        raise
    remove_orphan_temporaries(path.parent, path.name)


def _current_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _new_file_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: the target's own if it exists (a user's chmod
    survives a rewrite), else 0666 less the umask, as for any file the user creates."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


# A temporary file without a process id in its name (written before names held one) and this old
# was left by a killed writer: no write of ours takes an hour.
STALE_SECONDS = 3600


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a platform that cannot tell: leave its file alone
    return True


def _is_orphan(tmp: Path) -> bool:
    """Whether ``tmp`` (``.<name>.<pid>.<random>.tmp``) was left by a writer that is gone."""
    *_, pid, _random = tmp.name[: -len(".tmp")].rsplit(".", 2)
    if pid.isdigit():
        return int(pid) != os.getpid() and not _process_alive(int(pid))
    return time.time() - tmp.stat().st_mtime > STALE_SECONDS


def remove_orphan_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder`` (not its subfolders), of
    the file ``name`` only when given; returns them. A stage calls it when it starts, and every
    write for its own file, so a killed build leaves nothing behind for long.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".model.pt.999999999.abc.tmp").write_bytes(b"half")  # no such process
    >>> [p.name for p in remove_orphan_temporaries(folder)], list(folder.iterdir())
    (['.model.pt.999999999.abc.tmp'], [])
    """
    removed = []
    for tmp in Path(folder).glob(f".{glob.escape(name)}.*.tmp" if name else ".*.tmp"):
        try:
            if _is_orphan(tmp):
                tmp.unlink()
                removed.append(tmp)
        except (OSError, ValueError):  # gone already, not ours to remove, or a name we did not write
            pass
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value) -> Path:
    """Write ``value`` as indented JSON, atomically, making its folder if needed (numpy and torch
    scalars become floats).

    >>> import tempfile, pathlib
    >>> path = write_json(pathlib.Path(tempfile.mkdtemp()) / "summary.json", {"loss": 1.5})
    >>> read_json(path)
    {'loss': 1.5}
    """
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(value, indent=1, default=float))
    return path


class UnreadableFileError(ValueError):
    """A file the course wrote earlier cannot be read back (truncated, edited or replaced)."""


def read_json(path: str | os.PathLike, kind=dict):
    """The JSON value in ``path``, which must be a ``kind`` (a dict unless told otherwise); an
    unreadable or damaged file is one error naming it and saying how to rebuild it.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "summary.json"
    >>> atomic_write_text(path, '{"seconds": 1')
    >>> read_json(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    minilm.core.files.UnreadableFileError: .../summary.json: not a readable JSON file (truncated or edited?): ... delete it to rebuild it
    """
    import json

    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UnreadableFileError(f"{path}: not a readable JSON file (truncated or edited?): {err}; "
                                  "delete it to rebuild it") from None
    if not isinstance(value, kind):
        raise UnreadableFileError(f"{path}: holds a JSON {type(value).__name__}, not the {kind.__name__} "
                                  "minilm wrote there; delete it to rebuild it")
    return value
