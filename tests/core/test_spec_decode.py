"""Speculative decoding and MTP: a decode step verifies k drafted tokens (k + 1 rows per sequence)
and emits 1 + Σ_i Π_{j≤i} p_j tokens on average; the draft (a small model or an MTP layer) runs k times per step."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import rooflm
from rooflm.analyses.analyze import analyze
from rooflm.cli import app
from rooflm.core.inputs import setup
from rooflm.errors import InvalidInputError, RooflmError
from rooflm.serving.api import serve_traffic
from rooflm.specs.hf_config import from_hf_config
from rooflm.web.schemas import AnalyzeBody

H100_BANDWIDTH = 3.35e12  # NVIDIA H100 SXM datasheet, bytes/s

# Llama-3.2-1B's published config.json (meta-llama/Llama-3.2-1B): the draft model of the worked example.
LLAMA_3_2_1B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
    "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
    "vocab_size": 128256, "tie_word_embeddings": True, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "torch_dtype": "bfloat16",
}


@pytest.fixture(scope="module")
def draft_1b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llama-3.2-1b") / "config.json"
    path.write_text(json.dumps(LLAMA_3_2_1B))
    return path


@pytest.mark.parametrize(("acceptance", "k", "expected"), [
    (0.8, 3, 2.952),  # 1 + 0.8 + 0.64 + 0.512 = (1 − 0.8^4) / (1 − 0.8) = 0.5904 / 0.2
    ("0.8,0.6,0.4", 3, 2.472),  # 1 + 0.8 + 0.8·0.6 + 0.8·0.6·0.4 = 1 + 0.8 + 0.48 + 0.192
    (1.0, 3, 4.0),  # every draft accepted: k + 1
    (0.0, 5, 1.0),  # none: the bonus token only
    ([0.5, 1.0], 2, 2.0),  # 1 + 0.5 + 0.5
])
def test_tokens_per_step(acceptance: object, k: int, expected: float) -> None:
    r = analyze("llama-3.1-8b", "h100-sxm", spec_tokens=k, acceptance=acceptance)  # type: ignore[arg-type]
    assert r.totals.tokens_per_step == pytest.approx(expected)
    assert r.totals.effective_tpot_s == pytest.approx(r.totals.time_s / expected)
    assert r.totals.tokens_per_s == pytest.approx(expected / r.totals.time_s)  # batch 1


def test_off_by_default_and_prefill_has_no_tokens_per_step() -> None:
    r = analyze("llama-3.1-8b", "h100-sxm")
    assert r.totals.tokens_per_step == 1.0 and r.totals.effective_tpot_s == r.totals.time_s
    assert not any(o.name.startswith("draft.") for o in r.operators)
    assert analyze("llama-3.1-8b", "h100-sxm", phase="prefill").totals.tokens_per_step is None


def test_verify_step_reads_the_cache_once_for_its_k_plus_1_queries() -> None:
    plain = {o.name: o for o in analyze("llama-3.1-8b", "h100-sxm", batch=4, context=4096).operators}
    spec = {o.name: o for o in analyze("llama-3.1-8b", "h100-sxm", batch=4, context=4096, spec_tokens=3,
                                       acceptance=0.7).operators}
    assert spec["attention"].kv_bytes == pytest.approx(plain["attention"].kv_bytes)
    assert spec["attention"].flops == pytest.approx(4 * plain["attention"].flops)  # 4 query rows per sequence
    assert spec["qkv_proj"].weight_bytes == pytest.approx(plain["qkv_proj"].weight_bytes)
    assert spec["qkv_proj"].flops == pytest.approx(4 * plain["qkv_proj"].flops)
    assert spec["lm_head"].flops == pytest.approx(4 * plain["lm_head"].flops)  # logits for every verified row
    # New KV written for all 4 rows of each sequence.
    assert spec["kv_cache_write"].kv_bytes == pytest.approx(4 * plain["kv_cache_write"].kv_bytes)


def test_mtp_draft_is_one_target_layer_per_drafted_token() -> None:
    r = analyze("deepseek-v3", "h200", tp=8, spec_tokens=2, acceptance=0.8, draft="mtp")
    ops = {o.name: o for o in r.operators}
    target = ops["input_norm"]
    assert target.count == 61  # DeepSeek-V3's layers
    assert ops["draft.input_norm"].count == 2  # one layer, run once per drafted token
    assert ops["draft.eh_proj"].weight_shape == (2 * 7168, 7168)  # [hidden; embedding] → hidden
    assert ops["draft.lm_head"].count == 2  # the shared head, once per drafted token
    assert ops["draft.attention_latent"].flops == pytest.approx(2 / 61 * ops["attention_latent"].flops / 3)


def test_speed_up_at_batch_1_memory_bound(draft_1b: Path) -> None:
    """Llama-3.1-8B on H100 at batch 1, context 1024, k = 3, p = 0.8, a Llama-3.2-1B draft. By hand, memory-bound:
    target step reads 8,030,261,248 − 525,336,576 (the embedding table is only looked up) = 7,504,924,672 weights
    × 2 B = 15.010 GB + KV 1024 × 32 layers × 2 × 8 × 128 × 2 B = 0.134 GB → 15.144 GB / 3.35 TB/s = 4.521 ms.
    The verify step (4 rows) reads the same: 4.521 ms. The draft reads its 1,235,814,400 weights (tied: the head
    reads the table) × 2 B = 2.472 GB + KV 1024 × 16 × 2 × 8 × 64 × 2 B = 0.034 GB → 0.748 ms, three times: 2.243 ms.
    Step 6.764 ms / 2.952 tokens = 2.291 ms per token against 4.521 ms: speed-up 1.973."""
    plain = analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024)
    spec = analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, spec_tokens=3, acceptance=0.8, draft=draft_1b)
    assert plain.totals.time_s == pytest.approx(15.144e9 / H100_BANDWIDTH, rel=0.01)
    assert spec.totals.tokens_per_step == pytest.approx(2.952)
    draft_s = sum(o.time_s for o in spec.operators if o.name.startswith("draft."))
    assert draft_s == pytest.approx(3 * 2.5052e9 / H100_BANDWIDTH, rel=0.02)
    assert spec.totals.effective_tpot_s == pytest.approx(6.764e-3 / 2.952, rel=0.02)
    assert plain.totals.time_s / spec.totals.effective_tpot_s == pytest.approx(1.973, rel=0.02)
    assert spec.totals.bound == "memory"


def _speed_up(batch: int, draft: Path, context: int = 128) -> float:
    plain = analyze("llama-3.1-8b", "h100-sxm", batch=batch, context=context)
    spec = analyze("llama-3.1-8b", "h100-sxm", batch=batch, context=context, spec_tokens=3, acceptance=0.8,
                   draft=draft)
    assert spec.totals.effective_tpot_s is not None
    return plain.totals.time_s / spec.totals.effective_tpot_s


def test_crossover_into_compute_bound_batches(draft_1b: Path) -> None:
    """Short contexts (128), so the weights dominate. By hand (bf16 ridge 989.4 / 3.35 = 295 FLOP/B, 1 FLOP per weight
    byte per row): the verify step's 4B rows turn compute-bound at B ≈ 74, the plain step's B rows at 295. Between,
    plain ≈ 4.48 ms + 5.0 µs·B (KV: 128 × 131,072 B / 3.35 TB/s per sequence), verify ≈ 2 × 7.5e9 × 4B / 989.4e12 =
    60.7 µs·B + 5.0 µs·B (the KV read once), draft ≈ 3 × (0.74 ms + 1.25 µs·B): speed-up 2.952 × plain / (verify +
    draft) = 1 at 13.22 + 0.0148 B = 2.22 + 0.0695 B ms → B ≈ 200 (the model: 198). At 512 all compute-bound but
    attention: plain 2 × 7.5e9 × 512 / 989.4e12 = 7.77 ms + 2.56 ms KV = 10.33 ms; verify 31.07 + 2.56 = 33.63 ms;
    draft 3 × (2 × 1.236e9 × 512 / 989.4e12 = 1.28 ms + 0.64 ms KV) = 5.76 ms → 2.952 × 10.33 / 39.39 = 0.77."""
    ups = {b: _speed_up(b, draft_1b) for b in (1, 16, 128, 256, 512)}
    assert ups[1] > 1.8 and ups[128] > 1.0
    assert ups[256] < 1.0 and ups[512] == pytest.approx(0.77, rel=0.03)
    assert list(ups.values()) == sorted(ups.values(), reverse=True)  # helps less as the batch grows


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 1024), k=st.integers(1, 8), context=st.integers(1, 32768),
       target_draft=st.sampled_from([("llama-3.1-8b", None), ("llama-3.1-8b", "qwen3-8b"), ("minimax-m2", "mtp")]))
def test_acceptance_zero_is_never_faster(batch: int, k: int, context: int,
                                         target_draft: tuple[str, str | None]) -> None:
    # Every draft rejected: a step emits 1 token, as a plain step, but verifies k + 1 rows and runs the draft.
    target, draft = target_draft
    hw = "h100-sxm" if target.startswith("llama") else "h200"
    plain = analyze(target, hw, batch=batch, context=context)
    spec = analyze(target, hw, batch=batch, context=context, spec_tokens=k, acceptance=0.0, draft=draft)
    assert spec.totals.effective_tpot_s >= plain.totals.time_s  # type: ignore[operator]
    assert spec.totals.tokens_per_s <= plain.totals.tokens_per_s


def test_e2e_decode_takes_fewer_steps() -> None:
    kw = {"phase": "e2e", "batch": 1, "prompt_len": 1024, "gen_len": 129}
    plain = analyze("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    spec = analyze("llama-3.1-8b", "h100-sxm", spec_tokens=3, acceptance=1.0, **kw)  # type: ignore[arg-type]
    assert spec.totals.ttft_s == pytest.approx(plain.totals.ttft_s)  # the prefill is the same
    assert spec.totals.tokens_per_step == 4.0
    # 128 tokens after the first in 128 / 4 = 32 verify steps; a 4-row verify step costs about one plain step
    # (memory-bound: the same weights and KV), so TPOT is about a quarter.
    assert spec.totals.tpot_s == pytest.approx(plain.totals.tpot_s / 4, rel=0.02)  # type: ignore[operator]
    assert spec.totals.effective_tpot_s == spec.totals.tpot_s


def test_serving_tpot_is_the_effective_one(draft_1b: Path) -> None:
    # At concurrency 1 the serving view equals analyze's e2e at batch 1, with speculation too.
    kw = {"spec_tokens": 3, "acceptance": "0.9,0.7,0.5", "draft": draft_1b, "efficiency": "ideal"}
    point = serve_traffic("llama-3.1-8b", "h100-sxm", prompt_len=1024, gen_len=256, concurrency=[1], method="steady",
                          **kw).points[0]  # type: ignore[arg-type]
    e2e = analyze("llama-3.1-8b", "h100-sxm", phase="e2e", batch=1, prompt_len=1024, gen_len=256, **kw)  # type: ignore[arg-type]
    assert point.tpot_s == pytest.approx(e2e.totals.tpot_s, rel=1e-6)
    plain = serve_traffic("llama-3.1-8b", "h100-sxm", prompt_len=1024, gen_len=256, concurrency=[1],
                          method="steady", efficiency="ideal").points[0]
    assert point.tpot_s < plain.tpot_s


@pytest.mark.parametrize(("kw", "field"), [
    ({"spec_tokens": 3}, "acceptance"),  # no rate
    ({"spec_tokens": 3, "acceptance": "0.8,0.6"}, "acceptance"),  # two rates for three positions
    ({"spec_tokens": 3, "acceptance": 1.5}, "acceptance"),
    ({"spec_tokens": 3, "acceptance": "0.8,x,0.4"}, "acceptance"),
    ({"spec_tokens": 3, "acceptance": float("nan")}, "acceptance"),
    ({"spec_tokens": -1}, "spec_tokens"),
    ({"spec_tokens": 65, "acceptance": 0.5}, "spec_tokens"),
    ({"spec_tokens": True, "acceptance": 0.5}, "spec_tokens"),
    ({"draft": "mtp"}, "spec_tokens"),  # a draft without speculation
    ({"spec_tokens": 2, "acceptance": 0.5, "draft": "mtp"}, "draft"),  # Llama-3.1-8B ships no MTP layers
    ({"spec_tokens": 2, "acceptance": 0.5, "draft": 3}, "draft"),
])
def test_refused_with_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        setup("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    assert e.value.field == field


def test_web_draft_is_a_catalog_model_never_a_file(draft_1b: Path) -> None:
    with pytest.raises(RooflmError) as e:
        AnalyzeBody(spec_tokens=3, acceptance="0.8", draft=str(draft_1b)).common()
    assert e.value.field == "draft"
    assert AnalyzeBody(spec_tokens=3, acceptance="0.8", draft="MTP").common()["draft"] == "MTP"
    assert AnalyzeBody(spec_tokens=3, acceptance="0.8", draft="qwen3-8b").common()["draft"].name


def test_cli_flags() -> None:
    out = CliRunner().invoke(app, ["analyze", "-m", "deepseek-v3", "-H", "h200", "--tp", "8", "--spec-tokens", "3",
                                   "--acceptance", "0.8", "--draft", "mtp", "--json"])
    assert out.exit_code == 0, out.output
    totals = json.loads(out.output)["totals"]
    assert totals["tokens_per_step"] == pytest.approx(2.952)
    assert totals["effective_tpot_s"] == pytest.approx(totals["time_s"] / 2.952)


def test_mtp_layers_are_read_from_the_config() -> None:
    # DeepSeek-V3's config.json: "num_nextn_predict_layers": 1; MiniMax-M2's: "num_mtp_modules": 3 of
    # "mtp_transformer_layers": 1 each ("use_mtp": true); Llama-3.1-8B's has neither.
    assert [rooflm.load_model(n).mtp_layers for n in ("deepseek-v3", "minimax-m2", "llama-3.1-8b")] == [1, 3, 0]
    spec = from_hf_config({**LLAMA_3_2_1B, "num_mtp_modules": 3, "mtp_transformer_layers": 1, "use_mtp": False}, "x")
    assert spec.mtp_layers == 0


def test_mtp_on_a_model_without_mtp_layers_names_the_draft() -> None:
    out = CliRunner().invoke(app, ["analyze", "--spec-tokens", "3", "--acceptance", "0.8", "--draft", "mtp"])
    assert out.exit_code != 0
    assert "no multi-token-prediction layers" in out.output and "Traceback" not in out.output


def test_sweep_carries_tokens_per_step() -> None:
    # k = 3 at p = 0.8: 2.952 tokens per step (derived above); each point's effective TPOT is its step time / 2.952,
    # and the sweep's step time equals analyze's at the same batch.
    points = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 64], spec_tokens=3, acceptance=0.8).to_json_dict()
    rows = points["points"]
    assert [r["tokens_per_step"] for r in rows] == pytest.approx([2.952, 2.952])
    for r in rows:
        single = analyze("llama-3.1-8b", "h100-sxm", batch=r["batch"], spec_tokens=3, acceptance=0.8)
        assert r["effective_tpot_s"] == pytest.approx(single.totals.effective_tpot_s, rel=1e-9)
    assert "tokens_per_step" not in rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1]).to_json_dict()["points"][0]


# Regression: a separate draft model is resident beside the target, weights and KV cache, and the memory
# summary counted neither.
def test_draft_weights_and_cache_are_counted(draft_1b: Path) -> None:
    """Llama-3.2-1B draft, by hand: 16 layers × (2048·2048 q + 2·2048·512 k, v + 2048·2048 o + 3·2048·8192 MLP)
    = 973,078,528 weights, plus the tied head 128256 · 2048 = 262,668,288 (stored once), plus 2 norms of 2048 per
    layer and the final one (67,584): 1,235,814,400 × 2 B = 2.4716 GB. Its cache per token: 16 layers × 8 KV heads
    × (64 + 64) × 2 B = 32,768 B, so 4 sequences of 1000 tokens hold 131.1 MB more."""
    plain = analyze("llama-3.1-8b", "h100-sxm", batch=4, context=1000).memory
    spec = analyze("llama-3.1-8b", "h100-sxm", batch=4, context=1000, spec_tokens=3, acceptance=0.8,
                   draft=draft_1b).memory
    assert spec.weights_bytes - plain.weights_bytes == pytest.approx(1_235_814_400 * 2, rel=1e-3)
    assert spec.kv_cache_bytes - plain.kv_cache_bytes == pytest.approx(4 * 1000 * 32_768, rel=1e-9)
    assert spec.max_batch < plain.max_batch  # the draft's bytes leave less room for sequences


def test_mtp_draft_adds_no_resident_model() -> None:
    # MTP drafts with the target's own extra layers: no second model is loaded.
    plain = analyze("deepseek-v3", "h200", tp=8, context=4096).memory
    mtp = analyze("deepseek-v3", "h200", tp=8, context=4096, spec_tokens=1, acceptance=0.8, draft="mtp").memory
    assert mtp.weights_bytes == plain.weights_bytes


def test_default_draft_is_the_checkpoints_mtp_head_and_ngram_is_free() -> None:
    """Unset, the draft of a checkpoint with MTP layers is its MTP head (priced: one extra layer per drafted token),
    so its step costs the same as with --draft mtp and more than n-gram lookup, which runs no model."""
    import rooflm

    kw = dict(phase="decode", batch=8, context=2048, spec_tokens=2, acceptance=0.7, tp=8, ep=8, quant="fp8-block")
    default = rooflm.analyze("deepseek-v3", "h200", **kw)  # type: ignore[arg-type]
    mtp = rooflm.analyze("deepseek-v3", "h200", draft="mtp", **kw)  # type: ignore[arg-type]
    ngram = rooflm.analyze("deepseek-v3", "h200", draft="ngram", **kw)  # type: ignore[arg-type]
    assert default.totals.time_s == mtp.totals.time_s
    assert ngram.totals.time_s < mtp.totals.time_s
    # Without MTP layers the unset draft is n-gram lookup, as --draft ngram.
    llama = dict(phase="decode", batch=8, context=2048, spec_tokens=2, acceptance=0.7)
    assert rooflm.analyze("llama-3.1-8b", "h100-sxm", **llama).totals.time_s == \
        rooflm.analyze("llama-3.1-8b", "h100-sxm", draft="ngram", **llama).totals.time_s  # type: ignore[arg-type]
