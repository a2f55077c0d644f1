"""The memory hierarchy: per-level bytes by hand, residency, the lower-bound property and the JSON fields."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rooflm
from rooflm.core.levels import NOT_RESIDENT, flash_kv_rereads, gemm_tile_bytes, level_bytes, residency
from rooflm.core.roofline import efficiency_for, time_op
from rooflm.ops import attention, gemm
from rooflm.ops.cost import Op
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.hardware import HardwareSpec, hardware_names, load_hardware
from rooflm.specs.levels import DRAM, Tile

H100 = load_hardware("h100-sxm")
WITH_LEVELS = [n for n in hardware_names() if load_hardware(n).levels]


def _gemm_op(m: float, k: int, n: int, w_bytes: float = 2.0, dtype: str = "bf16") -> Op:
    cost = gemm.linear(m, k, n, weight_bytes_per_el=w_bytes, in_bytes=bytes_per_element(dtype), out_bytes=2.0)
    return Op("proj", "gemm", "weight_gemm", 1, cost, dtype, weight_shape=(k, n), gemm_m=m)


def _flat(hw: HardwareSpec) -> HardwareSpec:
    """The same device without levels: the DRAM-only roofline."""
    return hw.model_copy(update={"levels": []})


def test_gemm_bytes_for_one_tile_shape_by_hand() -> None:
    # M = 512, K = N = 4096, bf16, H100's L2 tile 256 x 256:
    #   A = 512·4096·2 = 4,194,304 B, read N/n = 4096/256 = 16 times -> 67,108,864
    #   B = 4096·4096·2 = 33,554,432 B, read M/m = 512/256 = 2 times -> 67,108,864
    #   reads at L2 = 134,217,728 B; every operand once (A + B + C, C = 512·4096·2 = 4,194,304 B) = 41,943,040 B,
    #   which is also DRAM's count; L2 carries the larger: 134,217,728 B
    # L1 (tile 64 x 256): A 16 times -> 67,108,864; B 512/64 = 8 times -> 268,435,456; total 335,544,320 B
    assert gemm_tile_bytes(4_194_304, 33_554_432, 4_194_304, 512, 4096, Tile(m=256, n=256)) == 134_217_728
    # K = 16: the reads fall below the operands once, which the level carries instead:
    # A = 512·16·2 = 16,384 (x 16 = 262,144), B = 16·4096·2 = 131,072 (x 2 = 262,144), C = 4,194,304 -> 4,341,760
    assert gemm_tile_bytes(16_384, 131_072, 4_194_304, 512, 4096, Tile(m=256, n=256)) == 4_341_760
    by_level = level_bytes(_gemm_op(512, 4096, 4096), H100, NOT_RESIDENT)
    assert list(by_level) == ["l1", "l2", DRAM]
    assert by_level["l2"] == pytest.approx(134_217_728)
    assert by_level["l1"] == pytest.approx(335_544_320)
    assert by_level[DRAM] == pytest.approx(41_943_040)


def test_a_decode_gemm_reads_each_weight_once_at_every_level() -> None:
    # M = 1 row: one row of tiles, so B (the weights) once; A (8 KiB) is re-read 16 times at L2 (131,072 B), more
    # than A and C once (16,384 B).
    by_level = level_bytes(_gemm_op(1, 4096, 4096), H100, NOT_RESIDENT)
    weights, x, y = 4096 * 4096 * 2, 4096 * 2, 4096 * 2
    assert by_level[DRAM] == pytest.approx(weights + x + y)
    assert by_level["l2"] == pytest.approx(weights + 16 * x)


def test_flash_attention_kv_rereads_for_one_block_size_by_hand() -> None:
    # One causal prompt of L = 4096 tokens, 32 query heads of d = 128 (d_qk + d_v = 256), bf16, blocks of m = 128
    # queries: pairs = 4096·4097/2 = 8,390,656; each head's block re-reads the K/V rows of its queries' pairs, at
    # least pairs/m = 65,552 rows of 256 elements × 2 B per head: 32 · 256 · 2 · 65,552 = 1,074,003,968 B.
    cost = attention.prefill_attention(1, 4096, 32, 8, 128, 128, io_bytes=2.0)
    assert flash_kv_rereads(cost.flops, 2.0, Tile(m=128, n=128)) == pytest.approx(1_074_003_968)
    op = Op("attention", "attention", "attention", 1, cost, "bf16")
    by_level = level_bytes(op, H100, NOT_RESIDENT)
    # H100's L2 tile has m = 256: half the re-reads of m = 128; L1's m = 64: twice. DRAM: Q, K, V, O once.
    assert by_level["l2"] == pytest.approx(1_074_003_968 / 2)
    assert by_level["l1"] == pytest.approx(1_074_003_968 * 2)
    assert by_level[DRAM] == pytest.approx(cost.bytes)


def test_bytes_never_grow_outward_and_dram_is_the_classic_count() -> None:
    for name in WITH_LEVELS:
        hw = load_hardware(name)
        for op in (_gemm_op(64, 4096, 14336), _gemm_op(3000, 8192, 1024, 0.5)):
            values = list(level_bytes(op, hw, NOT_RESIDENT).values())
            assert all(a >= b for a, b in pairwise(values)), name
            assert values[-1] == pytest.approx(op.cost.bytes)


TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096, "torch_dtype": "bfloat16", "tie_word_embeddings": False}


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY))
    return str(path)


def test_a_working_set_that_fits_l2_is_bound_by_l2(tiny: str) -> None:
    # The tiny model's weights (~2 MB) and its 64-token KV cache stay in H100's 50 MB L2 across decode steps: the
    # weight GEMMs read nothing but activations from DRAM, so their memory time is L2's, not DRAM's.
    r = rooflm.analyze(tiny, H100, batch=1, context=64)
    gemms = [o for o in r.operators if o.kind == "gemm"]
    assert gemms and all(o.bound_level == "l2" for o in gemms)
    for o in gemms:
        assert o.bytes_by_level[DRAM] == pytest.approx(o.activation_bytes)
        assert o.bytes_by_level["l2"] >= o.weight_bytes
    flat = rooflm.analyze(tiny, _flat(H100), batch=1, context=64)
    assert r.totals.time_s < flat.totals.time_s  # faster than streaming the weights from HBM


def test_decode_at_batch_1_stays_dram_bound_with_unchanged_time() -> None:
    for name in WITH_LEVELS:
        hw = load_hardware(name)
        r = rooflm.analyze("llama-3.1-8b", hw, batch=1, context=1024)
        flat = rooflm.analyze("llama-3.1-8b", _flat(hw), batch=1, context=1024)
        assert r.totals.time_s == pytest.approx(flat.totals.time_s, rel=1e-12), name
        assert all(o.bound_level == DRAM for o in r.operators if o.kind == "gemm"), name


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(WITH_LEVELS), m=st.floats(1, 65536), k=st.integers(16, 32768), n=st.integers(16, 32768),
       scheme=st.sampled_from([(2.0, "bf16"), (0.5, "bf16"), (1.0, "fp8"), (1.0, "int8"), (4.0, "fp32"), (4.0, "tf32")]),
       prompt=st.integers(1, 32768), heads=st.sampled_from([(32, 8), (64, 8), (16, 16)]))
def test_levels_never_make_ideal_slower_than_dram_only_for_dram_resident_data(
        name: str, m: float, k: int, n: int, scheme: tuple[float, str], prompt: int, heads: tuple[int, int]) -> None:
    # Data that must come from DRAM (nothing resident): the levels' traffic is a lower bound from the largest tiles,
    # so on every catalog device the ideal time with levels equals the DRAM-only roofline's, never more.
    hw = load_hardware(name)
    w_bytes, dtype = scheme
    if dtype not in hw.supported_dtypes:
        dtype = "bf16" if "bf16" in hw.supported_dtypes else hw.supported_dtypes[0]
    eff = efficiency_for(hw, "ideal")
    hq, hkv = heads
    ops = [_gemm_op(m, k, n, w_bytes, dtype),
           Op("attention", "attention", "attention", 1,
              attention.prefill_attention(1, prompt, hq, hkv, 128, 128, io_bytes=2.0), dtype)]
    for op in ops:
        with_levels, flat = time_op(op, hw, eff), time_op(op, _flat(hw), eff)
        assert with_levels.time_s <= flat.time_s * (1 + 1e-12), (name, op.name)


def test_residency_picks_the_outermost_level_that_holds_the_weights() -> None:
    small, big = _gemm_op(1, 1024, 1024), _gemm_op(1, 8192, 8192)  # 2 MiB and 128 MiB of weights
    assert int(residency([small], H100).weights) == 1  # l2 (l1 holds it too, but is not kept across kernels)
    assert int(residency([big], H100).weights) == len(H100.levels)  # DRAM: nothing resident


def test_evaluating_some_operators_keeps_the_whole_steps_residency() -> None:
    """A step of a 2 MiB GEMM and a 128 MiB one: together they do not fit H100's 50 MiB L2, so the small one's weights
    stream from DRAM, though alone they would stay in L2. ``keep`` (the critical batch's GEMM-only evaluation) must
    time the small one as the whole step does: 2 MiB at 3.35 TB/s, not at L2's bandwidth."""
    from rooflm.core.evaluate import evaluate_ops

    small, big = _gemm_op(1, 1024, 1024), _gemm_op(1, 8192, 8192)
    eff = efficiency_for(H100, "ideal")
    (kept,) = evaluate_ops([small, big], H100, eff, (), whole_step=True, keep=lambda op: op is small)
    whole = evaluate_ops([small, big], H100, eff, (), whole_step=True)[0]
    alone = evaluate_ops([small], H100, eff, (), whole_step=True)[0]
    assert kept.op is small and float(kept.memory_s) == float(whole.memory_s)
    # 1024·1024·2 B of weights + 1024·2 B in + 1024·2 B out = 2,101,248 B at 3.35e12 B/s = 0.6272 µs.
    assert float(kept.memory_s) == pytest.approx(2_101_248 / 3.35e12, rel=1e-9)
    assert float(alone.memory_s) < float(kept.memory_s)  # L2-resident weights: what keep must not fall back to


def test_naive_mla_up_projection_is_tiled_over_every_cached_token() -> None:
    """DeepSeek-V3 (kv_lora_rank 512, 128 heads of 128 + 128, 61 layers) on H200 at TP 8, fp8-block, batch 32 at
    4096 tokens, naive MLA: each step up-projects all M = 32·4096 = 131,072 cached latents through a K = 512,
    N = 16·256 = 4096 GEMM (16 heads per device). Per layer, by hand:
      A = M·K·1 B (fp8 input) = 67,108,864; B = 512·4096·(1 + 4/128²) (block scales) = 2,097,664;
      L2 tile 256×256: A·(4096/256) + B·(131072/256) = 1,073,741,824 + 1,074,003,968 = 2,147,745,792;
      L1 tile 64×256:  A·16 + B·(131072/64) = 1,073,741,824 + 4,296,015,872 = 5,369,757,696;
      DRAM: weights + activations (M·4096·2) + the latent cache (M·576·2) = 2,097,664 + 1,073,741,824 + 150,994,944
      = 1,226,834,432, each byte once.
    Before the GEMM carried its M, the tile model saw no rows and gave every level DRAM's bytes."""
    r = rooflm.analyze("deepseek-v3", "h200", tp=8, quant="fp8-block", batch=32, context=4096, mla_decode="naive")
    (up,) = [o for o in r.operators if o.name == "kv_b_proj_cache"]
    assert up.count == 61
    assert up.bytes_by_level == {"l1": 61 * 5_369_757_696, "l2": 61 * 2_147_745_792, "dram": 61 * 1_226_834_432}


def test_analyze_json_operators_carry_consistent_level_fields() -> None:
    from typer.testing import CliRunner

    from rooflm.cli import app

    out = CliRunner().invoke(app, ["analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--phase",
                                   "prefill", "--prompt-len", "512", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    bandwidth = {"l1": H100.levels[0].bandwidth.value, "l2": H100.levels[1].bandwidth.value,
                 DRAM: H100.memory_bandwidth.value}
    for o in doc["operators"]:
        levels = o["bytes_by_level"]
        assert list(levels) == ["l1", "l2", DRAM]
        values = list(levels.values())
        assert all(a >= b for a, b in pairwise(values))
        assert levels[DRAM] == pytest.approx(o["bytes"])  # nothing of an 8B model stays in a 50 MB L2
        times = {lv: b / bandwidth[lv] for lv, b in levels.items()}
        if o["bytes"] > 0:
            # ideal: the memory time is the largest level time, and bound_level names it
            assert o["memory_time_s"] == pytest.approx(max(times.values()))
            assert times[o["bound_level"]] == pytest.approx(max(times.values()))
        else:
            assert o["bound_level"] is None


def test_hardware_show_json_lists_the_levels_with_dram_last() -> None:
    from typer.testing import CliRunner

    from rooflm.cli import app

    out = CliRunner().invoke(app, ["hardware", "show", "h100-sxm", "--json"])
    assert out.exit_code == 0, out.output
    levels = json.loads(out.stdout)["levels"]
    assert [lv["name"] for lv in levels] == ["l1", "l2", DRAM]
    assert levels[1]["bandwidth"] == pytest.approx(5120 * 1.83e9)  # A100's 5120 B/clock at H100's 1.83 GHz
    assert levels[1]["tile"] == {"m": 256, "n": 256}
    assert levels[-1]["bandwidth"] == 3.35e12 and levels[-1]["tile"] is None
    assert all(lv["source"]["bandwidth"] for lv in levels)


def test_a_device_without_levels_reports_dram_alone() -> None:
    r = rooflm.analyze("llama-3.1-8b", "tpu-v5e", batch=1, context=1024)
    assert all(list(o.bytes_by_level) == [DRAM] for o in r.operators)
    assert np.isclose(sum(o.bytes_by_level[DRAM] for o in r.operators), r.totals.bytes)


def test_only_a_whole_step_keeps_data_on_chip() -> None:
    # One 8 MiB GEMM timed alone (validate's GEMM cases; the attention over earlier prefill chunks) is not a step
    # that repeats: its weights stream from DRAM even though H100's L2 could hold them. Before, any list of
    # operators was taken for a step, and a lone GEMM came out L2-bound at a fraction of its DRAM time.
    from rooflm.core.evaluate import evaluate_ops

    op, eff = _gemm_op(1, 2048, 2048), efficiency_for(H100, "ideal")
    (alone,) = evaluate_ops([op], H100, eff, ())
    assert float(alone.bytes_by_level[DRAM]) == pytest.approx(op.cost.bytes)
    (step,) = evaluate_ops([op], H100, eff, (), whole_step=True)
    assert float(step.bytes_by_level[DRAM]) == pytest.approx(op.cost.activation_bytes)


@pytest.mark.parametrize("name", ["h100-sxm", "h100-pcie", "h200"])
def test_hopper_l2_is_an_unsourced_estimate_above_every_measurement(name: str) -> None:
    # NVIDIA publishes no per-clock L2 figure for Hopper: the file says so, and the figure it takes (A100's 5120 B/clk
    # at the device's clock) must stay above what Hopper's L2 was measured to deliver, or the ideal would not be a
    # lower bound. Measurements: openxla/xla gpu_dot_fusion_cost_model.cc, 6.65e12 B/s (H100, one partition); Luo et
    # al. (arXiv 2402.13499) Table V, 3942.4 byte/clk on H800 PCIe = 6.92e12 B/s at 1.755 GHz.
    l2 = next(lv for lv in load_hardware(name).levels if lv.name == "l2")
    assert l2.bandwidth.source.startswith("unsourced estimate")
    assert l2.bandwidth.value > max(6.65e12, 3942.4 * 1.755e9)
