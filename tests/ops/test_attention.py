import numpy as np
import pytest

from rooflm.ops.attention import (
    causal_pairs,
    decode_attention,
    kv_cache_write,
    mla_latent_decode,
    prefill_attention,
)


def test_causal_pairs_is_the_lower_triangle_with_diagonal() -> None:
    # L = 4: query i sees i+1 keys -> 1+2+3+4 = 10.
    assert causal_pairs(4) == 10


def test_prefill_attention_flops_count_half_the_scores() -> None:
    # B=2, L=8, Hq=4, d=16: 4 * 2 * 4 * 16 * (8*9/2 = 36) = 18432.
    c = prefill_attention(2, 8, 4, 2, 16, 16, io_bytes=2)
    assert c.flops == 18432
    # Q and O: 2*8*4*16 each; K and V: 2*8*2*16 each; x 2 bytes.
    assert c.activation_bytes == (2 * 16 * 4 * 16 * 2 + 2 * 16 * 2 * 16 * 2)
    assert c.kv_bytes == 0


def test_decode_attention_reads_every_sequence_cache() -> None:
    # B=3, C=100, Hq=32, Hkv=8, d=128, bf16 cache: 3*100*2*8*128*2 = 1,228,800 B.
    c = decode_attention(3, 100, 32, 8, 128, 128, kv_bytes=2, io_bytes=2)
    assert c.kv_bytes == 1_228_800
    assert c.flops == 4 * 3 * 32 * 100 * 128


def test_decode_attention_intensity_does_not_grow_with_batch() -> None:
    # AI -> Hq/Hkv = 4 for a bf16 cache, at any batch (activations are negligible at long context).
    batch = np.array([1.0, 8.0, 512.0])
    c = decode_attention(batch, 32768, 32, 8, 128, 128, kv_bytes=2, io_bytes=2)
    ai = c.flops / c.bytes
    np.testing.assert_allclose(ai, 4.0, rtol=1e-3)
    assert np.ptp(ai) < 1e-9


def test_kv_write_is_kv_bytes_in_the_cache_dtype() -> None:
    # 5 tokens * 2 (K,V) * 8 heads * 128 = 10240 elements; fp8 cache: 10240 B written, 20480 B read (bf16).
    c = kv_cache_write(5, 2 * 8 * 128, kv_bytes=1, io_bytes=2)
    assert c.kv_bytes == 10240
    assert c.activation_bytes == 20480


def test_sliding_window_caps_pairs_and_cache_reads() -> None:
    # L = 6, W = 4: queries see 1, 2, 3, 4, 4, 4 keys = 18 (= 4*5/2 + (6-4)*4).
    assert causal_pairs(6, 4) == 18
    assert causal_pairs(3, 4) == 6  # shorter than the window: plain causal
    # Decode at context 1000 with W = 128 reads 128 tokens per sequence.
    c = decode_attention(2, 1000, 8, 2, 64, 64, kv_bytes=2, io_bytes=2, window=128)
    assert c.kv_bytes == 2 * 128 * 2 * 128 * 2


def test_mla_latent_decode_intensity_is_hundreds() -> None:
    # DeepSeek-V3 per device with 128 heads, d_c = 512, d_r = 64, bf16 latent cache, long context.
    # Per head and cached token: scores 2*(512 + 64) FLOPs, values 2*512 -> 2*1088; the token's latent
    # is read once for all heads: 576 * 2 B. AI -> 128 * 2 * 1088 / 1152 = 241.8 FLOP/B (q and o reads
    # take 0.25% off), vs GQA's H_q/H_kv.
    c = mla_latent_decode(8, 100_000, 128, 512, 64, kv_bytes=2, io_bytes=2)
    assert c.flops / c.bytes == pytest.approx(128 * 2 * 1088 / 1152, rel=5e-3)
    assert c.kv_bytes == 8 * 100_000 * 576 * 2
