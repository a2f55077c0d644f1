"""The operators of one step on one device, top to bottom like the model runs.

Sizes may be numpy arrays (a sweep): every formula broadcasts, so a sweep is one call. The step
is described per data-parallel replica (``batch`` sequences of ``q_len`` new tokens each); tensor,
expert and pipeline parallelism shrink what each device computes and add communication operators.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rooflm.core.step import DEFAULT_OPTIONS, Options, Speculation, Step
from rooflm.kinds import OpClass, OpKind
from rooflm.ops import attention, comm, elementwise, gemm, linear_attention, moe, sparse_attention
from rooflm.ops.cost import Cost, Num, Op, any_nonzero
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.kernels import (
    DECODE_ATTENTION,
    MLA_DECODE,
    PREFILL_ATTENTION,
    SMALL_HEAD_DIM,
    SMALL_HEADS,
    kernel_family,
)
from rooflm.specs.model import MlpSpec, ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import IO_DTYPE, QuantScheme
from rooflm.specs.quant_costs import QuantCosts

# Routing a token: a softmax over the router's scores (exp, sum, divide) and the top-k selection's compares and
# the renormalisation of the picked weights, about five operations per score (one per expert).
TOPK_FLOPS_PER_SCORE = 5.0
# The attention output gate (Qwen3-Next): a sigmoid (exp, add, divide) and a multiply per output element.
OUTPUT_GATE_FLOPS = 4.0


def moe_group_tokens(tokens: Num, parallel: Parallelism, replicas: Num | None = None) -> Num:
    """The tokens one device's MoE layer routes: under EP it serves the tokens of every replica of its stage —
    ``replicas`` times the busiest replica's ``tokens`` (dp unless fewer sequences than dp × its batch exist)."""
    if parallel.ep <= 1:
        return tokens
    return tokens * (parallel.dp if replicas is None else replicas)


@dataclass(frozen=True)
class ExpertLoad:
    """What a step's routing does to one MoE layer: the tokens routed, the distinct experts they hit (all classes,
    all devices) and the tokens each hit expert sees on average."""

    group_tokens: Num
    experts_hit: Num
    tokens_per_expert: Num


def expert_load(model: ModelSpec, tokens: Num, options: Options) -> ExpertLoad:
    """``tokens``: one replica's tokens in the step (batch / dp × tokens per sequence)."""
    spec = model.moe
    assert spec is not None
    group = moe_group_tokens(tokens, options.parallel, options.group_replicas)
    classes = moe.expert_classes(spec.num_experts, spec.top_k, options.routing)
    hit = sum(moe.distinct_experts(group, n, pick) for n, pick in classes)
    return ExpertLoad(group, hit, group * spec.top_k / np.maximum(hit, 1e-30))


def is_routed_expert_gemm(op: Op) -> bool:
    """A GEMM of the routed experts (not the shared experts, not the router)."""
    return op.kind == "gemm" and op.module == "experts"


class GraphBuilder:
    def __init__(self, model: ModelSpec, quant: QuantScheme, options: Options = DEFAULT_OPTIONS) -> None:
        self.m, self.q, self.o = model, quant, options
        self.p = options.parallel
        self.io = bytes_per_element(IO_DTYPE)
        self._module_costs = dict(options.module_costs)

    def costs(self, module: str) -> QuantCosts:
        return self._module_costs.get(module, self.o.costs)

    # -- building blocks ------------------------------------------------------------------------------
    def op(self, name: str, kind: OpKind, op_class: OpClass, count: int, cost: Cost, dtype: str = IO_DTYPE,
           shape: tuple[int, int] | None = None, group: int = 1) -> Op:
        return Op(name, kind, op_class, count, cost, dtype, weight_shape=shape, comm_group=group)

    def linear(self, name: str, tokens: Num, k: int, n: int, count: int, bias: bool = False,
               op_class: OpClass = "weight_gemm", instances: Num = 1.0, module: str = "attention") -> Op:
        """``instances`` copies of a [tokens, k] × [k, n] GEMM (heads of a batched GEMM, or experts), in the scheme
        of its module class."""
        q, costs = self.q.for_module(module), self.costs(module)
        quantized = not q.plain
        w = q.weight_bytes_per_element(k)
        a = q.act_bytes
        cost = gemm.linear(tokens, k, n, weight_bytes_per_el=w, in_bytes=a, out_bytes=self.io, bias=bias,
                           bias_bytes=self.io)
        if quantized and costs.weight_ops_per_element:
            # Every thread block along M converts its weight tile again: ⌈M / tile_m⌉ passes over K·N.
            passes = np.ceil(np.maximum(tokens, 1e-9) / costs.weight_tile_m)
            cost = cost.with_vector_ops(passes * k * n * costs.weight_ops_per_element)
        if quantized and costs.rescale_ops_per_output:
            # Block scales along K: every output element is rescaled once per K block.
            cost = cost.with_vector_ops(tokens * n * np.ceil(k / costs.k_block) * costs.rescale_ops_per_output)
        family = kernel_family(q if quantized else None, grouped=module == "experts")
        return Op(name, "gemm", op_class, count, cost.scaled(instances), q.compute, weight_shape=(k, n), gemm_m=tokens,
                  instances=instances, family=family, module=module, scheme=q.name, weight_dtype=q.weight)

    def activation_quant(self, gemm: Op) -> Op:
        """Dynamic per-token quantization of a GEMM's input: read it in bf16, write it in the GEMM's
        activation dtype with one fp32 scale per row."""
        k = gemm.weight_shape[0] if gemm.weight_shape else 0
        rows, costs = gemm.gemm_rows, self.costs(gemm.module)
        cost = Cost(activation_bytes=rows * k * (self.io + self.q.for_module(gemm.module).act_bytes) + rows * 4.0,
                    vector_ops=rows * k * costs.activation_ops_per_element)
        kind_class = "other" if gemm.op_class == "weight_gemm" else gemm.op_class
        op = self.op(f"{gemm.name}.act_quant", "elementwise", kind_class, gemm.count, cost)
        if gemm.moe_shape is None:
            dense = not np.ndim(gemm.instances) and float(gemm.instances) == 1.0
            return replace(op, quantizes=gemm.family) if dense else op
        return replace(op, moe_shape=gemm.moe_shape, moe_tokens=gemm.moe_tokens, moe_scheme=gemm.moe_scheme)

    def with_activation_quant(self, ops: list[Op]) -> list[Op]:
        out: list[Op] = []
        for op in ops:
            if op.kind == "gemm" and op.module and any_nonzero(op.gemm_rows) and self.costs(op.module).activation_quant \
                    and self.q.for_module(op.module).act_bytes < self.io:
                out.append(self.activation_quant(op))
            out.append(op)
        return out

    def norm(self, name: str, rows: Num, width: int, count: int) -> Op:
        return self.op(name, "norm", "other", count, elementwise.rmsnorm(rows, width, io_bytes=self.io))

    def all_reduce(self, name: str, tokens: Num, count: int) -> list[Op]:
        if self.p.tp == 1:
            return []
        cost = comm.all_reduce(tokens * self.m.hidden_size * self.io, self.p.tp, self.p.algorithm)
        return [self.op(name, "communication", "communication", count, cost, group=self.p.tp)]

    # -- the model ------------------------------------------------------------------------------------
    def build(self, step: Step) -> list[Op]:
        m, p = self.m, self.p
        t = step.tokens
        h = m.hidden_size
        n = m.num_layers
        vocab = m.vocab_size // p.tp
        emb = elementwise.embedding_lookup(t, h, vocab, table_bytes=self.io, io_bytes=self.io)
        ops = [self.op("embedding", "embedding", "other", 1, emb), *self.all_reduce("embedding_all_reduce", t, 1)]
        ops.append(self.norm("input_norm", t, h, n))
        ops += self.attention(step)
        ops += self.all_reduce("attn_all_reduce", t, n)
        residual = elementwise.residual_add(t, h, io_bytes=self.io)
        ops.append(self.op("attn_residual_add", "elementwise", "other", n, residual))
        ops.append(self.norm("post_attention_norm", t, h, n))
        dense = sum(g.count for g in m.layers if not g.moe)
        if dense:
            assert m.mlp is not None  # the config readers give a model with dense layers their MLP
            ops += self.mlp("", m.mlp, t, dense, module="mlp")
            ops += self.all_reduce("mlp_all_reduce", t, dense)
        if n - dense:
            ops += self.moe_layer(step, n - dense)
        ops.append(self.op("mlp_residual_add", "elementwise", "other", n, residual))
        ops.append(self.norm("final_norm", t, h, 1))
        ops += self.head(step.logit_rows)
        if p.pp > 1:
            ops.append(self.op("pipeline_send", "communication", "communication", p.pp - 1,
                               comm.point_to_point(t * h * self.io), group=p.devices))
        return self.with_activation_quant(ops)

    def kv_dequant(self, cost: Cost) -> Cost:
        """Attention converts every cached element it loads back to bf16 (quantized caches)."""
        ops = self.o.costs.kv_ops_per_element
        return cost.with_vector_ops(cost.kv_bytes / self.q.kv_bytes * ops) if ops else cost

    def head(self, rows: Num) -> list[Op]:
        m, p = self.m, self.p
        # A tied head multiplies by the embedding table, stored as the embedding is.
        ops = [self.linear("lm_head", rows, m.hidden_size, m.vocab_size // p.tp, 1,
                           module="embedding" if m.tie_word_embeddings else "lm_head")]
        if p.tp > 1:
            gather = comm.all_gather(rows * m.vocab_size * self.io, p.tp)
            ops.append(self.op("logits_all_gather", "communication", "communication", 1, gather, group=p.tp))
        return ops

    def mlp(self, prefix: str, spec: MlpSpec, tokens: Num, count: int, op_class: OpClass = "weight_gemm",
            instances: Num = 1.0, shards: int | None = None, module: str = "mlp") -> list[Op]:
        h = self.m.hidden_size
        width = spec.intermediate_size // (self.p.tp if shards is None else shards)
        act = elementwise.swiglu(tokens, width, io_bytes=self.io).scaled(instances)
        return [
            self.linear(f"{prefix}gate_up_proj", tokens, h, 2 * width, count, spec.bias, op_class, instances, module),
            self.op(f"{prefix}swiglu", "elementwise", "other" if op_class == "weight_gemm" else op_class, count, act),
            self.linear(f"{prefix}down_proj", tokens, width, h, count, spec.bias, op_class, instances, module),
        ]

    # -- attention ------------------------------------------------------------------------------------
    def windows(self) -> dict[int | None, int]:
        out: dict[int | None, int] = {}
        for g in self.m.layers:
            if not g.linear:
                out[g.sliding_window] = out.get(g.sliding_window, 0) + g.count
        return out

    def attention(self, step: Step) -> list[Op]:
        return (self.self_attention(step) if self.m.attention_layers else []) + self.linear_attention(step)

    def self_attention(self, step: Step) -> list[Op]:
        if step.prefill or np.all(np.asarray(step.q_len) == 1):
            return self._attention(step)
        # A verify step: q_len query rows per sequence against its cache. Priced as batch·q_len one-query rows whose
        # cache reads (and their dequantization, and a naive MLA's up-projection of the cache) happen once per
        # sequence: every query of a sequence shares its KV, as a chunk's queries share the past (engine.py).
        q = step.q_len
        ops = self._attention(replace(step, batch=step.batch * q, q_len=1.0))
        return [_per_sequence(op, q) for op in ops]

    def _attention(self, step: Step) -> list[Op]:
        return self.mla(step) if self.m.attention.kind == "mla" else self.gqa(step)

    def gqa(self, step: Step) -> list[Op]:
        a, p, n, t = self.m.attention, self.p, self.m.attention_layers, step.tokens
        hq, hkv = a.num_q_heads // p.tp, p.kv_heads_per_device(self.m)
        d, dv, h = a.head_dim, a.v_head_dim, self.m.hidden_size
        q_out = hq * d * (2 if a.output_gate else 1)  # the output gate is computed beside the queries
        ops = [self.linear("qkv_proj", t, h, q_out + hkv * (d + dv), n, a.qkv_bias)]
        if a.qk_norm != "none":
            rows, width = (t * (hq + hkv), d) if a.qk_norm == "head" else (t, hq * d + hkv * d)
            ops.append(self.norm("qk_norm", rows, width, n))
        rope = elementwise.rope(t, hq + hkv, d, a.rotary_dim, io_bytes=self.io)
        ops.append(self.op("rope", "elementwise", "other", n, rope))
        write = attention.kv_cache_write(t, hkv * (d + dv), kv_bytes=self.q.kv_bytes, io_bytes=self.io)
        ops.append(self.op("kv_cache_write", "memory", "attention", n, write))
        for window, count in self.windows().items():
            name = _windowed("attention", window)
            if step.prefill:
                cost = attention.prefill_attention(step.batch, step.q_len, hq, hkv, d, dv, io_bytes=self.io,
                                                   window=window)
                ops.append(self.attention_op(name, count, cost, self.prefill_attention_family(), step.q_len))
            else:
                cost = self.kv_dequant(attention.decode_attention(
                    step.batch, step.context, hq, hkv, d, dv, kv_bytes=self.q.kv_bytes, io_bytes=self.io, window=window))
                ops.append(self.attention_op(name, count, cost, DECODE_ATTENTION))
        if a.output_gate:
            gate = Cost(flops=OUTPUT_GATE_FLOPS * t * hq * dv, activation_bytes=3.0 * t * hq * dv * self.io)
            ops.append(self.op("output_gate", "elementwise", "other", n, gate))
        ops.append(self.linear("o_proj", t, hq * dv, h, n, a.o_bias))
        return ops

    def linear_attention(self, step: Step) -> list[Op]:
        """Gated DeltaNet layers: input projections, the short convolution, the recurrence over each sequence's state
        (a chunked scan in prefill, one update per token in decode), the gated norm and the output projection.
        Heads split over TP as attention heads do."""
        spec, n = self.m.linear_attention, self.m.linear_layers
        if spec is None or not n:
            return []
        t, h, tp = step.tokens, self.m.hidden_size, self.p.tp
        hk, hv = -(-spec.num_k_heads // tp), -(-spec.num_v_heads // tp)
        dk, dv = spec.head_k_dim, spec.head_v_dim
        conv = 2 * hk * dk + hv * dv
        state = self.state_bytes
        ops = [self.linear("linear_attn.in_proj", t, h, conv + hv * dv + 2 * hv, n)]
        ops.append(self.op("linear_attn.conv", "elementwise", "attention", n, linear_attention.short_conv(
            step.batch, step.q_len, conv, spec.conv_kernel, state_bytes=state, io_bytes=self.io)))
        if step.prefill:
            cost = linear_attention.prefill_scan(step.batch, step.q_len, hv, hk, dk, dv, state_bytes=state,
                                                 io_bytes=self.io)
        else:  # a verify step's q_len tokens run through the recurrence in turn; the state is read and written once
            rows = linear_attention.decode_step(step.tokens, hv, hk, dk, dv, state_bytes=state, io_bytes=self.io)
            cost = replace(rows, kv_bytes=rows.kv_bytes / step.q_len)
        ops.append(self.op("linear_attn.recurrence", "attention", "attention", n, cost))
        ops.append(self.norm("linear_attn.gated_norm", t * hv, dv, n))
        ops.append(self.linear("linear_attn.out_proj", t, hv * dv, h, n))
        return ops

    @property
    def state_bytes(self) -> float:
        """Bytes per element of the recurrent state: the model's dtype, as vLLM keeps it by default
        (``mamba_ssm_cache_dtype`` "auto")."""
        return self.io

    def attention_op(self, name: str, count: int, cost: Cost, family: str, q_len: Num = 0.0) -> Op:
        """An attention kernel of ``family``; a prefill one carries its query rows per sequence (the prompt or chunk),
        which set how well it fills the tensor cores (the masked diagonal blocks weigh most on short prompts)."""
        return replace(self.op(name, "attention", "attention", count, cost), family=family, gemm_m=q_len)

    def prefill_attention_family(self) -> str:
        """The prefill kernel's family: heads of 64 dimensions or fewer do half the MMA work per tile of K and V they
        load, and run their own variant where one was measured."""
        a = self.m.attention
        qk_dim = a.qk_nope_head_dim + a.qk_rope_head_dim if a.kind == "mla" else a.head_dim
        return PREFILL_ATTENTION + (SMALL_HEADS if qk_dim <= SMALL_HEAD_DIM else "")

    def mla(self, step: Step) -> list[Op]:
        """DeepSeek's multi-head latent attention. The down-projections (q_a, kv_a) are small and
        replicated across tensor-parallel devices; the latent cache is replicated too."""
        a, p, n, t, h = self.m.attention, self.p, self.m.attention_layers, step.tokens, self.m.hidden_size
        heads = a.num_q_heads // p.tp
        nope, rope_d, dc, dv = a.qk_nope_head_dim, a.qk_rope_head_dim, a.kv_lora_rank, a.v_head_dim
        ops: list[Op] = []
        if a.q_lora_rank:
            ops += [self.linear("q_a_proj", t, h, a.q_lora_rank, n), self.norm("q_a_norm", t, a.q_lora_rank, n),
                    self.linear("q_b_proj", t, a.q_lora_rank, heads * (nope + rope_d), n)]
        else:
            ops.append(self.linear("q_proj", t, h, heads * (nope + rope_d), n))
        ops += [self.linear("kv_a_proj", t, h, dc + rope_d, n), self.norm("kv_a_norm", t, dc, n)]
        rope = elementwise.rope(t, heads + 1, rope_d, rope_d, io_bytes=self.io)
        ops.append(self.op("rope", "elementwise", "other", n, rope))
        write = attention.kv_cache_write(t, dc + rope_d, kv_bytes=self.q.kv_bytes, io_bytes=self.io)
        ops.append(self.op("kv_cache_write", "memory", "attention", n, write))
        ops += self.indexer(step)
        # DSA: each query attends to the top-k tokens its indexer selects, at most top_k of them (a window of top_k
        # in prefill: query i sees min(i + 1, top_k) tokens); the cache still holds the whole context.
        top_k = a.index_topk or None
        seen = step.context if top_k is None else np.minimum(step.context, top_k)
        if step.prefill:
            # Prefill up-projects the new tokens' latents to per-head K and V (compute-bound anyway).
            ops.append(self.linear("kv_b_proj", t, dc, heads * (nope + dv), n))
            cost = attention.prefill_attention(step.batch, step.q_len, heads, heads, nope + rope_d, dv, io_bytes=self.io,
                                               window=top_k)
            ops.append(self.attention_op("attention", n, cost, self.prefill_attention_family(), step.q_len))
        elif self.o.mla_decode == "absorbed":
            ops.append(self.linear("q_absorb", t, nope, dc, n, instances=heads))
            cost = self.kv_dequant(attention.mla_latent_decode(step.batch, seen, heads, dc, rope_d,
                                                               kv_bytes=self.q.kv_bytes, io_bytes=self.io))
            ops.append(self.attention_op("attention_latent", n, cost, MLA_DECODE))
            ops.append(self.linear("v_absorb", t, dc, dv, n, instances=heads))
        else:
            # Naive: every step up-projects every cached latent to per-head K and V, then runs plain MHA
            # over them: the latent cache is read once, the K and V it expands to cross memory twice.
            cached = step.batch * seen
            width = heads * (nope + dv)
            q = self.q.for_module("attention")
            up = Cost(flops=2.0 * cached * dc * width, weight_bytes=dc * width * q.weight_bytes_per_element(dc),
                      activation_bytes=cached * width * self.io, kv_bytes=cached * (dc + rope_d) * self.q.kv_bytes)
            # M is every cached token: the rows the tile model (rooflm.core.levels) and the GEMM's compute curve read.
            ops.append(replace(self.op("kv_b_proj_cache", "gemm", "attention", n, up, q.compute, (dc, width)),
                               module="attention", scheme=q.name, weight_dtype=q.weight, gemm_m=cached))
            mha = attention.decode_attention(step.batch, seen, heads, heads, nope + rope_d, dv,
                                             kv_bytes=self.io, io_bytes=self.io)
            ops.append(self.attention_op("attention", n, Cost(flops=mha.flops,
                                                              activation_bytes=mha.activation_bytes + mha.kv_bytes),
                                         DECODE_ATTENTION))
        ops.append(self.linear("o_proj", t, heads * dv, h, n))
        return ops

    def indexer(self, step: Step) -> list[Op]:
        """DSA's lightning indexer (DeepSeek-V3.2): its query from the query latent, one shared key per token with a
        LayerNorm, a weight per head; the new keys cached; every cached key scored, the top-k kept. Replicated over
        TP, as vLLM and SGLang run it; priced on the 16-bit roof (DeepSeek's kernel scores in fp8, faster still)."""
        a, n, t, h = self.m.attention, self.m.indexer_layers, step.tokens, self.m.hidden_size
        if not a.index_topk or not n:
            return []
        hi, di, k = a.index_heads, a.index_head_dim, a.index_topk
        ops = [self.linear("indexer.wq_b", t, a.q_lora_rank, hi * di, n), self.linear("indexer.wk", t, h, di, n),
               self.norm("indexer.k_norm", t, di, n), self.linear("indexer.weights_proj", t, h, hi, n),
               self.op("indexer.cache_write", "memory", "attention", n,
                       sparse_attention.index_cache_write(t, di, io_bytes=self.io))]
        if step.prefill:
            cost = sparse_attention.indexer_prefill(step.batch, step.q_len, hi, di, k, io_bytes=self.io)
        else:
            cost = sparse_attention.indexer_decode(step.tokens, step.context, hi, di, k, io_bytes=self.io)
        return [*ops, self.op("indexer", "attention", "attention", n, cost)]

    # -- mixture of experts ---------------------------------------------------------------------------
    def moe_layer(self, step: Step, count: int) -> list[Op]:
        m, p, spec = self.m, self.p, self.m.moe
        assert spec is not None
        t, h = step.tokens, m.hidden_size
        group_tokens = moe_group_tokens(t, p, self.o.group_replicas)
        ops = [self.linear("router", t, h, spec.num_experts, count, spec.router_bias, "expert", module="router")]
        topk = Cost(flops=TOPK_FLOPS_PER_SCORE * t * spec.num_experts,
                    activation_bytes=t * (spec.num_experts + 2 * spec.top_k) * self.io)
        ops.append(self.op("topk_routing", "elementwise", "expert", count, topk))
        if spec.shared:
            ops += self.mlp("shared_", spec.shared, t, count, "expert", module="shared_experts")
        if p.ep > 1:
            send = (group_tokens / p.ep) * spec.top_k * h
            ops.append(self.op("ep_dispatch", "communication", "communication", count,
                               comm.all_to_all(send * self.q.for_module("experts").act_bytes, p.ep), group=p.ep))
        for label, (n_experts, p_pick) in self.expert_classes():
            hit = float(n_experts) if self.o.all_experts else moe.distinct_experts(group_tokens, n_experts, p_pick)
            per_expert = moe.tokens_per_expert(group_tokens, n_experts, p_pick)
            # Under EP the most-loaded device sets the layer's time: its experts see more tokens than the mean.
            per_expert = per_expert * moe.ep_load_factor(group_tokens, spec.num_experts, spec.top_k, p.ep)
            experts = self.mlp(f"experts{label}.", spec.expert, per_expert, count, "expert", instances=hit / p.ep,
                               shards=p.expert_tp, module="experts")
            if not label:  # uniform routing: the layer is one measured configuration (hot/cold classes are not)
                shape = (h, spec.expert.intermediate_size, spec.top_k, spec.num_experts, p.expert_tp, p.ep)
                scheme = self.q.for_module("experts").name
                experts = [replace(op, moe_shape=shape, moe_tokens=group_tokens, moe_scheme=scheme) for op in experts]
            ops += experts
        if p.ep > 1:
            send = (group_tokens / p.ep) * spec.top_k * h
            ops.append(self.op("ep_combine", "communication", "communication", count,
                               comm.all_to_all(send * self.io, p.ep), group=p.ep))
        else:
            ops += self.all_reduce("moe_all_reduce", t, count)
        return ops

    def expert_classes(self) -> list[tuple[str, tuple[int, float]]]:
        spec = self.m.moe
        assert spec is not None
        classes = moe.expert_classes(spec.num_experts, spec.top_k, self.o.routing)
        if len(classes) == 1:
            return [("", classes[0])]
        return [("[hot]", classes[0]), ("[cold]", classes[1])]


def _per_sequence(op: Op, q: Num) -> Op:
    """An attention operator of batch·q one-query rows, with its cache traffic counted once per sequence."""
    if op.name == "kv_b_proj_cache":  # naive MLA's up-projection of the cache: once per sequence, all of it
        return replace(op, cost=replace(op.cost.scaled(1.0 / q), weight_bytes=op.cost.weight_bytes))
    if op.kind != "attention":
        return op
    return replace(op, cost=replace(op.cost, kv_bytes=op.cost.kv_bytes / q, vector_ops=op.cost.vector_ops / q))


def _windowed(name: str, window: int | None) -> str:
    return name if window is None else f"{name}[window={window}]"


def prefill_ops(model: ModelSpec, quant: QuantScheme, batch: Num, prompt_len: Num, lm_head_all_tokens: bool = False,
                options: Options = DEFAULT_OPTIONS) -> list[Op]:
    """B prompts of length L processed at once (per replica); logits for the last token of each prompt
    (or every token, for scoring)."""
    rows = batch * prompt_len if lm_head_all_tokens else batch
    return GraphBuilder(model, quant, options).build(Step(batch, prompt_len, prompt_len, True, rows))


def decode_ops(model: ModelSpec, quant: QuantScheme, batch: Num, context: Num, options: Options = DEFAULT_OPTIONS) -> list[Op]:
    """One new token for each of B sequences (per replica) whose caches hold ``context`` tokens; with speculative
    decoding, one verify step of k + 1 rows per sequence (logits for each) and the draft's operators."""
    spec = options.speculation
    if spec is None or spec.tokens == 0:
        return GraphBuilder(model, quant, options).build(Step(batch, 1.0, context, False, batch))
    rows = float(spec.tokens + 1)
    verify = GraphBuilder(model, quant, options).build(Step(batch, rows, context, False, batch * rows))
    return verify + draft_ops(spec, batch, context)


def draft_ops(spec: Speculation, batch: Num, context: Num) -> list[Op]:
    """The draft's operators for one step, named ``draft.*``: k decode steps of the draft at the same batch and
    context (each proposes one token per sequence)."""
    d = spec.draft
    if d is None or spec.tokens == 0:
        return []
    b = GraphBuilder(d.model, d.quant, d.options)
    ops = b.build(Step(batch, 1.0, context, False, batch))
    if d.mtp:  # the module's input projection: [normed hidden; normed embedding] (2h) → h
        h = d.model.hidden_size
        ops += b.with_activation_quant([b.linear("eh_proj", batch, 2 * h, h, 1, module="mlp")])
    return [replace(op, name=f"draft.{op.name}", count=op.count * spec.tokens) for op in ops]

