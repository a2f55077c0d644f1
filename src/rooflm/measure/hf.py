"""Run decoder-only transformers models (random weights) one prefill or one decode step at a time.

Decode uses a static KV cache sized to exactly ``context + 1`` tokens and filled with random keys and values:
the step reads the whole cache (as rooflm's decode attention assumes) and writes the new token in place, so it
can be rewound and timed again without running a prefill first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooflm.measure.timing import require_torch, require_transformers

Step = Callable[[], None]


def build_model(config: dict[str, Any], device: str = "cpu", dtype: str = "bf16") -> Any:
    """A transformers causal LM from a config dict, with random weights, in eval mode, SDPA attention."""
    torch = require_torch()
    transformers = require_transformers()
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    hf_config = transformers.AutoConfig.for_model(**config)
    hf_config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=torch_dtype)
    return model.eval()


def _kv_shape(model: Any) -> tuple[int, int, int]:
    cfg = model.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return cfg.num_hidden_layers, getattr(cfg, "num_key_value_heads", None) or heads, head_dim


def decode_step(model: Any, batch: int, context: int) -> tuple[Step, Step]:
    """(rewind, step): ``step`` runs one decode forward for ``batch`` sequences with ``context`` cached tokens;
    ``rewind`` puts the cache back so the next step writes the same slot (call it before each timed step)."""
    torch = require_torch()
    transformers = require_transformers()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    _, kv_heads, head_dim = _kv_shape(model)
    cache = transformers.StaticCache(config=model.config, max_cache_len=context + 1)
    cache.early_initialization(batch, kv_heads, head_dim, dtype, device)
    for layer in cache.layers:
        layer.keys.normal_()
        layer.values.normal_()
    ids = torch.randint(0, model.config.vocab_size, (batch, 1), device=device)
    position = torch.full((batch, 1), context, device=device)

    def rewind() -> None:
        for layer in cache.layers:
            layer.cumulative_length.fill_(context)

    def step() -> None:
        with torch.inference_mode():
            model(input_ids=ids, cache=cache, position_ids=position, use_cache=True, logits_to_keep=1)

    return rewind, step


def prefill_step(model: Any, batch: int, prompt_len: int) -> Step:
    """One forward over ``batch`` prompts of ``prompt_len`` tokens, filling a fresh cache, logits for the last
    token only (what serving does; rooflm's default)."""
    torch = require_torch()
    transformers = require_transformers()
    device = next(model.parameters()).device
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_len), device=device)

    def step() -> None:
        with torch.inference_mode():
            model(input_ids=ids, cache=transformers.DynamicCache(config=model.config), use_cache=True,
                  logits_to_keep=1)

    return step
