"""Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5) and the short causal convolution before it.

A linear-attention layer keeps, per sequence and value head, one d_k × d_v state matrix S instead of a KV cache:
its memory and its decode cost do not grow with the context. The gated delta rule (Yang, Kautz and Hatamizadeh,
"Gated Delta Networks: Improving Mamba2 with Delta Rule", arXiv:2412.06464, eq. 10) updates it per token as

    S ← α·S·(I − β·k·kᵀ) + β·v·kᵀ,   o = S·q

with a scalar decay α and write strength β per head. Sizes: ``heads`` = value heads on this device (key heads are
shared by groups of them, as GQA's KV heads; each value head still has its own state), d_k and d_v the head widths.
"""

from __future__ import annotations

import numpy as np

from rooflm.ops.cost import Cost, Num

# Decode, per token and value head: the decay α·S (d_k·d_v), Sᵀk (2·d_k·d_v), the rank-one update
# S += k·(β·(v − Sᵀk))ᵀ (2·d_k·d_v) and the read-out Sᵀq (2·d_k·d_v): 7·d_k·d_v FLOPs (the d_v-wide
# vector work beside them is left out, as softmax is for attention).
DECODE_FLOPS_PER_STATE_ELEMENT = 7.0
# The chunk length of the chunked (WY-form) prefill kernel: flash-linear-attention's chunk_gated_delta_rule, which
# vLLM and SGLang run for Qwen3-Next, uses chunks of 64 tokens (fla/ops/gated_delta_rule/chunk.py, BT = 64).
CHUNK = 64
# Scores, gates and per-token scalars (α, β) read per token and value head besides q, k, v: 2 scalars.
GATE_SCALARS = 2


def decode_step(batch: Num, heads: int, k_heads: int, d_k: int, d_v: int, *, state_bytes: float,
                io_bytes: float) -> Cost:
    """One token per sequence through the recurrence.

    FLOPs = 7·B·H·d_k·d_v. State bytes = 2·B·H·d_k·d_v·state_bytes (every state read once and written once per
    step: the "KV" traffic of this layer, whatever the context). Activations: q and k (per key head), v and o (per
    value head) and the two gates, once each.
    """
    state = batch * heads * d_k * d_v
    return Cost(
        flops=DECODE_FLOPS_PER_STATE_ELEMENT * state,
        kv_bytes=2.0 * state * state_bytes,
        activation_bytes=batch * (2 * k_heads * d_k + 2 * heads * d_v + GATE_SCALARS * heads) * io_bytes,
    )


def chunk_flops_per_token(d_k: int, d_v: int, chunk: int = CHUNK) -> float:
    """FLOPs per token and value head of the chunked prefill (Yang et al., arXiv:2406.06484 §3.3 and
    arXiv:2412.06464 §3.3; the kernels of flash-linear-attention). Within a chunk of C tokens:
    K·Kᵀ (2C²d_k), Q·Kᵀ (2C²d_k), W = T·K (2C²d_k), U = T·V (2C²d_v) and the masked scores times the
    corrected values (2C²d_v) — 2C²(3d_k + 2d_v); the triangular solve for T, C³/3 multiply-adds (2C³/3);
    across chunks W·S, Q·S and the state update Kᵀ·U, 2C·d_k·d_v each. Per token (÷ C):
    2C·(3·d_k + 2·d_v) + 2C²/3 + 6·d_k·d_v."""
    return 2.0 * chunk * (3 * d_k + 2 * d_v) + 2.0 * chunk * chunk / 3.0 + 6.0 * d_k * d_v


def prefill_scan(batch: Num, prompt_len: Num, heads: int, k_heads: int, d_k: int, d_v: int, *, state_bytes: float,
                 io_bytes: float, chunk: int = CHUNK) -> Cost:
    """B prompts of length L through the chunked scan, each padded to whole chunks of C tokens.

    FLOPs = B·⌈L/C⌉·C·H·chunk_flops_per_token. Activations: q, k, v, the gates read and o written once per token;
    the kernel stores each chunk's starting state and reads it back for the outputs (2·⌈L/C⌉ states per sequence
    and head, fla's chunk_gated_delta_rule_fwd_h). State: each sequence's state read (a chunk continuing it) and
    written once, 2·B·H·d_k·d_v·state_bytes.
    """
    chunks = np.ceil(prompt_len / chunk)
    tokens = batch * prompt_len
    state = batch * heads * d_k * d_v
    return Cost(
        flops=batch * chunks * chunk * heads * chunk_flops_per_token(d_k, d_v, chunk),
        kv_bytes=2.0 * state * state_bytes,
        activation_bytes=(tokens * (2 * k_heads * d_k + 2 * heads * d_v + GATE_SCALARS * heads)
                          + 2.0 * chunks * state) * io_bytes,
    )


def short_conv(batch: Num, q_len: Num, channels: int, kernel: int, *, state_bytes: float, io_bytes: float) -> Cost:
    """A depthwise causal convolution of width ``kernel`` over ``channels`` (q, k and v before the recurrence).

    FLOPs = 2·B·L·channels·kernel. Bytes: the input read and the output written once (2·B·L·channels·io), the
    kernel-wide weights (channels·kernel), and each sequence's last kernel − 1 inputs read and written
    (2·B·channels·(kernel − 1)·state_bytes): the convolution's own small state, constant in the context.
    """
    tokens = batch * q_len
    return Cost(
        flops=2.0 * tokens * channels * kernel,
        weight_bytes=channels * kernel * io_bytes,
        kv_bytes=2.0 * batch * channels * (kernel - 1) * state_bytes,
        activation_bytes=2.0 * tokens * channels * io_bytes,
    )
