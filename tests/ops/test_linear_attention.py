"""Gated DeltaNet's operators (rooflm.ops.linear_attention) on tiny sizes, every figure derived by hand beside it."""

from __future__ import annotations

import pytest

from rooflm.ops import linear_attention as la


def test_decode_step_reads_and_writes_each_state_once() -> None:
    # B = 2 sequences, H = 4 value heads, 2 key heads, d_k = 8, d_v = 16, 2-byte state and activations.
    c = la.decode_step(2, 4, 2, 8, 16, state_bytes=2.0, io_bytes=2.0)
    # states: 2·4·8·16 = 1024 elements; FLOPs 7 per element = 7168
    assert c.flops == 7168
    # read + write: 2·1024·2 bytes = 4096
    assert c.kv_bytes == 4096
    # q, k per key head (2·2·8 = 32), v, o per value head (2·4·16 = 128), two gates per value head (8): 168 per
    # sequence, ×2 sequences ×2 bytes = 672
    assert c.activation_bytes == 672


def test_decode_step_does_not_depend_on_context() -> None:
    """The signature has no context: a state holds the whole past. The cost scales with the batch alone."""
    one = la.decode_step(1, 4, 2, 8, 16, state_bytes=2.0, io_bytes=2.0)
    three = la.decode_step(3, 4, 2, 8, 16, state_bytes=2.0, io_bytes=2.0)
    assert three.kv_bytes == 3 * one.kv_bytes and three.flops == 3 * one.flops


def test_chunk_flops_per_token() -> None:
    # C = 64, d_k = 8, d_v = 16: 2·64·(3·8 + 2·16) = 7168; 2·64²/3 = 2730.67; 6·8·16 = 768
    assert la.chunk_flops_per_token(8, 16, 64) == pytest.approx(7168 + 8192 / 3 + 768)


def test_prefill_scan_pads_to_whole_chunks() -> None:
    # B = 1, L = 100 → ⌈100/64⌉ = 2 chunks = 128 token slots; H = 4: 128·4·(7168 + 8192/3 + 768) FLOPs
    c = la.prefill_scan(1, 100, 4, 2, 8, 16, state_bytes=2.0, io_bytes=2.0)
    assert c.flops == pytest.approx(128 * 4 * (7168 + 8192 / 3 + 768))
    # state 1·4·8·16 = 512 elements, read and written: 2·512·2 = 2048
    assert c.kv_bytes == 2048
    # per token 32 + 128 + 8 = 168 elements (as decode) ×100 tokens = 16800; chunk states stored and read back
    # 2·2 chunks·512 = 2048; (16800 + 2048)·2 bytes = 37696
    assert c.activation_bytes == 37696


def test_short_conv() -> None:
    # B = 2, one token each, 48 channels, kernel 4
    c = la.short_conv(2, 1, 48, 4, state_bytes=2.0, io_bytes=2.0)
    assert c.flops == 2 * 2 * 48 * 4  # 768
    assert c.weight_bytes == 48 * 4 * 2  # 384
    assert c.kv_bytes == 2 * 2 * 48 * 3 * 2  # its last 3 inputs per sequence read and written: 1152
    assert c.activation_bytes == 2 * 2 * 48 * 2  # input read, output written: 384
