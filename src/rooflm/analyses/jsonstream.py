"""A JSON document whose ``points`` list is written piece by piece, byte for byte as ``json.dumps(doc, indent=2)``
would write it, so that a sweep of a million points never holds its document (nor a million dicts) in memory.

A piece is a table of columns: each column is the JSON text of one field for every point of the piece,
rendered per column (one ``repr`` per value, no per-point dict): what makes the stream fast as well as small.
Non-finite floats are written as ``null``, as ``analyze`` reports an undefined figure (e.g. TPOT with gen_len 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

import numpy as np

INDENT = 2
POINT_INDENT = 2 * INDENT  # a point is an item of the top-level "points" list


def scalars(values: np.ndarray) -> list[str]:
    """Each value as ``json.dumps`` writes it (floats by ``float.__repr__``, as the json module does)."""
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind == "b":
        return np.where(values, "true", "false").tolist()
    if kind in "iu":
        return list(map(str, values.tolist()))
    if kind == "f":
        text = list(map(float.__repr__, values.tolist()))
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            text[i] = "null"
        return text
    as_json = {v: json.dumps(v) for v in set(values.tolist())}  # few distinct strings (bound names)
    return [as_json[v] for v in values.tolist()]


def finite_or_none(value: object) -> object:
    """A Python value as the document holds it: a non-finite float becomes None (JSON null)."""
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _template(keys: Sequence[str], indent: int) -> str:
    """'{ "k": %s, ... }' laid out as json.dumps(indent=2) lays out a dict at nesting ``indent``."""
    inner = " " * (indent + INDENT)
    body = ",\n".join(f"{inner}{json.dumps(k).replace('%', '%%')}: %s" for k in keys)
    return "{\n" + body + "\n" + " " * indent + "}"


def objects(columns: Mapping[str, Sequence[str]], indent: int = POINT_INDENT) -> list[str]:
    """One JSON object per row from columns of rendered values (``%`` in a value is safe: it is a format argument)."""
    keys = list(columns)
    if not keys:
        return []
    template = _template(keys, indent)
    return [template % row for row in zip(*columns.values(), strict=True)]


def string_lists(members: Sequence[Sequence[str]], indent: int) -> list[str]:
    """Lists of strings laid out as json.dumps(indent=2) lays them out at nesting ``indent``."""
    inner = " " * (indent + INDENT)
    cache: dict[tuple[str, ...], str] = {}
    out = []
    for m in members:
        key = tuple(m)
        if key not in cache:
            cache[key] = "[]" if not key else \
                "[\n" + ",\n".join(inner + json.dumps(s) for s in key) + "\n" + " " * indent + "]"
        out.append(cache[key])
    return out


def write_document(out: TextIO, head: Mapping[str, object], pieces: Iterable[Sequence[str]]) -> None:
    """``head`` followed by ``"points": [...]`` (the last key), the points given as pieces of rendered objects."""
    opening = json.dumps({**head, "points": []}, indent=INDENT, allow_nan=False)
    empty = "[]\n}"
    assert opening.endswith(empty)
    out.write(opening[: -len(empty)] + "[")
    first = True
    for piece in pieces:
        if not piece:
            continue
        out.write(("\n" if first else ",\n") + " " * POINT_INDENT)
        out.write((",\n" + " " * POINT_INDENT).join(piece))
        first = False
    out.write("]\n}\n" if first else "\n" + " " * INDENT + "]\n}\n")
