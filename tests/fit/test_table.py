"""The measurement table: documented example reads, defaults apply, malformed rows are refused by line and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rooflm.errors import InvalidInputError
from rooflm.fit.table import read_table

EXAMPLE = Path(__file__).parents[2] / "examples" / "measurements.csv"
HEADER = "model,phase,batch,context,tpot_s\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    p = tmp_path / "m.csv"
    p.write_text("# a comment\n" + header + body)
    return p


def test_example_reads() -> None:
    points = read_table(EXAMPLE)
    assert len(points) == 28
    assert {p.quantity for p in points} == {"tpot_s", "ttft_s", "tokens_per_s"}


def test_defaults_and_throughput_conversion(tmp_path: Path) -> None:
    p = _csv(tmp_path, "\n", "tokens_per_s,batch\n2000,64\n")
    (point,) = read_table(p)
    # CLI defaults: llama-3.1-8b, decode, prompt_len 1024, context = prompt_len.
    assert (point.model, point.phase, point.prompt_len, point.context) == ("llama-3.1-8b", "decode", 1024, 1024)
    assert point.seconds == pytest.approx(64 / 2000)  # a decode step makes one token per sequence


@pytest.mark.parametrize(("body", "where"), [
    ("llama-3.1-8b,decode,eight,1024,0.01\n", "line 3, column batch"),
    ("llama-3.1-8b,decode,8,1024,-1\n", "line 3, column tpot_s"),
    ("llama-3.1-8b,decode,8,1024,\n", "line 3, column measured_s"),
    ("llama-3.1-8b,decode,8,1024,0.01\nllama-3.1-8b,sideways,8,1024,0.01\n", "line 4, column phase"),
    ("no-such-model,decode,8,1024,0.01\n", "line 3, column model"),
    ("llama-3.1-8b,decode,8,1024,0.01,7\n", "line 3: 6 cells for 5 columns"),
    ("llama-3.1-8b,prefill,8,1024,0.01\n", "line 3, column tpot_s"),  # a prefill has no time per output token
    ("llama-3.1-8b,decode,8,99999999,0.01\n", "line 3, column context"),
])
def test_malformed_rows_name_line_and_column(tmp_path: Path, body: str, where: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        read_table(_csv(tmp_path, body))
    assert where in str(exc.value)


def test_unknown_column(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="line 2, column 'eta_memory'"):
        read_table(_csv(tmp_path, "", "eta_memory,tpot_s\n"))


def test_json_rows(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    p.write_text(json.dumps([{"phase": "prefill", "prompt-len": 512, "ttft_s": 0.02}, {"batch": 2.5, "tpot_s": 1}]))
    with pytest.raises(InvalidInputError, match="row 2, column batch: expected an integer"):
        read_table(p)
    p.write_text(json.dumps({"points": [{"phase": "prefill", "prompt-len": 512, "ttft_s": 0.02}]}))
    assert read_table(p)[0].prompt_len == 512
