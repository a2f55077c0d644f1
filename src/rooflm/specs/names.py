"""Name matching shared by the catalogs: case-insensitive, separator-insensitive, with suggestions."""

from __future__ import annotations

import difflib
import re


def normalise_name(name: str) -> str:
    """'H100_SXM5 80GB' and 'h100-sxm5-80gb' are the same name."""
    return re.sub(r"[\s_.]+", "-", name.strip().lower())


def closest(name: str, candidates: list[str], canonical: dict[str, str] | None = None) -> list[str]:
    """Up to three catalog names closest to ``name`` (aliases mapped to their canonical name)."""
    hits = difflib.get_close_matches(normalise_name(name), candidates, n=6, cutoff=0.5)
    out: list[str] = []
    for hit in hits:
        real = canonical.get(hit, hit) if canonical else hit
        if real not in out:
            out.append(real)
    return out[:3]
