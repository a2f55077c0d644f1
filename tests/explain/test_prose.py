"""The prose: every number comes from the reports, and the physics statements hold."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm import units
from rooflm.cli import app


def test_numbers_in_the_text_are_the_reports() -> None:
    e = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=64, context=4096, efficiency="ideal")  # analyze's default
    md = e.to_markdown()
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=64, context=4096)
    assert units.seconds(r.totals.time_s) in md
    assert f"{r.totals.ridge_intensity:.4g}" in md
    cb = rooflm.critical_batch("llama-3.1-8b", "h100-sxm", context=4096)
    assert f"critical batch {cb.critical_batch_unconstrained}" in md
    assert f"largest batch at this context is {r.memory.max_batch}" in md
    # Another device, other numbers: nothing is a fixed string.
    other = rooflm.explain("llama-3.1-8b", "a100-sxm", batch=64, context=4096, efficiency="ideal").to_markdown()
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


def test_memory_lists_every_part_of_the_total_and_names_the_one_that_does_not_fit() -> None:
    # Prefill of 55 × 8192 tokens of llama-3.1-8b on an H100, in chunks of 32,768 tokens (4 prompts). The engine may
    # fill 81,559 MiB × 0.9 − 1 GiB = 75,894,987,161.6 B. Weights 16.06 GB; KV cache 55·8192 tokens × 131 072 B
    # (32 layers × 8 KV heads × 128 × 2 (K, V) × 2 B) = 59.06 GB, so weights + KV = 75.12 GB fit; the activation
    # workspace of a 32,768-token chunk (≈ 2.8 GB: 84 kB per token) on top of them is what does not.
    e = rooflm.explain("llama-3.1-8b", "h100-sxm", phase="prefill", batch=55, prompt_len=8192,
                       max_num_batched_tokens=32768)
    m = e.report.memory
    assert m.capacity_bytes == pytest.approx(81_559 * 2**20 * 0.9 - 2**30)
    assert m.kv_cache_bytes == 55 * 8192 * 131_072
    md = e.to_markdown()
    memory = md[md.index("## Memory"):]
    for part in (m.weights_bytes, m.kv_cache_bytes, m.activation_bytes, m.total_bytes, m.capacity_bytes):
        assert units.nbytes(part) in memory
    assert "**does not fit**" in memory
    assert f"the activations ({units.nbytes(m.activation_bytes)}) do not fit" in memory


def test_memory_names_the_weights_when_they_alone_do_not_fit() -> None:
    # llama-3.1-70b in bf16: 70.6 B parameters × 2 B = 141 GB of weights, more than the 75.9 GB an engine may fill on
    # an H100 (81,559 MiB × 0.9 − 1 GiB).
    md = rooflm.explain("llama-3.1-70b", "h100-sxm").to_markdown()
    assert "the weights alone exceed the 75.9 GB" in md


def test_explain_takes_a_hardware_file(tmp_path: Path) -> None:
    """The levers are analysed on the same device: a file's name is not a catalog name, and a Path is not a spec."""
    shipped = Path(rooflm.__file__).parent / "data" / "hardware" / "h100-sxm.toml"
    mine = tmp_path / "my.toml"
    mine.write_text(shipped.read_text().replace('name = "h100-sxm"', 'name = "my-h100"', 1))
    result = CliRunner().invoke(app, ["explain", "--hardware", str(mine), "--batch", "8"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# llama-3.1-8b on my-h100")
    e = rooflm.explain("llama-3.1-8b", mine, batch=8)
    assert e.levers  # the same device as the catalog's H100, so the same levers
    by_name = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=8)
    assert [lv.change for lv in e.levers] == [lv.change for lv in by_name.levers]


def test_short_decode_attention_is_said_to_be_its_kernels_fixed_cost() -> None:
    # Calibrated H100, batch 1, context 1024: per layer 1024 · 8 · 128 · 2 · 2 B = 4.19 MB of KV + 16 kB of Q and O,
    # moved in 16 us (the decode-attention kernel's fixed cost) + 4.21 MB / (0.77 · 3.35 TB/s) = 17.63 us: 0.239 TB/s,
    # 7.1% of the bandwidth. At batch 64, context 4096 the 1.07 GB per layer take 432 us: 74%, no such sentence.
    short = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=1, context=1024, efficiency="calibrated")
    assert short.attention_bandwidth_share == pytest.approx(4.21e6 / 17.63e-6 / 3.35e12, rel=0.01)
    assert "moves its KV at only 7% of the memory bandwidth" in short.to_markdown()
    assert short.to_json_dict()["attention_bandwidth_share"] == short.attention_bandwidth_share
    long = rooflm.explain("llama-3.1-8b", "h100-sxm", batch=64, context=4096, efficiency="calibrated")
    assert long.attention_bandwidth_share == pytest.approx(0.74, abs=0.01)
    assert "fixed cost" not in long.to_markdown()
    # Ideal mode moves every byte at the full bandwidth.
    assert rooflm.explain("llama-3.1-8b", "h100-sxm", batch=1, context=1024,
                          efficiency="ideal").attention_bandwidth_share == \
        pytest.approx(1.0)


def test_lever_changes_are_keywords_the_markdown_spells_as_flags() -> None:
    e = rooflm.explain("mixtral-8x7b", "h100-sxm", batch=16, context=1024, dp=2, ep=2)
    by_name = {lv.lever: lv for lv in e.levers}
    # Twice the expert-parallel devices at the same batch per device: dp and ep doubled, the batch too.
    assert by_name["more expert parallelism"].change == {"dp": 4, "ep": 4, "batch": 32}
    assert by_name["KV-cache quantization"].change == {"kv_dtype": "fp8"}
    md = e.to_markdown()
    assert "| more expert parallelism | `--dp 4 --ep 4 --batch 32` |" in md
    assert "| KV-cache quantization | `--kv-dtype fp8` |" in md
    levers = e.to_json_dict()["levers"]
    assert isinstance(levers, list) and {"dp": 4, "ep": 4, "batch": 32} in [lv["change"] for lv in levers]
    link = by_name["faster interconnect"]  # a what-if of the device (EP's all-to-all): no keyword, words
    assert link.change == {} and link.change_text().startswith("links 2× faster")


def test_the_quantization_lever_gives_whole_requests_as_quant_does() -> None:
    """Decode steps favour w4a16 for Llama-3.1-70B on 2× H100 at batch 64; whole requests favour fp8 (its prefill is
    faster): the levers list both, each with the speed-up `rooflm quant` gives on a whole request."""
    from rooflm.analyses.quant_comparison import compare_quant
    from rooflm.explain.prose import explain

    e = explain("llama-3.1-70b", "h100-sxm", batch=64, tp=2)
    by_name = {lv.lever: lv for lv in e.levers}
    steps, whole = by_name["weight quantization"], by_name["weight quantization, whole requests"]
    assert steps.change == {"quant": "w4a16"} and whole.change == {"quant": "fp8"}
    v = compare_quant("llama-3.1-70b", "h100-sxm", schemes=["bf16", "fp8", "w4a16"], batch=[64], tp=2).request
    assert v is not None
    assert steps.request_speedup == pytest.approx(v.speedup["w4a16"][0], rel=1e-9)
    assert whole.request_speedup == pytest.approx(v.speedup["fp8"][0], rel=1e-9)
    assert "rooflm serving" in whole.note and "whole request" in e.to_markdown()
