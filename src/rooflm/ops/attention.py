"""Attention: fused causal prefill, decode over the KV cache, and the KV-cache write.

FLOPs count the two matmuls only (Q·Kᵀ and P·V, 2 FLOPs per multiply-add), as FlashAttention's
papers do; softmax and masking are a few FLOPs per score, on the vector units, and left out.
"""

from __future__ import annotations

from rooflm.ops.cost import Cost, Num


def causal_pairs(prompt_len: Num) -> Num:
    """Query-key pairs under a causal mask: query i sees keys 0..i, so L·(L+1)/2 per head."""
    return prompt_len * (prompt_len + 1) / 2.0


def prefill_attention(batch: Num, prompt_len: Num, n_q_heads: int, n_kv_heads: int, head_dim: int,
                      *, io_bytes: float) -> Cost:
    """Fused (flash-style) causal attention over B prompts of length L.

    FLOPs = 4·B·H_q·d·L(L+1)/2. Bytes: Q, K, V read once and O written once (the score matrix
    never reaches main memory).
    """
    tokens = batch * prompt_len
    return Cost(
        flops=4.0 * batch * n_q_heads * head_dim * causal_pairs(prompt_len),
        activation_bytes=tokens * head_dim * (2 * n_q_heads + 2 * n_kv_heads) * io_bytes,
    )


def decode_attention(batch: Num, context: Num, n_q_heads: int, n_kv_heads: int, head_dim: int,
                     *, kv_bytes: float, io_bytes: float) -> Cost:
    """One new query token per sequence attending to its own ``context`` cached tokens.

    FLOPs = 4·B·H_q·C·d. KV bytes = B·C·2·H_kv·d·kv_bytes: every sequence reads its own cache,
    so the arithmetic intensity is ≈ H_q/H_kv FLOP/byte (bf16 cache) whatever the batch.
    """
    return Cost(
        flops=4.0 * batch * n_q_heads * context * head_dim,
        kv_bytes=batch * context * 2 * n_kv_heads * head_dim * kv_bytes,
        activation_bytes=batch * 2 * n_q_heads * head_dim * io_bytes,
    )


def kv_cache_write(tokens: Num, n_kv_heads: int, head_dim: int, *, kv_bytes: float, io_bytes: float) -> Cost:
    """Store the new tokens' K and V: read them from the projection output, write them to the cache."""
    elements = tokens * 2 * n_kv_heads * head_dim
    return Cost(activation_bytes=elements * io_bytes, kv_bytes=elements * kv_bytes)
