"""What the deployment is asked to do in one step or one request."""

from __future__ import annotations

from typing import Literal, get_args

from rooflm.errors import InvalidInputError

# prefill: B prompts of L tokens. decode: one step of B sequences whose caches hold C tokens (the new
# one included). e2e: prefill, then gen_len − 1 decode steps at contexts L+1 … L+N−1.
Phase = Literal["prefill", "decode", "e2e"]
PHASES: tuple[str, ...] = get_args(Phase)


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
