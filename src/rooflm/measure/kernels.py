"""How close the non-GEMM operators of an eager decoder come to the streaming roof, per operator kind.

rooflm charges a norm, a SwiGLU or decode attention its ideal main-memory bytes (one read of each input, one write
of each output). Eager PyTorch does more: transformers' RMSNorm upcasts to fp32 and runs seven kernels, RoPE
slices, negates and concatenates, and the CPU attention kernel reading a cold KV cache is latency-bound. Each
benchmark below times the operator as transformers writes it and divides rooflm's bytes for it by the time: that
fraction of the roof is the kind's calibrated memory efficiency. Sizes are those of a prefill of ``rows`` tokens
(norms, element-wise) and of a decode step with a KV cache larger than the last-level cache (attention).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rooflm.measure.results import KernelSample, Run
from rooflm.measure.timing import require_torch, time_fn
from rooflm.ops import attention, elementwise
from rooflm.ops.cost import Num

Progress = Callable[[str], None]
IO_BYTES = 2.0  # bf16 activations, as rooflm's graphs count them


def _rmsnorm(torch: Any, x: Any, w: Any) -> Any:
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
    return w * h.to(x.dtype)


def _rope(torch: Any, x: Any, cos: Any, sin: Any) -> Any:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def elementwise_kernels(rows: int, hidden: int, inter: int, heads: int, kv_heads: int,
                        device: str) -> list[tuple[str, str, Num, Callable[[], Any]]]:
    """(kind, name, rooflm bytes, kernel) for a norm, a SwiGLU, a residual add and RoPE over ``rows`` tokens."""
    torch = require_torch()
    f = torch.nn.functional
    bf16 = torch.bfloat16
    d = hidden // heads

    def t(*shape: int) -> Any:
        return torch.randn(*shape, dtype=bf16, device=device)

    x, w, g, u = t(rows, hidden), t(hidden), t(rows, inter), t(rows, inter)
    q, k, cos, sin = t(1, heads, rows, d), t(1, kv_heads, rows, d), t(1, 1, rows, d), t(1, 1, rows, d)
    return [
        ("norm", "rmsnorm", elementwise.rmsnorm(rows, hidden, io_bytes=IO_BYTES).bytes, lambda: _rmsnorm(torch, x, w)),
        ("elementwise", "swiglu", elementwise.swiglu(rows, inter, io_bytes=IO_BYTES).bytes,
         lambda: f.silu(g) * u),
        ("elementwise", "residual_add", elementwise.residual_add(rows, hidden, io_bytes=IO_BYTES).bytes,
         lambda: x + x),
        ("elementwise", "rope", elementwise.rope(rows, heads + kv_heads, d, d, io_bytes=IO_BYTES).bytes,
         lambda: (_rope(torch, q, cos, sin), _rope(torch, k, cos, sin))),
    ]


def decode_attention_kernel(batch: int, context: int, heads: int, kv_heads: int, head_dim: int, pool_bytes: float,
                            device: str) -> tuple[float, Callable[[], Any]]:
    """SDPA for one decode step (grouped-query, boolean mask as transformers passes with a static cache), cycling
    through copies of the KV cache whose total exceeds the last-level cache, as the layers of a model do."""
    torch = require_torch()
    f = torch.nn.functional
    bf16 = torch.bfloat16
    cost = attention.decode_attention(batch, context, heads, kv_heads, head_dim, head_dim, kv_bytes=IO_BYTES,
                                      io_bytes=IO_BYTES)
    per_copy = float(cost.kv_bytes)
    copies = max(2, math.ceil(pool_bytes / per_copy))
    first = torch.randn(2, batch, kv_heads, context, head_dim, dtype=bf16, device=device)
    pool = [first] + [first.clone() for _ in range(copies - 1)]
    q = torch.randn(batch, heads, 1, head_dim, dtype=bf16, device=device)
    mask = torch.ones(batch, 1, 1, context, dtype=torch.bool, device=device)
    turn = [0]

    def step() -> None:
        kv = pool[turn[0] % len(pool)]
        turn[0] += 1
        f.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask, enable_gqa=True)

    return float(cost.bytes), step


def measure_kernels(device: str, rows: int, layer: tuple[int, int], pool_bytes: float, repeats: int,
                    progress: Progress) -> list[KernelSample]:
    """Elementwise kinds at a prefill of ``rows`` tokens; attention at a decode step of 16 sequences × 1024 tokens
    with the layer's heads (head_dim 128, 4 query heads per KV head)."""
    hidden, inter = layer
    heads = max(1, hidden // 128)
    kv_heads = max(1, heads // 4)
    out: list[KernelSample] = []
    for kind, name, nbytes, fn in elementwise_kernels(rows, hidden, inter, heads, kv_heads, device):
        progress(f"eager {name}, {rows} tokens")
        t = time_fn(fn, device=device, warmup=2, repeats=repeats)
        out.append(KernelSample(kind=kind, name=name, bytes=float(nbytes), run=Run.of(t)))
    progress("decode attention, cold KV cache")
    nbytes, step = decode_attention_kernel(16, 1024, heads, kv_heads, 128, pool_bytes, device)
    t = time_fn(step, device=device, warmup=2, repeats=max(repeats, 8))
    out.append(KernelSample(kind="attention", name="decode_attention", bytes=nbytes, run=Run.of(t)))
    return out
