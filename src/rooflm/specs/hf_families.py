"""config.json readers of the families added after the first (GLM, OLMo, ERNIE, EXAONE, Llama 4, ...): the same
rules as rooflm.specs.hf_readers, transformers' keys and defaults, checked against its parameter counts."""

from __future__ import annotations

from collections.abc import Callable

from rooflm.specs.hf_fields import Config
from rooflm.specs.model import ModelSpec

READERS: dict[str, Callable[[Config, str], ModelSpec]] = {}
