"""The vectorised quant comparison against single analyses, schemes a device cannot run, and the fit flag."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.analyses import quant_comparison as economics
from rooflm.analyses.quant_comparison import BREAKDOWN, compare_quant
from rooflm.cli import app
from rooflm.errors import InvalidInputError


def test_each_point_equals_a_single_analysis() -> None:
    # rooflm.analyze evaluates one point with its own report assembly; the comparison's columns must agree.
    cmp = compare_quant(schemes=["bf16", "w4a16", "fp8+kv-fp8"], batch=[1, 64, 2048], context=[128, 32768],
                        efficiency="calibrated")
    points = cmp.points()
    assert len(points) == 3 * 3 * 2
    base = {(p["batch"], p["context"]): p["time_s"] for p in points if p["scheme"] == "bf16"}
    for p in points[::5]:  # every scheme, several batches and both contexts
        scheme, _, kv = str(p["scheme"]).partition("+kv-")
        r = rooflm.analyze(batch=p["batch"], context=p["context"], quant=scheme, kv_dtype=kv or None,
                           efficiency="calibrated")
        assert p["time_s"] == pytest.approx(r.totals.time_s, rel=1e-12)
        assert p["speedup"] == pytest.approx(base[p["batch"], p["context"]] / r.totals.time_s, rel=1e-12)
        assert p["bound"] == r.totals.bound
        assert p["fits"] == r.memory.fits
        for k in BREAKDOWN:
            expected = r.totals.overhead_time_s if k == "overhead" else r.totals.time_by_class[k]
            assert p["time_by_class_s"][k] == pytest.approx(expected, rel=1e-12, abs=1e-18)


def test_fits_flags_the_points_that_do_not_fit() -> None:
    # Llama-3.1-8B bf16 KV: 32 layers × 8 heads × 128 × 2 (K, V) × 2 B = 128 KiB per token; weights ≤ 16 GB.
    # Points (batch-major): 1 × 128 and 1 × 32,768 tokens (4 GiB) fit in 80 GB; 2048 × 128 tokens = 32 GiB fits;
    # 2048 × 32,768 tokens = 8 TiB does not.
    cmp = compare_quant(schemes=["bf16", "w4a16"], batch=[1, 2048], context=[128, 32768])
    for scheme in ("bf16", "w4a16"):
        assert cmp.fits[scheme].tolist() == [True, True, True, False]
        assert [p["fits"] for p in cmp.points() if p["scheme"] == scheme] == [True, True, True, False]


def test_schemes_the_device_has_no_roof_for_are_skipped_with_a_note() -> None:
    # An A100 has bf16/fp16/int8 tensor-core math but no fp8: the default schemes used to fail on fp8.
    cmp = compare_quant(hardware="a100-sxm", batch=[1, 64], context=[128])
    assert [s.scheme for s in cmp.skipped] == ["fp8"]
    assert "no fp8 compute roof" in cmp.skipped[0].reason
    assert list(cmp.results) == ["bf16", "w4a16", "w4a8"]
    doc = cmp.to_json_dict()
    assert doc["skipped"] == [{"scheme": "fp8", "reason": cmp.skipped[0].reason}]
    assert {p["scheme"] for p in doc["points"]} == {"bf16", "w4a16", "w4a8"}


def test_a_baseline_the_device_cannot_run_is_still_an_error() -> None:
    with pytest.raises(InvalidInputError, match="no fp8 compute roof"):
        compare_quant(hardware="a100-sxm", schemes=["fp8", "w4a16"], batch=[1], context=[128])


def test_cli_quant_on_a100_lists_the_skipped_scheme() -> None:
    result = CliRunner().invoke(app, ["quant", "-H", "a100-sxm", "--batch", "1,64", "--context", "128", "--json"])
    assert result.exit_code == 0, result.output
    assert [s["scheme"] for s in json.loads(result.stdout)["skipped"]] == ["fp8"]
    csv = CliRunner().invoke(app, ["quant", "-H", "a100-sxm", "--batch", "1,64", "--context", "128", "--csv"])
    assert csv.exit_code == 0 and "fp8 skipped" in csv.stderr and "fp8" not in csv.stdout


def test_summaries_per_context_equal_separate_comparisons() -> None:
    # One comparison over unsorted, repeated contexts summarises each context as a comparison of that context
    # alone would (the repeated one's points are taken twice per batch, as a mask over the grid takes them).
    batches = [1, 8, 64, 512, 2048]
    together = compare_quant(schemes=["bf16", "w4a16"], batch=batches, context=[4096, 128], efficiency="calibrated")
    alone = [compare_quant(schemes=["bf16", "w4a16"], batch=batches, context=[c], efficiency="calibrated").summaries[0]
             for c in (128, 4096)]
    assert together.summaries == alone
    prefill = compare_quant(schemes=["bf16", "fp8"], phase="prefill", batch=[1, 4], prompt_len=[256, 2048])
    assert [(s.context, s.prompt_len) for s in prefill.summaries] == [(256, 256), (2048, 2048)]


def test_streamed_json_and_csv_are_the_documents_of_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(economics, "_ROWS_PER_PIECE", 3)  # pieces that split each scheme's points
    cmp = compare_quant(model="qwen3-30b-a3b", schemes=["bf16", "w4a16", "fp8"], batch=[1, 256], context=[128, 8192])
    buf = io.StringIO()
    cmp.write_json(buf)
    assert buf.getvalue() == json.dumps(cmp.to_json_dict(), indent=2, allow_nan=False) + "\n"
    rows = list(csv.DictReader(io.StringIO(cmp.to_csv())))
    assert len(rows) == 3 * 4 and [r["scheme"] for r in rows[::4]] == ["bf16", "w4a16", "fp8"]
    assert [float(r["time_s"]) for r in rows] == [p["time_s"] for p in cmp.points()]


def test_an_oversize_comparison_is_refused_with_its_count() -> None:
    # 4,096 batches × 1,000 contexts × 4 schemes = 16,384,000 sweeps points, over the 10^7 held in memory.
    with pytest.raises(InvalidInputError, match="16,384,000") as info:
        compare_quant(batch=range(1, 4097), context=range(1, 1001))
    assert info.value.field == "batch"
