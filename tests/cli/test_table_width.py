"""Tables fit the terminal: at 80 columns (a terminal's, or COLUMNS when piped) every header is whole and no line
runs past the width; the least needed columns are left out and named; --wide shows every one."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rooflm.cli import app

SERVING = ["serving", "--concurrency", "1,8", "--requests", "40", "--prompt-len", "128", "--gen-len", "8"]
PLAN = ["plan", "--gpus", "2", "--quant", "fp8", "--kv-dtype", "fp8", "--max-running", "16",
        "--max-num-batched-tokens", "2048", "--concurrency", "1,8", "--workers", "1", "--tpot-slo", "0.05"]
COMMANDS = {"serving": SERVING, "plan": PLAN, "regimes": ["regimes"], "analyze": ["analyze"],
            "quant": ["quant", "--batch", "1,64"]}
# Every column each table has (its builder's list), which --wide must show.
ALL_COLUMNS = {
    "serving": ["concurrency", "TTFT ms", "TTFT p99", "TPOT ms", "TPOT p99", "e2e s", "e2e p99", "tok/s", "tok/s/GPU",
                "tok/s/user", "batch", "KV use", "bound"],
    "plan": ["tok/s/user", "e2e tok/s/user", "tok/s/GPU", "TTFT ms", "TPOT ms", "layout", "quant", "KV", "spec",
             "max run", "tok/step", "users", "bound", "targets"],
    "regimes": ["regime", "workload", "FLOP/B", "bound", "level", "step time", "vs bf16", "w4a16 vs bf16",
                "rule of thumb", "agrees"],
    "analyze": ["operator", "×", "FLOPs", "bytes", "AI", "time", "share", "bound"],
    "quant": ["batch", "context", "bf16 time", "fp8", "w4a16", "w4a8", "still memory-bound"],
}


def _run(argv: list[str], columns: str | None) -> str:
    result = CliRunner().invoke(app, argv, env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    return result.stdout


def _headers(text: str) -> list[str]:
    """The header cells of the main table: the ┃-lines between its top border and the line under its header."""
    lines = text.splitlines()
    tops = [i for i, line in enumerate(lines) if line.startswith("┏")]
    # analyze prints its operators table after the step panel; every other command one table
    top = tops[-1]
    end = next(i for i in range(top, len(lines)) if lines[i].startswith("┡"))
    rows = [[c.strip() for c in line.strip("┃").split("┃")] for line in lines[top + 1:end]]
    return [" ".join(p for p in parts if p) for parts in zip(*rows, strict=True)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_at_80_columns_every_header_is_whole_and_nothing_runs_past(command: str) -> None:
    text = _run(COMMANDS[command], "80")
    headers = _headers(text)
    assert headers and not [h for h in headers if "…" in h]
    assert set(headers) <= set(ALL_COLUMNS[command])  # whole names of its own columns, none cut
    table = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert max(len(line) for line in table) <= 80
    hidden = [c for c in ALL_COLUMNS[command] if c not in headers]
    if hidden:  # what is left out is named (least needed first), with the way to see it
        words = " ".join(text.split())  # the caption wraps at the width
        assert "not shown at 80 columns:" in words and "(--wide shows every column)" in words
        said = words.split("not shown at 80 columns:")[1].split("(--wide")[0].strip()
        assert sorted(said.split(", ")) == sorted(hidden)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wide_shows_every_column(command: str) -> None:
    text = _run([*COMMANDS[command], "--wide"], "80")
    assert _headers(text) == ALL_COLUMNS[command]
    assert "not shown" not in text


def test_the_narrow_serving_table_keeps_the_per_gpu_and_per_user_throughputs_apart() -> None:
    for width in ("80", "120"):
        headers = _headers(_run(SERVING, width))
        assert {"tok/s/GPU", "tok/s/user", "TTFT ms", "TPOT ms"} <= set(headers)


def test_piped_with_no_columns_prints_every_column_at_its_natural_width() -> None:
    """A file has no width: with COLUMNS unset the table is whole."""
    assert _headers(_run(["regimes"], None)) == ALL_COLUMNS["regimes"]
