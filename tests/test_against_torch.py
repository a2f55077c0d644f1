"""Cross-checks against independent counters: transformers' parameter counts and PyTorch's FlopCounterMode.

MoE routing is matched by construction: FlopCounterMode counts the experts' matmuls on the tokens
actually routed to each, T·k rows in all, which is what rooflm's expected experts-hit × tokens-per-
expert multiplies out to, whatever the router chose.

What each side counts, for the FLOP comparison on a tiny randomly initialised Llama (eager attention):
- FlopCounterMode's aten.mm are the linear layers (q/k/v/o, gate/up/down, lm_head): rooflm's weight GEMMs
  (which fuse q/k/v and gate/up but have the same 2·M·K·N total).
- its aten.bmm are eager attention's Q·Kᵀ and P·V over the full L×L score matrix (masking happens after);
  rooflm counts only the causal half with the diagonal, L(L+1)/2 of L² pairs.
- neither side counts norms, RoPE or SwiGLU as matmul FLOPs (rooflm counts them as element-wise ops).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import rooflm
from rooflm.specs.hf_config import MODELS_DIR, from_hf_config, model_names

TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 512}
VARIANTS = {
    "llama": {"model_type": "llama", **TINY},
    "llama-mha-tied-bias": {"model_type": "llama", **TINY, "num_key_value_heads": 4, "tie_word_embeddings": True,
                            "attention_bias": True, "mlp_bias": True},
    "llama-mqa-head-dim": {"model_type": "llama", **TINY, "num_key_value_heads": 1, "head_dim": 32},
    "mistral": {"model_type": "mistral", **TINY},
    "qwen2": {"model_type": "qwen2", **TINY},
    "qwen3": {"model_type": "qwen3", **TINY, "head_dim": 32, "tie_word_embeddings": True},
    "mixtral": {"model_type": "mixtral", **TINY, "intermediate_size": 96, "num_local_experts": 8,
                "num_experts_per_tok": 2},
    "qwen3_moe": {"model_type": "qwen3_moe", **TINY, "moe_intermediate_size": 48, "num_experts": 16,
                  "num_experts_per_tok": 4, "head_dim": 16},
}


def _hf_param_count(cfg: dict, torch: Any, transformers: Any) -> int:
    config = transformers.AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    # transformers keeps DeepSeek-V3's router e_score_correction_bias as a buffer; the checkpoint
    # stores it as a weight (one per expert per MoE layer), and so does rooflm's count.
    stored_buffers = sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    return sum(p.numel() for p in model.parameters()) + stored_buffers


def _shipped_supported() -> list[str]:
    out = []
    for name in model_names():
        try:
            rooflm.load_model(name)
        except rooflm.UnsupportedModelError:
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("name", _shipped_supported())
def test_catalog_param_counts_equal_transformers(name: str, torch: Any, transformers: Any) -> None:
    cfg = json.loads((MODELS_DIR / name / "config.json").read_text())
    cfg.pop("auto_map", None)  # use transformers' own class, not remote code
    assert rooflm.load_model(name).total_params == _hf_param_count(cfg, torch, transformers)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_param_counts_equal_transformers(variant: str, torch: Any, transformers: Any) -> None:
    cfg = VARIANTS[variant]
    assert from_hf_config(cfg, variant).total_params == _hf_param_count(cfg, torch, transformers)


def _flop_counts(cfg: dict, batch: int, prompt_len: int, logits_to_keep: int, torch: Any,
                 transformers: Any) -> dict[str, int]:
    from torch.utils.flop_counter import FlopCounterMode

    config = transformers.AutoConfig.for_model(**cfg)
    config._attn_implementation = "eager"
    # The eager experts loop runs one nn.functional.linear per expert on the tokens routed to it,
    # which FlopCounterMode sees as aten.mm (the grouped-mm default is not counted).
    config._experts_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(0, cfg["vocab_size"], (batch, prompt_len))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids, logits_to_keep=logits_to_keep)
    return {str(op).split(".")[-1]: n for op, n in counter.get_flop_counts()["Global"].items()}


@pytest.mark.parametrize("variant", ["llama", "qwen3", "llama-mqa-head-dim", "mixtral", "qwen3_moe"])
@pytest.mark.parametrize(("batch", "prompt_len", "all_tokens"), [(2, 16, False), (3, 33, True), (1, 64, False)])
def test_prefill_flops_equal_pytorch_flop_counter(variant: str, batch: int, prompt_len: int, all_tokens: bool,
                                                  torch: Any, transformers: Any) -> None:
    cfg = VARIANTS[variant]
    counted = _flop_counts(cfg, batch, prompt_len, 0 if all_tokens else 1, torch, transformers)
    spec = from_hf_config(cfg, variant)
    report = rooflm.analyze(spec, "h100-sxm", phase="prefill", batch=batch, prompt_len=prompt_len,
                            lm_head_all_tokens=all_tokens)
    # Expert GEMMs: whatever the routing, the experts together multiply T·k token rows (rooflm's
    # expected experts hit × tokens per expert = T·k exactly), so the counts match for any routing.
    gemm = sum(o.flops for o in report.operators if o.kind == "gemm")
    attention = next(o.flops for o in report.operators if o.name == "attention")
    # Bias adds are rooflm's own extra (m·n per biased GEMM); these variants have none.
    assert gemm == pytest.approx(counted["mm"], rel=1e-12)
    # Full L² in eager attention vs the causal L(L+1)/2: ratio (L+1)/(2L).
    assert attention == pytest.approx(counted["bmm"] * (prompt_len + 1) / (2 * prompt_len), rel=1e-12)
