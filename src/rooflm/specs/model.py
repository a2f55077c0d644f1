"""Model description: the sizes the cost model needs, and parameter counts by group.

A ModelSpec is built from a Hugging Face config.json by ``specs/hf_config.py`` (one reader per
architecture family), so that a user's own config.json goes through the same path as the
catalog's copies. Layers may differ (sliding-window vs full attention, dense vs MoE MLP):
they are described as groups of identical layers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The classes of weight GEMMs a quantization scheme can treat differently (``--quant experts=w4a8,...``).
MODULES = ("attention", "mlp", "shared_experts", "experts", "router", "lm_head", "embedding")


class CheckpointQuant(_Frozen):
    """A checkpoint's own quantization, read from its config.json's ``quantization_config``: the format of its
    quantized GEMM weights and the module classes it keeps in bf16. ``weight`` None: a method rooflm does not
    model (the model still loads; only ``--quant native`` is refused)."""

    method: str  # quant_method as written (fp8, mxfp4, gptq, awq, compressed-tensors, modelopt, ...)
    weight: str | None  # storage dtype of the quantized weights (fp8, fp4, int4, int8)
    activation: str = "bf16"  # dtype the GEMM inputs are quantized to; bf16 = weight-only
    scale_group: int | Literal["channel"] = 0  # weights per scale; 0 = one per tensor (no bytes to speak of)
    scale_bits: int = Field(default=0, ge=0)
    zero_bits: int = Field(default=0, ge=0)
    k_block: int = Field(default=0, ge=0)  # K depth of a weight block (block-scaled fp8)
    kv: str | None = None  # the KV-cache dtype the checkpoint calibrated, if it says
    bf16_modules: tuple[str, ...] = ()  # module classes (MODULES) left unquantized
    ignored: tuple[str, ...] = ()  # modules_to_not_convert / ignore / exclude_modules as written (first few)


# The DSA indexer's key cache as DeepSeek's inference code keeps it (DeepSeek-V3.2-Exp inference/model.py, Indexer):
# each key in fp8 (1 byte per element) with one fp32 scale per token (one block of 128 = index_head_dim elements).
INDEX_KEY_BYTES = 1.0
INDEX_SCALE_BYTES = 4.0


def index_cache_bytes_per_token(dim: int) -> float:
    """Bytes of the indexer's key cache per token and layer: dim fp8 elements and one fp32 scale."""
    return dim * INDEX_KEY_BYTES + INDEX_SCALE_BYTES


class AttentionSpec(_Frozen):
    """Self-attention of one layer. ``kind='mla'`` is DeepSeek's multi-head latent attention:
    the cache holds one compressed latent (kv_lora_rank) plus a shared RoPE key per token."""

    kind: Literal["gqa", "mla"] = "gqa"
    num_q_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)  # query/key width per head (MLA: nope + rope)
    v_head_dim: int = Field(gt=0)
    rotary_dim: int = Field(ge=0)
    qkv_bias: bool = False
    o_bias: bool = False
    # qk-norm: "head" normalises each head (Qwen3), "full" the whole q and k vectors (MiniMax-M2).
    qk_norm: Literal["none", "head", "full"] = "none"
    sinks: bool = False  # a learned per-head logit added to the softmax (gpt-oss)
    # A sigmoid gate on the attention output, computed by q_proj beside the queries (Qwen3-Next): q_proj is twice
    # as wide.
    output_gate: bool = False
    q_lora_rank: int = 0  # MLA: 0 = full-rank q projection
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    # DeepSeek sparse attention (DeepSeek-V3.2): a lightning indexer of index_heads × index_head_dim picks the
    # index_topk cached tokens each query attends to; 0 = dense attention.
    index_topk: int = Field(default=0, ge=0)
    index_heads: int = Field(default=0, ge=0)
    index_head_dim: int = Field(default=0, ge=0)

    @property
    def index_cache_bytes(self) -> float:
        """DSA's indexer keys per token and layer, beside the attention's own cache (0 without DSA)."""
        return index_cache_bytes_per_token(self.index_head_dim) if self.index_topk else 0.0

    @property
    def q_width(self) -> int:
        return self.num_q_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def cache_width(self) -> int:
        """Elements cached per token per layer: K and V per KV head, or MLA's latent + RoPE key."""
        if self.kind == "mla":
            return self.kv_lora_rank + self.qk_rope_head_dim
        return self.num_kv_heads * (self.head_dim + self.v_head_dim)

    def indexer_params(self, hidden: int) -> int:
        """DSA's indexer: wq_b (q_lora_rank → heads × dim), wk (h → dim), its key LayerNorm (weight and bias) and
        weights_proj (h → one weight per head)."""
        if not self.index_topk:
            return 0
        d = self.index_head_dim
        return self.q_lora_rank * self.index_heads * d + hidden * d + 2 * d + hidden * self.index_heads

    def params(self, hidden: int) -> int:
        h = hidden
        if self.kind == "mla":
            q = (h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * self.q_width) if self.q_lora_rank \
                else h * self.q_width
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank  # + its norm
            kv_b = self.kv_lora_rank * self.num_q_heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv_a + kv_b + self.num_q_heads * self.v_head_dim * h
        n = h * (self.q_width + self.num_kv_heads * (self.head_dim + self.v_head_dim))
        n += self.num_q_heads * self.v_head_dim * h
        if self.output_gate:
            n += h * self.q_width
        if self.qkv_bias:
            n += self.q_width + self.num_kv_heads * (self.head_dim + self.v_head_dim)
        if self.o_bias:
            n += h
        n += {"none": 0, "head": 2 * self.head_dim, "full": self.q_width + self.kv_width}[self.qk_norm]
        return n + (self.num_q_heads if self.sinks else 0)


class LinearAttentionSpec(_Frozen):
    """Gated DeltaNet (Qwen3-Next, Qwen3.5): a linear-attention layer whose cache is one recurrent state per
    sequence — a d_k × d_v matrix per value head — plus the last ``conv_kernel − 1`` inputs of its short causal
    convolution, whatever the context. Key heads are shared by groups of value heads, as GQA shares KV heads."""

    num_k_heads: int = Field(gt=0)
    num_v_heads: int = Field(gt=0)
    head_k_dim: int = Field(gt=0)
    head_v_dim: int = Field(gt=0)
    conv_kernel: int = Field(gt=0)

    @property
    def key_width(self) -> int:
        return self.num_k_heads * self.head_k_dim

    @property
    def value_width(self) -> int:
        return self.num_v_heads * self.head_v_dim

    @property
    def conv_width(self) -> int:
        """Channels of the short convolution: q, k and v."""
        return 2 * self.key_width + self.value_width

    @property
    def state_elements(self) -> int:
        """One sequence's recurrent state in one layer: the d_k × d_v matrix of every value head, and the
        convolution's last conv_kernel − 1 inputs."""
        return self.num_v_heads * self.head_k_dim * self.head_v_dim + self.conv_width * (self.conv_kernel - 1)

    def params(self, hidden: int) -> int:
        """in_proj_qkvz (h → q, k, v and the output gate z), in_proj_ba (h → β and the decay's input per value
        head), the depthwise convolution (no bias), dt_bias and A_log per value head, the gated norm's d_v
        weights, out_proj."""
        n = hidden * (2 * self.key_width + 2 * self.value_width) + hidden * 2 * self.num_v_heads
        n += self.conv_width * self.conv_kernel + 2 * self.num_v_heads + self.head_v_dim
        return n + self.value_width * hidden


class MlpSpec(_Frozen):
    """A gated (SwiGLU) MLP: gate and up h→I, down I→h."""

    intermediate_size: int = Field(gt=0)
    bias: bool = False

    def params(self, hidden: int) -> int:
        return 3 * hidden * self.intermediate_size + (2 * self.intermediate_size + hidden if self.bias else 0)


class MoeSpec(_Frozen):
    """Routed experts (each a gated MLP), optional shared experts, and the router."""

    num_experts: int = Field(gt=0)
    top_k: int = Field(gt=0)
    expert: MlpSpec
    shared: MlpSpec | None = None  # all shared experts fused into one MLP of their total width
    router_bias: bool = False
    score_correction_bias: bool = False  # DeepSeek-V3's aux-loss-free balancing bias (E values)
    shared_gate: bool = False  # Qwen2-MoE: a sigmoid gate (h→1) scales the shared expert's output

    def router_params(self, hidden: int) -> int:
        return hidden * self.num_experts + (self.num_experts if self.router_bias else 0) + (
            self.num_experts if self.score_correction_bias else 0)

    def shared_params(self, hidden: int) -> int:
        if self.shared is None:
            return 0
        return self.shared.params(hidden) + (hidden if self.shared_gate else 0)


class LayerGroup(_Frozen):
    """``count`` identical decoder layers."""

    count: int = Field(gt=0)
    moe: bool = False
    sliding_window: int | None = None  # attention sees only the last W tokens
    linear: bool = False  # a linear-attention layer (ModelSpec.linear_attention) in place of self-attention


class ModelSpec(_Frozen):
    name: str
    model_type: str
    hidden_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    tie_word_embeddings: bool = False
    # RMSNorms of hidden width per layer: 2 (before attention and MLP); Gemma 2/3 also norm each
    # sub-layer's output (4).
    norms_per_layer: int = Field(default=2, ge=0)
    attention: AttentionSpec
    linear_attention: LinearAttentionSpec | None = None  # the layers marked ``linear``
    mlp: MlpSpec | None = None  # the dense layers' MLP
    moe: MoeSpec | None = None
    layers: list[LayerGroup]
    source: str = ""
    quantization: CheckpointQuant | None = None  # the checkpoint's quantization_config, if it has one
    # DSA: the attention layers that run their own indexer (and keep its key cache); the others reuse the previous
    # layer's selection (GLM-5's "shared" layers). 0 without DSA.
    indexer_layers: int = Field(default=0, ge=0)
    mtp_layers: int = Field(default=0, ge=0)  # multi-token-prediction layers shipped with the checkpoint (--draft mtp)

    # Convenience views used throughout (and by reports).
    @property
    def num_layers(self) -> int:
        return sum(g.count for g in self.layers)

    @property
    def attention_layers(self) -> int:
        """Layers with self-attention (and a KV cache)."""
        return sum(g.count for g in self.layers if not g.linear)

    @property
    def linear_layers(self) -> int:
        """Layers with linear attention (and a recurrent state instead of a KV cache)."""
        return self.num_layers - self.attention_layers

    def state_bytes_per_sequence(self, bytes_per_element: float = 2.0) -> float:
        """Recurrent state of every linear-attention layer for one sequence: constant in the context."""
        if self.linear_attention is None:
            return 0.0
        return self.linear_layers * self.linear_attention.state_elements * bytes_per_element

    @property
    def num_q_heads(self) -> int:
        return self.attention.num_q_heads

    @property
    def num_kv_heads(self) -> int:
        return self.attention.num_kv_heads

    @property
    def head_dim(self) -> int:
        return self.attention.head_dim

    @property
    def q_width(self) -> int:
        return self.attention.q_width

    @property
    def kv_width(self) -> int:
        return self.attention.kv_width

    @property
    def is_moe(self) -> bool:
        return self.moe is not None and any(g.moe for g in self.layers)

    def params_by_group(self) -> dict[str, int]:
        """Parameter counts grouped the way memory, quantization and reports treat them."""
        h = self.hidden_size
        n_dense = sum(g.count for g in self.layers if not g.moe)
        n_moe = self.num_layers - n_dense
        moe = self.moe
        embedding = self.vocab_size * h
        groups = {
            "embedding": embedding,
            "attention": self.attention_layers * self.attention.params(h) + self.indexer_layers * (
                self.attention.indexer_params(h)) + (
                self.linear_layers * self.linear_attention.params(h) if self.linear_attention else 0),
            "mlp": n_dense * self.mlp.params(h) if self.mlp and n_dense else 0,
            "router": n_moe * moe.router_params(h) if moe else 0,
            "shared_experts": n_moe * moe.shared_params(h) if moe else 0,
            "experts": n_moe * moe.num_experts * moe.expert.params(h) if moe else 0,
            "norm": self.num_layers * self.norms_per_layer * h + h,
            "lm_head": 0 if self.tie_word_embeddings else embedding,
        }
        return groups

    @property
    def total_params(self) -> int:
        return sum(self.params_by_group().values())

    @property
    def active_params(self) -> int:
        """Parameters used per token: all but the routed experts not chosen (embeddings included,
        as the published active counts do)."""
        if not self.moe:
            return self.total_params
        n_moe = sum(g.count for g in self.layers if g.moe)
        unused = n_moe * (self.moe.num_experts - self.moe.top_k) * self.moe.expert.params(self.hidden_size)
        return self.total_params - unused

    @property
    def active_params_without_embedding(self) -> int:
        """Active parameters less the input embedding table, of which a token reads one row (the
        convention of OpenAI's and MiniMax's published active counts)."""
        return self.active_params - self.params_by_group()["embedding"]

    @property
    def non_embedding_params(self) -> int:
        groups = self.params_by_group()
        return self.total_params - groups["embedding"] - groups["lm_head"]

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0, context: int | None = None) -> float:
        """KV cache of every layer for one token. With ``context``, the average per token of a
        sequence that long: sliding-window layers keep only their last W tokens."""
        per_layer = self.attention.cache_width * bytes_per_element
        index = self.indexer_layers * self.attention.index_cache_bytes  # DSA's indexer keys (full attention layers)
        if context is None:
            return self.attention_layers * per_layer + index
        kept = sum(g.count * min(context, g.sliding_window or context) for g in self.layers if not g.linear)
        return kept * per_layer / context + index
