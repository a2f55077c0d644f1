import numpy as np

from rooflm.ops.attention import causal_pairs, decode_attention, kv_cache_write, prefill_attention


def test_causal_pairs_is_the_lower_triangle_with_diagonal() -> None:
    # L = 4: query i sees i+1 keys -> 1+2+3+4 = 10.
    assert causal_pairs(4) == 10


def test_prefill_attention_flops_count_half_the_scores() -> None:
    # B=2, L=8, Hq=4, d=16: 4 * 2 * 4 * 16 * (8*9/2 = 36) = 18432.
    c = prefill_attention(2, 8, 4, 2, 16, io_bytes=2)
    assert c.flops == 18432
    # Q and O: 2*8*4*16 each; K and V: 2*8*2*16 each; x 2 bytes.
    assert c.activation_bytes == (2 * 16 * 4 * 16 * 2 + 2 * 16 * 2 * 16 * 2)
    assert c.kv_bytes == 0


def test_decode_attention_reads_every_sequence_cache() -> None:
    # B=3, C=100, Hq=32, Hkv=8, d=128, bf16 cache: 3*100*2*8*128*2 = 1,228,800 B.
    c = decode_attention(3, 100, 32, 8, 128, kv_bytes=2, io_bytes=2)
    assert c.kv_bytes == 1_228_800
    assert c.flops == 4 * 3 * 32 * 100 * 128


def test_decode_attention_intensity_does_not_grow_with_batch() -> None:
    # AI -> Hq/Hkv = 4 for a bf16 cache, at any batch (activations are negligible at long context).
    batch = np.array([1.0, 8.0, 512.0])
    c = decode_attention(batch, 32768, 32, 8, 128, kv_bytes=2, io_bytes=2)
    ai = c.flops / c.bytes
    np.testing.assert_allclose(ai, 4.0, rtol=1e-3)
    assert np.ptp(ai) < 1e-9


def test_kv_write_is_kv_bytes_in_the_cache_dtype() -> None:
    # 5 tokens * 2 (K,V) * 8 heads * 128 = 10240 elements; fp8 cache: 10240 B written, 20480 B read (bf16).
    c = kv_cache_write(5, 8, 128, kv_bytes=1, io_bytes=2)
    assert c.kv_bytes == 10240
    assert c.activation_bytes == 20480
