"""DeepSeek sparse attention (DSA; DeepSeek-V3.2): a lightning indexer scores every cached token for each query, and
attention then reads only the ``top_k`` tokens it selects (DeepSeek-AI, "DeepSeek-V3.2-Exp: Boosting Long-Context
Efficiency with DeepSeek Sparse Attention", 2025, §2.1).

The indexer has ``heads`` small heads of width ``dim`` over one shared key per token (its own cache, beside MLA's
latent): score(t, s) = Σ_h w_h(t) · ReLU(q_h(t) · k(s)). Its cost grows with the context; the attention's stops at
``top_k``. The attention over the selected tokens is priced by rooflm.ops.attention with the context capped at
``top_k`` (decode) or a window of ``top_k`` (prefill: query i sees min(i + 1, top_k) tokens).
"""

from __future__ import annotations

import numpy as np

from rooflm.ops.attention import causal_pairs
from rooflm.ops.cost import Cost, Num
from rooflm.specs.model import index_cache_bytes_per_token

# The selected positions are written as int32 indices, top_k per query, for the sparse attention kernel to read.
INDEX_BYTES = 4.0


def indexer_decode(batch: Num, context: Num, heads: int, dim: int, top_k: int, *, io_bytes: float) -> Cost:
    """One query per sequence scored against all C cached keys, then the top_k kept.

    FLOPs = 2·B·C·heads·(dim + 1): the q·k products (2·dim per head and key) and the weighted sum of the ReLU'd
    scores over heads (2 per head and key). Bytes: every cached key read once, B·C·(dim + 4) (fp8 keys and their
    scale: the indexer's own cache); the queries and head weights read (B·heads·(dim + 1)·io) and min(C, top_k)
    int32 indices written per sequence.
    """
    return Cost(
        flops=2.0 * batch * context * heads * (dim + 1),
        kv_bytes=batch * context * index_cache_bytes_per_token(dim),
        activation_bytes=batch * heads * (dim + 1) * io_bytes + batch * np.minimum(context, top_k) * INDEX_BYTES,
    )


def indexer_prefill(batch: Num, prompt_len: Num, heads: int, dim: int, top_k: int, *, io_bytes: float) -> Cost:
    """Every prompt token scored against the keys before it (causal: L·(L+1)/2 pairs per sequence), fused as flash
    attention is (the score matrix stays on chip).

    FLOPs = 2·B·pairs·heads·(dim + 1). Bytes: queries and head weights read once (B·L·heads·(dim + 1)·io), keys
    once (B·L·(dim + 4)), and min(i + 1, top_k) int32 indices written for query i: B·pairs(top_k)·4.
    """
    tokens = batch * prompt_len
    return Cost(
        flops=2.0 * batch * causal_pairs(prompt_len) * heads * (dim + 1),
        kv_bytes=tokens * index_cache_bytes_per_token(dim),
        activation_bytes=tokens * heads * (dim + 1) * io_bytes
        + batch * causal_pairs(prompt_len, top_k) * INDEX_BYTES,
    )


def index_cache_write(tokens: Num, dim: int, *, io_bytes: float) -> Cost:
    """The new tokens' indexer keys: read in bf16, stored in fp8 with their scale."""
    return Cost(activation_bytes=tokens * dim * io_bytes, kv_bytes=tokens * index_cache_bytes_per_token(dim))
