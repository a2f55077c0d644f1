"""The files a user names: every one read is a regular file read with a size bound, every one written is written whole
(a temporary file beside it, renamed over it) and never over one of the run's own inputs; what the operating system
refuses becomes one line naming the path."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from rooflm.errors import InvalidInputError

# The bounds on what a file may hold: a config.json, a hardware file or a profile is a few kilobytes; a measurement
# table one row (~100 bytes) per timed step, so 64 MiB is over half a million rows.
MAX_SPEC_BYTES = 1 << 20
MAX_TABLE_BYTES = 64 << 20

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def size_words(limit: int) -> str:
    """A bound as people say it: 1 MiB, 64 MiB (binary: file sizes are counted in bytes)."""
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and limit % (1 << 20) == 0 else f"{limit:,} bytes"


def _kind(mode: int) -> str:
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _os_error(action: str, where: str, exc: OSError, field: str | None) -> InvalidInputError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT and action == "read":
        reason = "no such file"
    return InvalidInputError(f"cannot {action} {where}: {reason}", field=field)


def read_limited(path: str | Path, limit: int, where: str, expected: str, field: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them. A folder, a pipe, a device (/dev/zero), a
    missing file or one the OS will not open is refused in one line; ``expected`` says what the file should be."""
    try:
        mode = os.stat(path).st_mode  # the type before opening: opening a named pipe would wait for a writer
        data = _read_regular(path, limit) if stat.S_ISREG(mode) else None
    except OSError as exc:
        raise _os_error("read", where, exc, field) from None
    except ValueError:  # a NUL byte in the name
        raise InvalidInputError(f"cannot read {where}: not a valid file name", field=field) from None
    if data is None:
        raise InvalidInputError(f"{where} is {_kind(mode)}, not {expected}", field=field)
    if len(data) > limit:
        raise InvalidInputError(f"{where} is over {size_words(limit)}, the most {expected} may hold", field=field)
    return data


def _read_regular(path: str | Path, limit: int) -> bytes | None:
    """Up to ``limit`` + 1 bytes (one past the bound tells a file over it, whatever size it reports), or None if the
    name is no longer a regular file once open. O_NONBLOCK: should the name become a pipe after the stat, the open
    does not wait for a writer."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else None


def read_text_limited(path: str | Path, limit: int, where: str, expected: str, field: str | None = None) -> str:
    """``read_limited``'s bytes as UTF-8 text."""
    try:
        return read_limited(path, limit, where, expected, field).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{where} is not UTF-8 text, not {expected}", field=field) from None


def path_test(text: str, test: Callable[[Path], bool]) -> bool:
    """``test(Path(text))``, or False where the OS cannot even look the name up (ENAMETOOLONG, a NUL byte): a name
    too long to be a file is a catalog name, unknown or not."""
    try:
        return test(Path(text))
    except (OSError, ValueError):
        return False


def _same(a: Path, b: Path) -> bool:
    """Whether two names reach one file: the same inode where both exist, the same resolved path otherwise."""
    try:
        return a.samefile(b)
    except (OSError, ValueError):
        try:
            return a.resolve() == b.resolve()
        except (OSError, RuntimeError, ValueError):
            return False


def input_files(values: Iterable[object]) -> list[Path]:
    """The values of a run's inputs that name files here (a folder given as a model stands for its config.json)."""
    files: list[Path] = []
    for value in values:
        if isinstance(value, (str, Path)) and str(value) and path_test(str(value), Path.exists):
            p = Path(value)
            files += [p, p / "config.json"] if path_test(str(value), Path.is_dir) else [p]
    return files


def check_output(path: str | Path, where: str, inputs: Iterable[object] = (), field: str | None = None) -> Path:
    """The file a run will write, refused before any work where the write could not succeed or would destroy one of
    the run's ``inputs`` (paths or values; those naming no file are ignored). Returns the path written: a symbolic
    link's target."""
    p = Path(path)
    for source in input_files(inputs):
        if _same(p, source):
            raise InvalidInputError(f"{where} is one of this run's inputs ({source}); write to another file",
                                    field=field)
    problem = _unwritable(p)
    if problem:
        raise InvalidInputError(f"cannot write {where}: {problem}", field=field)
    return Path(os.path.realpath(p))


def _unwritable(p: Path) -> str:
    """Why ``p`` cannot be written as a file ("" if nothing the OS says beforehand stops it)."""
    try:
        target = Path(os.path.realpath(p))  # a link is written through, as open() would
        link = f" (a link to {target})" if p.is_symlink() else ""
        if os.path.lexists(target):
            mode = os.stat(target).st_mode
            if not stat.S_ISREG(mode):
                return f"it is {_kind(mode)}{link}; name a file"
        if not os.path.lexists(target.parent):
            return f"folder {target.parent} does not exist{link}; create it or write elsewhere"
        if not stat.S_ISDIR(os.stat(target.parent).st_mode):
            return f"{target.parent} is not a folder"
        if len(os.fsencode(target.name)) > _name_max(target.parent):
            return "the file name is too long"
        # A file the user may not write stays as it is, though renaming over it would succeed (the folder's right).
        if os.path.lexists(target) and not os.access(target, os.W_OK):
            return "permission denied (the file is read-only)"
        if not os.access(target.parent, os.W_OK | os.X_OK):
            return f"permission denied (folder {target.parent})"
    except OSError as exc:
        return exc.strerror or str(exc)
    except ValueError:
        return "not a valid file name"
    return ""


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _new_file_mode() -> int:
    """The mode open() would give a new file (0o666 less the umask): a temporary file is created 0o600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, data: str | bytes, where: str, inputs: Iterable[object] = (),
                 field: str | None = None) -> Path:
    """Write ``data`` to ``path`` whole or not at all: into a temporary file in the same folder, renamed over the
    target, so that a failed write leaves the old file (or none), never a truncated one. Checks as check_output."""
    target = check_output(path, where, inputs, field)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        mode = os.stat(target).st_mode & 0o7777 if target.exists() else _new_file_mode()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".rooflm-", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise _os_error("write", where, exc, field) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return Path(path)
