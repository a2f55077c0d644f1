"""The engines' measured MoE layers: their curves against rows of the published tables they come from, and which
configurations they hold."""

from __future__ import annotations

import numpy as np
import pytest

from rooflm.specs import engine_kernels as ek

# Rows copied from AIConfigurator's MoE tables (aiconfigurator-core 0.12.0,
# aiconfigurator_core/systems/data/<system>/moe/<engine>/<version>/moe_perf.parquet), balanced routing: (row index in
# that file, num_tokens, latency in ms as the file stores it). Key: (device, engine, scheme, (hidden, inter, topk,
# experts, moe_tp, moe_ep)). Each row is the only kernel the table timed at its token count, so it is the point the
# curve follows.
RAW_ROWS = {
    # b200_sxm/moe/sglang/0.5.14/moe_perf.parquet, moe_dtype fp8_block, sglang_flashinfer_trtllm_moe: DeepSeek-V3's
    # layer with its experts an eighth wide (TP 8, EP 1)
    ("b200", "sglang", "fp8-block", (7168, 2048, 8, 256, 8, 1)): [
        (23569, 1, 0.03612735986709595),
        (23572, 8, 0.05721216201782227),
        (23574, 64, 0.15569791793823243),
        (23586, 512, 0.3428441619873047),
    ],
    # b200_sxm/moe/trtllm/1.3.0rc20/moe_perf.parquet, moe_dtype fp8_block, deepgemm
    ("b200", "trtllm", "fp8-block", (7168, 2048, 8, 256, 8, 1)): [
        (171926, 2, 0.11774399876594543),
        (171930, 16, 0.2614240050315857),
        (171941, 256, 0.44731199741363525),
    ],
    # h200_sxm/moe/vllm/0.24.0/moe_perf.parquet, moe_dtype bfloat16, vllm_unquantizedfusedmoe_triton_tritonexperts:
    # Qwen3-30B-A3B on one device
    ("h200", "vllm", "bf16", (2048, 768, 8, 128, 1, 1)): [
        (2294, 1, 0.04027199993530909),
        (2353, 32, 0.3051360050837199),
        (2527, 1024, 0.40614934762318927),
    ],
    # h100_sxm/moe/trtllm/1.3.0rc20/moe_perf.parquet, moe_dtype fp8, moe_torch_flow_cutlass: Mixtral-8x7B, TP 2
    ("h100-sxm", "trtllm", "fp8", (4096, 14336, 2, 8, 2, 1)): [
        (91443, 4, 0.25756800174713135),
        (91451, 128, 0.2738613287607829),
        (91463, 4096, 1.070688009262085),
    ],
    # b200_sxm/moe/vllm/0.24.0/moe_perf.parquet, moe_dtype w4a16_mxfp4, flashinfer trtllm mxfp4 experts: gpt-oss-120b
    ("b200", "vllm", "mxfp4", (2880, 2880, 4, 128, 1, 1)): [
        (679, 1, 0.0312266672650973),
        (689, 64, 0.38213332494099933),
        (705, 2048, 0.7805706659952799),
    ],
}


def _moe(device: str, engine: str, scheme: str) -> ek.MoeTable:
    tables = ek.engine_tables(device, engine)
    assert tables is not None
    return tables.moe[scheme]


@pytest.mark.parametrize("key", sorted(RAW_ROWS, key=str))
def test_moe_curves_reproduce_published_rows_within_their_stated_residual(key) -> None:
    device, engine, scheme, config = key
    table = _moe(device, engine, scheme)
    for row, tokens, latency_ms in RAW_ROWS[key]:
        predicted = table.time(config, tokens)
        assert predicted is not None
        error = abs(float(predicted) / (latency_ms * 1e-3) - 1.0)
        assert error <= table.residual_max, (row, tokens, float(predicted), error)
    assert table.residual_max <= 0.21  # the derivation's tolerance (0.2) plus the rounding of the figures written


def test_a_configuration_the_tables_did_not_measure_has_no_time() -> None:
    """Only exact configurations: DeepSeek-V3 at TP 3 (no such layout) or a shape between two measured ones gets
    None, and the caller keeps the generic family."""
    table = _moe("b200", "sglang", "fp8-block")
    assert table.time((7168, 2048, 8, 256, 3, 1), 8) is None
    assert table.time((7168, 1024, 8, 256, 8, 1), 8) is None


def test_moe_time_grows_with_tokens_where_the_table_does() -> None:
    """The measured DeepSeek-V3 TP 8 layer on B200 (SGLang) rises from 36 µs at 1 token to 343 µs at 512 (rows
    23569 and 23586 above): the interpolated curve rises over that range too."""
    table = _moe("b200", "sglang", "fp8-block")
    t = table.time((7168, 2048, 8, 256, 8, 1), np.array([1.0, 16.0, 128.0, 512.0]))
    assert t is not None and np.all(np.diff(t) > 0)


def test_every_file_names_the_catalog_models_its_moe_layers_cover() -> None:
    """Every catalog MoE model with a table in some scheme on B200 under SGLang: DeepSeek-V3 (fp8-block, fp4),
    Qwen3 (bf16), gpt-oss (mxfp4), Mixtral (bf16), MiniMax-M2 (fp8-block)."""
    tables = ek.engine_tables("b200", "sglang")
    assert tables is not None
    covered = {m for t in tables.moe.values() for m in t.source["models"]}  # type: ignore[union-attr]
    assert covered == {"deepseek-v3", "gpt-oss-120b", "gpt-oss-20b", "minimax-m2", "mixtral-8x7b",
                       "qwen3-235b-a22b", "qwen3-30b-a3b"}
    for t in tables.moe.values():
        assert t.source["source_file"].endswith("moe_perf.parquet")  # type: ignore[union-attr]
        assert t.source["distribution"] == "balanced"
