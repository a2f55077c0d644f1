"""The per-operator overhead of an eager decoder, measured on a model so small that its kernels take no time.

A decode step of a tiny model is almost pure framework cost (Python, dispatch, allocation, thread fork/join).
It is measured with transformers when installed — the framework `rooflm validate` runs and most users serve
with — and otherwise with a plain PyTorch decoder written op for op like transformers' Llama.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooflm.measure.configs import tiny_config
from rooflm.measure.timing import MissingDependencyError, require_torch

TINY_CONTEXT = 16


def eager_decode(layers: int, device: str = "cpu") -> tuple[str, Callable[[], None], Callable[[], None]]:
    """(backend, rewind, step) for one decode step of the tiny decoder at batch 1."""
    try:
        import transformers

        from rooflm.measure.hf import build_model, decode_step

        rewind, step = decode_step(build_model(tiny_config(layers), device), 1, TINY_CONTEXT)
        return f"transformers {transformers.__version__}", rewind, step
    except (ImportError, MissingDependencyError):
        rewind, step = _plain_decode(layers, device)
        return "torch", rewind, step


def _plain_decode(layers: int, device: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """The same operators as transformers' Llama decode step (RMSNorm in fp32, rotate-half RoPE, in-place
    cache write, SDPA with GQA, SwiGLU), in plain PyTorch."""
    torch = require_torch()
    f = torch.nn.functional
    cfg = tiny_config(layers)
    hidden, inter = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    n_q, n_kv = int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"])
    d = hidden // n_q
    dt = torch.bfloat16
    ctx = TINY_CONTEXT

    def w(*shape: int) -> Any:
        return torch.randn(*shape, dtype=dt, device=device) * 0.02

    def rmsnorm(x: Any, weight: Any) -> Any:
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return weight * h.to(dt)

    def rotate(x: Any) -> Any:
        return torch.cat((-x[..., d // 2:], x[..., : d // 2]), dim=-1)

    blocks = [{"wq": w(n_q * d, hidden), "wk": w(n_kv * d, hidden), "wv": w(n_kv * d, hidden),
               "wo": w(hidden, n_q * d), "wg": w(inter, hidden), "wu": w(inter, hidden), "wd": w(hidden, inter),
               "n1": torch.ones(hidden, dtype=dt, device=device), "n2": torch.ones(hidden, dtype=dt, device=device),
               "k": torch.zeros(1, n_kv, ctx + 1, d, dtype=dt, device=device),
               "v": torch.zeros(1, n_kv, ctx + 1, d, dtype=dt, device=device)} for _ in range(layers)]
    embed, head, final = w(int(cfg["vocab_size"]), hidden), w(int(cfg["vocab_size"]), hidden), torch.ones(hidden)
    ids = torch.zeros(1, 1, dtype=torch.long, device=device)
    pos = torch.tensor([ctx], device=device)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32, device=device) / d))

    def step() -> None:
        with torch.inference_mode():
            x = f.embedding(ids, embed)
            freqs = pos[None, :, None].float() * inv_freq
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos().to(dt).unsqueeze(1), emb.sin().to(dt).unsqueeze(1)
            for b in blocks:
                h = rmsnorm(x, b["n1"])
                q = f.linear(h, b["wq"]).view(1, 1, -1, d).transpose(1, 2)
                k = f.linear(h, b["wk"]).view(1, 1, -1, d).transpose(1, 2)
                v = f.linear(h, b["wv"]).view(1, 1, -1, d).transpose(1, 2)
                q, k = q * cos + rotate(q) * sin, k * cos + rotate(k) * sin
                b["k"].index_copy_(2, pos, k)
                b["v"].index_copy_(2, pos, v)
                o = f.scaled_dot_product_attention(q, b["k"], b["v"], enable_gqa=True)
                x = x + f.linear(o.transpose(1, 2).reshape(1, 1, -1), b["wo"])
                h = rmsnorm(x, b["n2"])
                x = x + f.linear(f.silu(f.linear(h, b["wg"])) * f.linear(h, b["wu"]), b["wd"])
            f.linear(rmsnorm(x, final.to(dt)), head)

    return (lambda: None), step
