"""The pieces every config.json reader is built from: attention, MoE and per-layer windows read with transformers'
defaults, and the ModelSpec they make (rooflm.specs.hf_readers and rooflm.specs.hf_families use them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from rooflm.errors import InvalidInputError
from rooflm.specs.hf_fields import MAX_POSITIONS, Config, show_value
from rooflm.specs.hf_quant import quantization
from rooflm.specs.model import AttentionSpec, LayerGroup, LinearAttentionSpec, MlpSpec, ModelSpec, MoeSpec


def gqa(c: Config, *, qkv_bias: bool, o_bias: bool, qk_norm: Literal["none", "head", "full"] = "none",
        sinks: bool = False) -> AttentionSpec:
    hidden = c.int("hidden_size")
    n_q = c.int("num_attention_heads")
    n_kv = c.int("num_key_value_heads", n_q)  # absent: multi-head attention
    head_dim = c.opt_int("head_dim") or hidden // n_q  # Qwen3 gives it; Llama derives it
    if head_dim == 0:
        raise InvalidInputError(f"{c.where}: hidden_size {hidden} is smaller than num_attention_heads {n_q} "
                                "(a head would be 0 wide); give head_dim", field="model")
    if n_q % n_kv:
        raise InvalidInputError(f"{c.where}: {n_q} query heads are not a multiple of {n_kv} KV heads", field="model")
    rotary = c.opt_int("rotary_dim") or int(head_dim * c.number("partial_rotary_factor", 1.0, low=0.0, high=1.0))
    if rotary > head_dim:
        raise InvalidInputError(f"{c.where}: 'rotary_dim' {rotary} is wider than a head ({head_dim})", field="model")
    return AttentionSpec(num_q_heads=n_q, num_kv_heads=n_kv, head_dim=head_dim, v_head_dim=head_dim,
                         rotary_dim=rotary, qkv_bias=qkv_bias, o_bias=o_bias, qk_norm=qk_norm, sinks=sinks)


def groups(per_layer: Sequence[tuple[bool, int | None]], linear: list[bool] | None = None) -> list[LayerGroup]:
    """Identical layers counted together (their order does not change a step's cost); ``linear`` marks the
    linear-attention layers."""
    marks = linear or [False] * len(per_layer)
    counts = Counter((moe, w, lin) for (moe, w), lin in zip(per_layer, marks, strict=True))
    return [LayerGroup(count=n, moe=moe, sliding_window=w, linear=lin)
            for (moe, w, lin), n in sorted(counts.items(), key=str)]


# RoPE scalings whose config.json keeps the pre-scaling length (in original_max_position_embeddings, or in
# max_position_embeddings itself) and whose factor extends it: Qwen2.5/Qwen3 document adding
# {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768} for 131,072 tokens. Llama-3.1's
# "llama3" and Gemma 3's "linear" configs already give the extended length, so they are left as they are.
EXTENDING_ROPE = {"yarn", "dynamic", "longrope"}


def max_positions(c: Config) -> int:
    """The longest context: max_position_embeddings, or what a context-extending RoPE scaling stretches it to."""
    limit = c.int("max_position_embeddings")
    scaling = c.section("rope_scaling") or c.section("rope_parameters")  # transformers 5 writes rope_parameters
    if scaling and isinstance(scaling.get("full_attention"), dict):
        scaling = scaling["full_attention"]  # Gemma 3 in transformers 5: one set per attention kind
    if not scaling:
        return limit
    rope = Config(scaling, f"{c.where} rope_scaling")
    kind = rope.text("rope_type") or rope.text("type")
    if kind not in EXTENDING_ROPE or scaling.get("factor") is None:
        return limit
    factor = rope.number("factor", 1.0, low=1.0, high=1e4)
    original = (rope.opt_int("original_max_position_embeddings") or c.opt_int("original_max_position_embeddings")
                or limit)
    return max(limit, rope.in_range("original_max_position_embeddings × factor", int(original * factor), 1,
                                      MAX_POSITIONS))


def spec(c: Config, name: str, attention: AttentionSpec, per_layer: Sequence[tuple[bool, int | None]],
          mlp: MlpSpec | None, moe: MoeSpec | None, *, norms_per_layer: int = 2,
          linear: list[bool] | None = None, linear_attention: LinearAttentionSpec | None = None) -> ModelSpec:
    return ModelSpec(name=name, model_type=str(c.raw["model_type"]), hidden_size=c.int("hidden_size"),
                     vocab_size=c.int("vocab_size"), max_position_embeddings=max_positions(c),
                     tie_word_embeddings=c.flag("tie_word_embeddings"), norms_per_layer=norms_per_layer,
                     attention=attention, mlp=mlp, moe=moe, layers=groups(per_layer, linear), source=c.where,
                     linear_attention=linear_attention,
                     quantization=quantization(c), mtp_layers=mtp_layers(c))


def mtp_layers(c: Config) -> int:
    """Multi-token-prediction layers the checkpoint ships: DeepSeek-V3, GLM-4.5, Kimi K2 and MiMo name them
    ``num_nextn_predict_layers``; MiniMax-M2 has ``num_mtp_modules`` modules of ``mtp_transformer_layers`` each
    (``use_mtp`` false turns them off); Qwen3-Next ``mtp_num_hidden_layers``."""
    nextn = c.int("num_nextn_predict_layers", 0, low=0) or c.int("mtp_num_hidden_layers", 0, low=0)
    if nextn or not c.flag("use_mtp", True):
        return nextn
    return c.int("num_mtp_modules", 0, low=0) * c.int("mtp_transformer_layers", 1, low=0)


def sliding_window(c: Config) -> int | None:
    return c.opt_int("sliding_window")


def layer_types(c: Config, n: int, default: list[str], windowed: str = "sliding_attention") -> list[str]:
    """Each layer's attention kind from ``layer_types`` (or the family's default pattern), checked: ``windowed``
    (a layer that sees a window of the sequence) or "full_attention"."""
    types = c.raw.get("layer_types")
    if types is None:
        types = default
    kinds = (windowed, "full_attention")
    if not isinstance(types, list) or len(types) != n or any(t not in kinds for t in types):
        raise InvalidInputError(f"{c.where}: 'layer_types' must list {' or '.join(map(repr, kinds))} for each "
                                f"of the {n} layers, got {show_value(types)}", field="model")
    return types


def layer_windows(c: Config, n: int, default: list[str]) -> list[int | None]:
    """Each layer's attention window from ``layer_types`` (or the family's default pattern): the config's
    sliding_window on "sliding_attention" layers, none on "full_attention" ones."""
    window = sliding_window(c)
    return [window if t == "sliding_attention" else None for t in layer_types(c, n, default)]


def moe_spec(c: Config, experts_key: str, expert: MlpSpec, **extra: Any) -> MoeSpec:
    """Routed experts; top-k cannot exceed the experts there are."""
    n_experts, top_k = c.int(experts_key), c.int("num_experts_per_tok")
    if top_k > n_experts:
        raise InvalidInputError(f"{c.where}: 'num_experts_per_tok' {top_k} exceeds the {n_experts} experts "
                                f"({experts_key!r})", field="model")
    return MoeSpec(num_experts=n_experts, top_k=top_k, expert=expert, **extra)


def sparse_layers(c: Config, n: int) -> list[bool]:
    """Qwen-MoE: layer i is MoE unless listed in mlp_only_layers, every decoder_sparse_step-th layer."""
    step = c.int("decoder_sparse_step", 1)
    dense_only = set(c.int_list("mlp_only_layers"))
    return [i not in dense_only and (i + 1) % step == 0 for i in range(n)]
