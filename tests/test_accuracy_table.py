"""The table of published end-to-end measurements (benchmarks/data/published_e2e.csv) and the script that
checks rooflm against it (benchmarks/accuracy.py).

These tests check the table's format and the script's bookkeeping, not the error targets: how close the
calibrated model lands is a benchmark result (benchmarks/RESULTS-accuracy.md), not a unit test.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType

import pytest

import rooflm

ROOT = Path(__file__).resolve().parents[1]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rooflm_bench_accuracy", ROOT / "benchmarks" / "accuracy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


acc = _load_script()
ROWS = acc.load_rows()


def _raw(**over: str) -> dict[str, str]:
    """A valid CSV record (a copy of the table's first row) with some columns replaced."""
    with acc.DEFAULT_TABLE.open(newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    return {**first, **over}


def _write(path: Path, records: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=acc.COLUMNS)
        w.writeheader()
        w.writerows(records)
    return path


# --- the table ----------------------------------------------------------------------------------------


def test_table_has_every_group_and_enough_rows() -> None:
    assert len(ROWS) >= 30
    for group in acc.GROUPS:
        assert any(r.group == group for r in ROWS), group


def test_every_row_has_a_source_and_a_unit() -> None:
    for r in ROWS:
        assert r.source_url.startswith("https://"), r.id
        assert r.source_note.strip(), r.id
        # the metric name carries the unit: tokens per second (…_per_s…) for rates, seconds (…_s) for times
        if r.metric in acc.RATE_METRICS:
            assert "_per_s" in r.metric, r.id
        else:
            assert r.metric in acc.TIME_METRICS and r.metric.endswith("_s"), r.id


def test_names_resolve_in_rooflm() -> None:
    for model in {r.model for r in ROWS}:
        rooflm.load_model(model)
    for hardware in {r.hardware for r in ROWS}:
        rooflm.load_hardware(hardware)
    for quant, kv in {(r.quant, r.kv_dtype) for r in ROWS}:
        rooflm.load_scheme(quant, kv)


def test_quantization_comparisons_include_int4_and_w4a8_against_fp8() -> None:
    alts = {(r.comparison, r.quant) for r in ROWS if r.comparison_role == "alt"}
    refs = {r.comparison: r.quant for r in ROWS if r.comparison_role == "ref"}
    # fp8 is the reference the founding question asks about; bf16 references (vLLM's Marlin rows) are counted apart
    assert set(refs.values()) == {"fp8", "bf16"}
    against_fp8 = [q for c, q in alts if refs[c] == "fp8"]
    assert against_fp8.count("w4a16") >= 4
    assert against_fp8.count("w4a8") >= 4
    # both members of a pair describe the same setup apart from the scheme
    for r in ROWS:
        if r.comparison_role == "alt":
            ref = next(x for x in ROWS if x.comparison == r.comparison and x.comparison_role == "ref")
            same = ("model", "hardware", "tp", "ep", "phase", "batch", "prompt_len", "gen_len", "metric", "source_url")
            assert all(getattr(r, k) == getattr(ref, k) for k in same), r.id


@pytest.mark.parametrize(("over", "column"), [
    ({"source_url": ""}, "source_url"),
    ({"source_url": "see the blog"}, "source_url"),
    ({"metric": "tokens"}, "metric"),
    ({"phase": "decoding"}, "phase"),
    ({"group": "other"}, "group"),
    ({"value": "-3"}, "value"),
    ({"value": "fast"}, "value"),
    ({"batch": "0"}, "batch"),
    ({"tp": "two"}, "tp"),
    ({"comparison": "x", "comparison_role": ""}, "comparison"),
])
def test_malformed_rows_are_refused_naming_the_column(over: dict[str, str], column: str) -> None:
    with pytest.raises(acc.TableError, match=column):
        acc.parse_row(_raw(**over), 7)


def test_duplicate_ids_and_pairs_without_a_reference_are_refused(tmp_path: Path) -> None:
    row = _raw(comparison="", comparison_role="")
    with pytest.raises(acc.TableError, match="duplicate"):
        acc.load_rows(_write(tmp_path / "dup.csv", [row, row]))
    alt = _raw(id="a", comparison="c1", comparison_role="alt")
    with pytest.raises(acc.TableError, match="'ref'"):
        acc.load_rows(_write(tmp_path / "noref.csv", [alt]))


# --- the script ---------------------------------------------------------------------------------------


def test_script_runs_on_three_rows() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert acc.main(["--limit", "3", "--json"]) == 0
    doc = json.loads(out.getvalue())
    assert doc["summary"]["rows"] == 3
    assert [r["id"] for r in doc["rows"]] == [r.id for r in ROWS[:3]]
    for r in doc["rows"]:
        assert r["skipped"] is None
        assert r["predicted"] > 0
        assert math.isclose(r["error"], r["predicted"] / r["value"] - 1.0)


def test_tables_are_printed() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert acc.main(["--limit", "3"]) == 0
    text = out.getvalue()
    assert "error per group" in text
    assert "right side of 1" in text


def test_a_row_rooflm_cannot_model_is_skipped_with_its_reason(tmp_path: Path) -> None:
    table = _write(tmp_path / "t.csv", [_raw(comparison="", comparison_role=""),
                                         _raw(id="unknown", model="no-such-model", comparison="", comparison_role="")])
    results, summary = acc.evaluate(acc.load_rows(table), progress=False)
    assert len(results) == 2  # reported, not dropped
    assert results[1].skipped is not None and "no-such-model" in results[1].skipped
    assert (summary.predicted, summary.skipped) == (1, 1)


def _result(rid: str, cid: str, role: str, metric: str, measured: float, predicted: float) -> object:
    row = acc.parse_row(_raw(id=rid, comparison=cid, comparison_role=role, metric=metric, value=str(measured)), 2)
    return acc.Result(row, predicted=predicted, error=predicted / measured - 1.0)


def test_comparison_sides() -> None:
    # rates: alt 90 vs ref 100 tokens/s measured (ratio 0.9, alt slower); predicted 120 vs 100 (1.2): wrong side
    rate = [_result("r", "c", "ref", "output_tokens_per_s", 100, 100), _result("a", "c", "alt", "output_tokens_per_s", 90, 120)]
    # times: alt 2 s vs ref 1 s measured is a speed ratio 1/2; predicted 1.5 s vs 1 s is 1/1.5: same side
    time = [_result("r2", "d", "ref", "e2e_latency_s", 1, 1), _result("a2", "d", "alt", "e2e_latency_s", 2, 1.5)]
    pairs = {p.comparison: p for p in acc.comparison_pairs(rate + time)}
    assert pairs["c"].measured_ratio == pytest.approx(0.9)
    assert pairs["c"].predicted_ratio == pytest.approx(1.2)
    assert pairs["c"].right_side is False
    assert pairs["d"].measured_ratio == pytest.approx(0.5)
    assert pairs["d"].predicted_ratio == pytest.approx(1 / 1.5)
    assert pairs["d"].right_side is True
    # counted per reference scheme (both refs are the default row's scheme here): one right of two
    assert acc.pairs_by_reference(list(pairs.values())) == {pairs["c"].reference_quant: [1, 2]}


def test_group_statistics() -> None:
    # errors +10%, −30%, +20% in one group: median |error| 20%, worst 30% (row b)
    rows = [_result(i, "", "", "tpot_s", 1.0, 1.0 + e) for i, e in (("a", 0.1), ("b", -0.3), ("c", 0.2))]
    stats = {g.group: g for g in acc.group_stats(rows)}
    g = stats[rows[0].row.group]
    assert g.median_abs_error == pytest.approx(0.2)
    assert g.worst_abs_error == pytest.approx(0.3)
    assert g.worst_id == "b"


@pytest.mark.parametrize(("engine_cell", "choice", "keyword"), [
    ("TensorRT-LLM 0.15", "row", "trtllm"), ("vLLM (nightly CI)", "row", "vllm"), ("SGLang 0.5", "row", "sglang"),
    ("NIM 1.8.0", "row", None),  # NIM runs one of several backends: no engine named
    ("TensorRT-LLM 0.15", "none", None), ("NIM 1.8.0", "sglang", "sglang"),
])
def test_engine_choice_per_row(engine_cell: str, choice: str, keyword: str | None) -> None:
    assert acc.row_engine(acc.parse_row(_raw(engine=engine_cell), 2), choice) == keyword


def test_an_engine_prices_the_rows_dense_gemms_from_its_tables(tmp_path: Path) -> None:
    """The first row, run in bf16 on H100 SXM: the vLLM tables give another prediction than the generic families."""
    table = _write(tmp_path / "t.csv", [_raw(comparison="", comparison_role="", hardware="h100-sxm", quant="bf16")])
    rows = acc.load_rows(table)
    (generic,), plain = acc.evaluate(rows, progress=False)
    (engine,), summary = acc.evaluate(rows, progress=False, engine="vllm")
    assert (plain.engine, summary.engine) == ("none", "vllm")
    assert generic.predicted is not None and engine.predicted is not None
    assert engine.predicted != generic.predicted
