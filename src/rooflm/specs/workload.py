"""What the deployment is asked to do in one step or one request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from rooflm.errors import InvalidInputError

Phase = Literal["prefill", "decode", "e2e"]
PHASES: tuple[str, ...] = ("prefill", "decode", "e2e")


class Workload(BaseModel):
    """One point. ``prefill``: B prompts of ``prompt_len``. ``decode``: one step of B sequences whose
    cache holds ``context`` tokens (the new token included). ``e2e``: prefill, then ``gen_len`` − 1
    decode steps at contexts L+1 … L+N−1 (the prefill emits the first output token)."""

    model_config = ConfigDict(frozen=True)

    phase: Phase = "decode"
    batch: int = 1
    prompt_len: int = 1024
    context: int | None = None
    gen_len: int = 256
    lm_head_all_tokens: bool = False

    @property
    def decode_context(self) -> int:
        return self.context if self.context is not None else self.prompt_len

    @property
    def max_context(self) -> int:
        """The longest sequence the workload holds in the KV cache."""
        if self.phase == "prefill":
            return self.prompt_len
        if self.phase == "decode":
            return self.decode_context
        return self.prompt_len + self.gen_len - 1


def check_positive(**sizes: object) -> None:
    """Every size a positive integer (or a list of them); the message names the flag."""
    for name, value in sizes.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise InvalidInputError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}", name)


def check_context(context: int, max_position: int, what: str = "context") -> None:
    if context > max_position:
        raise InvalidInputError(
            f"{what} {context} exceeds the model's maximum of {max_position} positions "
            "(max_position_embeddings in its config.json); use a shorter one",
            {"context": "context", "prompt length": "prompt_len"}.get(what, "gen_len"),
        )
