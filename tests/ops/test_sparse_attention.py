"""DeepSeek sparse attention's indexer (rooflm.ops.sparse_attention) on tiny sizes, figures derived by hand."""

from __future__ import annotations

from rooflm.ops import sparse_attention as sa


def test_indexer_decode_scans_every_cached_key() -> None:
    # B = 2, C = 100 cached tokens, 4 heads of 16, top-64, 2-byte activations
    c = sa.indexer_decode(2, 100, 4, 16, 64, io_bytes=2.0)
    assert c.flops == 2 * 2 * 100 * 4 * 17  # 27200: q·k (16) and the head weight (1), 2 FLOPs each
    assert c.kv_bytes == 2 * 100 * (16 + 4)  # 4000: fp8 keys and one fp32 scale per token
    assert c.activation_bytes == 2 * 4 * 17 * 2 + 2 * 64 * 4  # queries and weights 272, 64 int32 indices each 512


def test_indexer_prefill_is_causal() -> None:
    # B = 1, L = 8: 36 causal pairs; 4 heads of 16; top-4
    c = sa.indexer_prefill(1, 8, 4, 16, 4, io_bytes=2.0)
    assert c.flops == 2 * 36 * 4 * 17  # 4896
    assert c.kv_bytes == 8 * 20  # each key read once: 160
    # queries 8·4·17·2 = 1088; indices: queries 0..3 keep 1..4, the other 4 keep 4: 10 + 16 = 26, ×4 bytes = 104
    assert c.activation_bytes == 1088 + 104


def test_index_cache_write() -> None:
    c = sa.index_cache_write(3, 16, io_bytes=2.0)
    assert (c.activation_bytes, c.kv_bytes) == (3 * 16 * 2, 3 * 20)
