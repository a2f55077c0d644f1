import pytest

import rooflm
from rooflm.specs.quant import load_scheme, scheme_names


def test_w4a16_costs_4_125_bits_per_weight() -> None:
    # int4 + one fp16 scale per 128 weights: 4 + 16/128 = 4.125 bits = 0.515625 B.
    assert load_scheme("w4a16").weight_bytes_per_element(4096) == pytest.approx(0.515625)


def test_per_channel_scale_is_spread_over_k() -> None:
    # fp8 with one fp32 scale per output channel of K = 4096 weights: 1 + 4/4096 B.
    assert load_scheme("fp8").weight_bytes_per_element(4096) == pytest.approx(1 + 4 / 4096)


def test_nvfp4_block_scales() -> None:
    # 4 bits + one 8-bit scale per 16 = 4.5 bits = 0.5625 B.
    assert load_scheme("fp4").weight_bytes_per_element(4096) == pytest.approx(0.5625)


@pytest.mark.parametrize(("name", "compute"), [("bf16", "bf16"), ("w4a16", "bf16"), ("w8a16", "bf16"),
                                                ("fp8", "fp8"), ("int8", "int8"), ("w4a8", "int8"), ("fp4", "fp4")])
def test_compute_roof_follows_the_math_dtype(name: str, compute: str) -> None:
    assert load_scheme(name).compute == compute


def test_kv_dtype_is_independent() -> None:
    s = load_scheme("w4a16", kv_dtype="fp8")
    assert s.kv == "fp8" and s.weight == "int4" and s.kv_bytes == 1


def test_aliases_and_unknown_names() -> None:
    assert load_scheme("W8A8").name == "int8"
    with pytest.raises(rooflm.UnknownNameError, match="w4a16"):
        load_scheme("w4a61")
    with pytest.raises(rooflm.InvalidInputError, match="KV-cache dtype"):
        load_scheme("bf16", kv_dtype="int3")


def test_every_named_scheme_loads() -> None:
    for name in scheme_names():
        assert load_scheme(name).weight_bytes_per_element(128) > 0
