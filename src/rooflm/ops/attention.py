"""Attention: fused causal prefill, decode over the KV cache, and the KV-cache write.

FLOPs count the two matmuls only (Q·Kᵀ and P·V, 2 FLOPs per multiply-add), as FlashAttention's
papers do; softmax and masking are a few FLOPs per score, on the vector units, and left out.
"""

from __future__ import annotations

import numpy as np

from rooflm.ops.cost import Cost, Num


def causal_pairs(prompt_len: Num, window: int | None = None) -> Num:
    """Query-key pairs under a causal mask: query i sees keys 0..i, so L·(L+1)/2 per head; with a
    sliding window of W, query i sees min(i+1, W) keys."""
    full = prompt_len * (prompt_len + 1) / 2.0
    if window is None:
        return full
    capped = window * (window + 1) / 2.0 + (prompt_len - window) * window
    return np.where(prompt_len <= window, full, capped)


def prefill_attention(batch: Num, prompt_len: Num, n_q_heads: int, n_kv_heads: int, qk_dim: int, v_dim: int,
                      *, io_bytes: float, window: int | None = None) -> Cost:
    """Fused (flash-style) causal attention over B prompts of length L.

    FLOPs = 2·B·H_q·(d_qk + d_v)·pairs (= 4·B·H_q·d·L(L+1)/2 without a window). Bytes: Q, K, V read
    once and O written once (the score matrix never reaches main memory).
    """
    tokens = batch * prompt_len
    return Cost(
        flops=2.0 * batch * n_q_heads * (qk_dim + v_dim) * causal_pairs(prompt_len, window),
        activation_bytes=tokens * (n_q_heads * (qk_dim + v_dim) + n_kv_heads * (qk_dim + v_dim)) * io_bytes,
    )


def decode_attention(batch: Num, context: Num, n_q_heads: int, n_kv_heads: int, qk_dim: int, v_dim: int,
                     *, kv_bytes: float, io_bytes: float, window: int | None = None) -> Cost:
    """One new query token per sequence attending to its own cached tokens (the last W with a window).

    FLOPs = 2·B·H_q·C·(d_qk + d_v). KV bytes = B·C·H_kv·(d_qk + d_v)·kv_bytes: every sequence reads its
    own cache, so the arithmetic intensity is ≈ H_q/H_kv FLOP/byte (16-bit cache) whatever the batch.
    """
    seen = context if window is None else np.minimum(context, window)
    return Cost(
        flops=2.0 * batch * n_q_heads * seen * (qk_dim + v_dim),
        kv_bytes=batch * seen * n_kv_heads * (qk_dim + v_dim) * kv_bytes,
        activation_bytes=batch * n_q_heads * (qk_dim + v_dim) * io_bytes,
    )


def mla_latent_decode(batch: Num, context: Num, n_heads: int, kv_lora_rank: int, rope_dim: int,
                      *, kv_bytes: float, io_bytes: float) -> Cost:
    """DeepSeek MLA decode with the up-projections absorbed: every head attends in the latent space.

    Scores use the latent plus the RoPE key (d_c + d_r per head and cached token), values the latent
    alone: FLOPs = 2·B·H·C·(2·d_c + d_r). The cache holds one (d_c + d_r) vector per token shared by
    all heads, so bytes = B·C·(d_c + d_r)·kv_bytes and the intensity is ≈ 2·H·(2·d_c + d_r) /
    ((d_c + d_r)·kv_bytes): hundreds of FLOP/byte, where GQA's is H_q/H_kv.
    """
    return Cost(
        flops=2.0 * batch * n_heads * context * (2 * kv_lora_rank + rope_dim),
        kv_bytes=batch * context * (kv_lora_rank + rope_dim) * kv_bytes,
        activation_bytes=batch * n_heads * (2 * kv_lora_rank + rope_dim) * io_bytes,
    )


def kv_cache_write(tokens: Num, width: int, *, kv_bytes: float, io_bytes: float) -> Cost:
    """Store the new tokens' cache entries (``width`` elements each: K and V, or MLA's latent)."""
    elements = tokens * width
    return Cost(activation_bytes=elements * io_bytes, kv_bytes=elements * kv_bytes)
