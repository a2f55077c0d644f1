"""The operators of one phase of a dense decoder-only model, top to bottom like the model runs.

Sizes may be numpy arrays (a sweep): every formula broadcasts, so a sweep is one call.
"""

from __future__ import annotations

from rooflm.ops import attention, elementwise, gemm
from rooflm.ops.cost import Num, Op
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import IO_DTYPE, QuantScheme


class _Builder:
    """Shared pieces of the prefill and decode graphs for one model and scheme."""

    def __init__(self, model: ModelSpec, quant: QuantScheme) -> None:
        self.m = model
        self.q = quant
        self.io = bytes_per_element(IO_DTYPE)

    def linear(self, name: str, tokens: Num, k: int, n: int, bias: bool, op_class: str = "weight_gemm",
               count: int | None = None) -> Op:
        q = self.q
        cost = gemm.linear(tokens, k, n, weight_bytes_per_el=q.weight_bytes_per_element(k),
                           in_bytes=q.act_bytes, out_bytes=self.io, bias=bias, bias_bytes=self.io)
        return Op(name, "gemm", op_class, self.m.num_layers if count is None else count, cost,  # type: ignore[arg-type]
                  q.compute, weight_shape=(k, n))

    def elementwise(self, name: str, kind: str, cost_fn, *args, count: int | None = None, **kw) -> Op:
        cost = cost_fn(*args, io_bytes=self.io, **kw)
        return Op(name, kind, "other", self.m.num_layers if count is None else count, cost, IO_DTYPE)  # type: ignore[arg-type]

    def embedding(self, tokens: Num) -> Op:
        m = self.m
        cost = elementwise.embedding_lookup(tokens, m.hidden_size, m.vocab_size, table_bytes=self.io, io_bytes=self.io)
        return Op("embedding", "embedding", "other", 1, cost, IO_DTYPE)

    def block_before_attention(self, tokens: Num) -> list[Op]:
        m = self.m
        ops = [
            self.elementwise("input_norm", "norm", elementwise.rmsnorm, tokens, m.hidden_size),
            self.linear("qkv_proj", tokens, m.hidden_size, m.q_width + 2 * m.kv_width, m.qkv_bias),
        ]
        if m.qk_norm:
            ops.append(self.elementwise("qk_norm", "norm", elementwise.rmsnorm,
                                        tokens * (m.num_q_heads + m.num_kv_heads), m.head_dim))
        ops.append(self.elementwise("rope", "elementwise", elementwise.rope, tokens,
                                    m.num_q_heads + m.num_kv_heads, m.head_dim, m.rotary_dim))
        kv = attention.kv_cache_write(tokens, m.num_kv_heads, m.head_dim, kv_bytes=self.q.kv_bytes, io_bytes=self.io)
        ops.append(Op("kv_cache_write", "memory", "attention", m.num_layers, kv, IO_DTYPE))
        return ops

    def block_after_attention(self, tokens: Num) -> list[Op]:
        m = self.m
        return [
            self.linear("o_proj", tokens, m.q_width, m.hidden_size, m.o_bias),
            self.elementwise("attn_residual_add", "elementwise", elementwise.residual_add, tokens, m.hidden_size),
            self.elementwise("post_attention_norm", "norm", elementwise.rmsnorm, tokens, m.hidden_size),
            self.linear("gate_up_proj", tokens, m.hidden_size, 2 * m.intermediate_size, m.mlp_bias),
            self.elementwise("swiglu", "elementwise", elementwise.swiglu, tokens, m.intermediate_size),
            self.linear("down_proj", tokens, m.intermediate_size, m.hidden_size, m.mlp_bias),
            self.elementwise("mlp_residual_add", "elementwise", elementwise.residual_add, tokens, m.hidden_size),
        ]

    def head(self, tokens: Num, logit_rows: Num) -> list[Op]:
        m = self.m
        norm = self.elementwise("final_norm", "norm", elementwise.rmsnorm, tokens, m.hidden_size, count=1)
        if not m.tie_word_embeddings:
            return [norm, self.linear("lm_head", logit_rows, m.hidden_size, m.vocab_size, False, count=1)]
        # A tied head multiplies by the embedding table, which stays in the I/O dtype.
        cost = gemm.linear(logit_rows, m.hidden_size, m.vocab_size, weight_bytes_per_el=self.io,
                           in_bytes=self.io, out_bytes=self.io)
        head = Op("lm_head", "gemm", "weight_gemm", 1, cost, IO_DTYPE, weight_shape=(m.hidden_size, m.vocab_size))
        return [norm, head]


def prefill_ops(model: ModelSpec, quant: QuantScheme, batch: Num, prompt_len: Num,
                lm_head_all_tokens: bool = False) -> list[Op]:
    """B prompts of length L processed at once; causal fused attention; logits for the last token
    of each prompt (or every token, for scoring)."""
    b = _Builder(model, quant)
    tokens = batch * prompt_len
    m = model
    attn = attention.prefill_attention(batch, prompt_len, m.num_q_heads, m.num_kv_heads, m.head_dim, io_bytes=b.io)
    return [
        b.embedding(tokens),
        *b.block_before_attention(tokens),
        Op("attention", "attention", "attention", m.num_layers, attn, IO_DTYPE),
        *b.block_after_attention(tokens),
        *b.head(tokens, tokens if lm_head_all_tokens else batch),
    ]


def decode_ops(model: ModelSpec, quant: QuantScheme, batch: Num, context: Num) -> list[Op]:
    """One new token for each of B sequences whose caches hold ``context`` tokens."""
    b = _Builder(model, quant)
    m = model
    attn = attention.decode_attention(batch, context, m.num_q_heads, m.num_kv_heads, m.head_dim,
                                      kv_bytes=quant.kv_bytes, io_bytes=b.io)
    return [
        b.embedding(batch),
        *b.block_before_attention(batch),
        Op("attention", "attention", "attention", m.num_layers, attn, IO_DTYPE),
        *b.block_after_attention(batch),
        *b.head(batch, batch),
    ]
