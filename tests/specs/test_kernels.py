"""data/kernels.toml as data: a figure taken over from another family says which, and equals it."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from rooflm.specs.kernels import KERNELS_FILE

# "assumed: as hopper.dense (...)" or "assumed: blackwell.fp8's fractions (...)": the class and family copied.
COPIED_FROM = re.compile(r'^assumed: (?:as )?([a-z0-9]+)\.("[^"]+"|[a-z0-9-]+)')


def _figures() -> dict[tuple[str, str, str], dict[str, Any]]:
    with KERNELS_FILE.open("rb") as fh:
        table = tomllib.load(fh)
    return {(cls, family, field): figure for cls, families in table.items() if cls not in ("families", "classes")
            for family, fields in families.items() for field, figure in fields.items()}


def test_a_figure_copied_from_another_family_equals_it() -> None:
    """blackwell.w4a16's memory once said "hopper.w4a16's Marlin fraction" (0.55) and held 0.70: a transfer that
    names its family must carry that family's figure (a compute curve: its rows and values)."""
    figures = _figures()
    copies = 0
    for (cls, family, field), figure in figures.items():
        match = COPIED_FROM.match(figure["source"])
        if match is None:
            continue
        src_cls, src_family = match.group(1), match.group(2).strip('"')
        source = figures[(src_cls, src_family, field)]
        assert (figure.get("rows"), figure["value"]) == (source.get("rows"), source["value"]), (cls, family, field)
        copies += 1
    # Counted in the file with grep: the "assumed: as <class>.<family>" and "assumed: <class>.<family>'s" sources.
    assert copies == 20
