"""The prose: every number comes from the reports, and the physics statements hold."""

import re

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm import units
from rooflm.cli import app


def test_numbers_in_the_text_are_the_reports() -> None:
    e = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=64, context=4096)
    md = e.to_markdown()
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=64, context=4096)
    assert units.seconds(r.totals.time_s) in md
    assert f"{r.totals.ridge_intensity:.4g}" in md
    cb = rooflm.critical_batch("llama-3.1-8b", "h100-sxm", context=4096)
    assert f"critical batch {cb.critical_batch_unconstrained}" in md
    assert f"largest batch at this context is {r.memory.max_batch}" in md
    # Another device, other numbers: nothing is a fixed string.
    other = rooflm.explain("llama-3.1-8b", "a100-sxm", batch=64, context=4096).to_markdown()
    assert units.seconds(rooflm.analyze("llama-3.1-8b", "a100-sxm", batch=64, context=4096).totals.time_s) in other
    assert units.seconds(r.totals.time_s) not in other


def test_attention_intensity_does_not_grow_with_batch_in_the_text() -> None:
    e = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=64, context=4096)
    assert e.attention_intensity_at_double_batch == pytest.approx(4.0, rel=0.01)
    assert "Batching does not raise it" in e.to_markdown()


def test_levers_are_ranked_and_kv_quantization_leads_the_weight_levers_at_long_context() -> None:
    e = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=64, context=32768)
    gains = [lv.throughput_gain for lv in e.levers]
    assert gains == sorted(gains, reverse=True)
    by_name = {lv.lever: lv for lv in e.levers}
    # At 32k context, batch 64, attention is most of the step: the KV cache is the lever, int4 weights less so.
    assert by_name["KV-cache quantization"].speedup > by_name["weight quantization"].speedup


def test_moe_text_states_tokens_per_expert_and_the_ep_argument() -> None:
    e = rooflm.explain("mixtral-8x7b", "h100-sxm", batch=256, context=1024, dp=8, ep=8)
    md = e.to_markdown()
    assert e.report.moe is not None
    assert f"each seeing {e.report.moe.tokens_per_expert:.3g} tokens" in md
    assert "not the experts becoming more memory-bound" in md
    assert re.search(r"E/k = 4×", md)


def test_explain_cli_markdown_and_json() -> None:
    runner = CliRunner()
    md = runner.invoke(app, ["explain", "--batch", "8"])
    assert md.exit_code == 0 and md.stdout.startswith("# llama-3.1-8b on h100-sxm")
    js = runner.invoke(app, ["explain", "--batch", "8", "--json"])
    assert js.exit_code == 0 and '"levers"' in js.stdout and '"regimes"' in js.stdout
