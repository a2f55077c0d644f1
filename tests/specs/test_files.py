"""Files a user names: read only if regular and within a bound, written whole and never over an input; every refusal
one line naming the path."""

from __future__ import annotations

import errno
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rooflm.errors import InvalidInputError
from rooflm.specs import files
from rooflm.specs.files import MAX_SPEC_BYTES, check_output, read_limited, read_text_limited, write_atomic


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging: a read that waits on a pipe is interrupted after 5 s."""
    def hung(*_: object) -> None:
        raise AssertionError("the read waited on a named pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _refused(path: str | Path, match: str, limit: int = MAX_SPEC_BYTES) -> InvalidInputError:
    with pytest.raises(InvalidInputError, match=match) as caught:
        read_limited(path, limit, f"profile {path}", "a profile", field="profile")
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.field == "profile"
    return caught.value


def test_a_regular_file_within_the_bound_is_read(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_bytes(b"x" * 100)
    assert read_limited(p, 100, "a", "a file") == b"x" * 100  # exactly at the bound: accepted


def test_one_byte_past_the_bound_is_refused_naming_the_bound(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_bytes(b"x" * (MAX_SPEC_BYTES + 1))
    _refused(p, "over 1 MiB")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_are_refused_unread(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    _refused(device, "character device")


def test_a_named_pipe_is_refused_without_waiting(tmp_path: Path, alarm: None) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    _refused(pipe, "named pipe")


def test_a_folder_a_missing_file_and_a_nul_byte_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "is a folder")
    _refused(tmp_path / "missing.toml", "no such file")
    with pytest.raises(InvalidInputError, match="not a valid file name"):
        read_limited("a\x00b", 10, "a", "a file")


def test_no_permission_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "a.toml"
    p.write_text("x")

    def denied(*_: object, **__: object) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files.os, "open", denied)
    _refused(p, "cannot read .*Permission denied")


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_text_limited(p, 10, str(p), "a table")


# ---------------------------------------------------------------- writes


def _write_refused(path: Path, match: str, inputs: tuple[object, ...] = ()) -> None:
    with pytest.raises(InvalidInputError, match=match) as caught:
        write_atomic(path, "new", str(path), inputs, field="output")
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_write_goes_through_whole_with_an_ordinary_mode(tmp_path: Path) -> None:
    p = tmp_path / "out.toml"
    write_atomic(p, "first", str(p))
    mask = os.umask(0)
    os.umask(mask)
    assert p.read_text() == "first" and p.stat().st_mode & 0o777 == 0o666 & ~mask
    p.chmod(0o640)
    write_atomic(p, b"second", str(p))
    assert p.read_text() == "second" and p.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode
    assert [q.name for q in tmp_path.iterdir()] == ["out.toml"]  # no temporary file left


def test_a_write_never_goes_over_an_input(tmp_path: Path) -> None:
    table = tmp_path / "self.csv"
    table.write_text("keep")
    _write_refused(table, "one of this run's inputs", (str(table),))
    link = tmp_path / "link.csv"
    link.symlink_to(table)
    _write_refused(link, "one of this run's inputs", (table,))
    hard = tmp_path / "hard.csv"
    os.link(table, hard)  # another name, the same inode
    _write_refused(hard, "one of this run's inputs", (table,))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    _write_refused(folder / "config.json", "one of this run's inputs", (str(folder),))  # a model folder's config
    assert table.read_text() == "keep" and (folder / "config.json").read_text() == "{}"
    write_atomic(tmp_path / "other.csv", "x", "other", (table, "llama-3.1-8b"))  # names that are no file are ignored


def test_every_write_error_is_one_line_naming_the_path(tmp_path: Path) -> None:
    _write_refused(tmp_path, "it is a folder")
    _write_refused(tmp_path / "missing" / "x.toml", "does not exist")
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "gone" / "x.toml")
    _write_refused(dangling, "does not exist .a link to")
    _write_refused(tmp_path / ("a" * 300), "too long")
    under_a_file = tmp_path / "file"
    under_a_file.write_text("")
    _write_refused(under_a_file / "x.toml", "not a folder")
    if os.path.exists("/dev/null"):
        with pytest.raises(InvalidInputError, match="character device"):
            check_output("/dev/null", "/dev/null")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "out.toml"
    p.write_text("old")

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", full)
    _write_refused(p, "No space left")
    assert p.read_text() == "old" and [q.name for q in tmp_path.iterdir()] == ["out.toml"]


def test_a_read_only_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a user without write permission on the folder sees it (root writes anywhere: the OS refusal is simulated)."""
    def denied(*_: object, **__: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    _write_refused(tmp_path / "out.toml", "cannot write .*Permission denied")


def test_a_read_only_file_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file its owner made read-only is not replaced (renaming over it would succeed, the folder being writable);
    root may write anything, so the OS's answer is simulated."""
    p = tmp_path / "out.toml"
    p.write_text("kept")
    real_access = os.access
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != p and real_access(path, mode))
    _write_refused(p, "read-only")
    assert p.read_text() == "kept"
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != tmp_path and real_access(path, mode))
    _write_refused(tmp_path / "new.toml", "permission denied .folder")
