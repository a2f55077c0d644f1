"""Reading a user's spec file (a config.json, a hardware TOML): bounded in size, and one-line errors for what the
operating system refuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rooflm.errors import InvalidInputError


def read_limited(path: Path, limit: int, where: str, expected: str) -> bytes:
    """The file's bytes, refused past ``limit`` bytes (``expected`` says what the file should be, in the message)."""
    try:
        if path.stat().st_size > limit:
            raise InvalidInputError(f"{where} is larger than {limit:,} bytes; is it {expected}?")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {where}: {exc.strerror}") from None


def path_test(text: str, test: Callable[[Path], bool]) -> bool:
    """``test(Path(text))``, or False where the OS cannot even look the name up (ENAMETOOLONG, a NUL byte): a name
    too long to be a file is a catalog name, unknown or not."""
    try:
        return test(Path(text))
    except (OSError, ValueError):
        return False
