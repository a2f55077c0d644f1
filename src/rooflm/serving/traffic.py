"""What the deployment is asked to serve: request lengths (fixed or drawn from a distribution) and how requests
arrive (a closed loop of N users, or Poisson arrivals at a rate).

Length syntax (``--prompt-len`` and ``--gen-len``, the API's ``prompt_len`` / ``gen_len`` as text):

- ``1024``: every request has 1024 tokens;
- ``uniform:LO:HI``: an integer drawn uniformly from LO … HI (both included);
- ``normal:MEAN:STD``: a normal draw, rounded and clipped to 1 … the model's limit;
- ``lognormal:MEAN:STD``: a lognormal draw whose own mean and standard deviation are MEAN and STD (not those of
  its logarithm: σ² = ln(1 + STD²/MEAN²), μ = ln MEAN − σ²/2), rounded and clipped like normal. Real prompt and
  output lengths are right-skewed; this is the usual fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from rooflm.errors import InvalidInputError, arg, quoted
from rooflm.specs.workload import MAX_TOKENS

Kind = Literal["fixed", "uniform", "normal", "lognormal"]
KINDS: tuple[str, ...] = ("fixed", "uniform", "normal", "lognormal")
# Draws used for the moments the steady-state model needs (mean, mean square, quantiles): the standard error of a
# mean of 65,536 draws is 0.4% of the standard deviation, below the model's other approximations.
MOMENT_DRAWS = 1 << 16


@dataclass(frozen=True)
class Lengths:
    """A distribution of token counts; ``a`` and ``b`` are (value, value), (lo, hi) or (mean, std)."""

    kind: Kind
    a: float
    b: float
    field: str = "prompt_len"

    @property
    def fixed(self) -> int | None:
        return int(self.a) if self.kind == "fixed" else None

    @property
    def upper(self) -> int:
        """A length no draw passes (fixed, uniform) or that ~1 in 10^9 draws would (normal, lognormal: they are
        clipped to it, so the grids the step times are read from cover every draw)."""
        if self.kind in ("fixed", "uniform"):
            return int(self.b)
        if self.kind == "normal":
            return max(1, math.ceil(self.a + 6.1 * self.b))
        mu, sigma = _lognormal_params(self.a, self.b)
        return max(1, math.ceil(math.exp(mu + 6.1 * sigma)))

    def sample(self, rng: np.random.Generator, n: int, cap: int | None = None) -> np.ndarray:
        """``n`` lengths as int64, each in 1 … min(upper, cap)."""
        if self.kind == "fixed":
            x = np.full(n, self.a)
        elif self.kind == "uniform":
            x = rng.integers(int(self.a), int(self.b) + 1, size=n).astype(np.float64)
        elif self.kind == "normal":
            x = rng.normal(self.a, self.b, size=n)
        else:
            mu, sigma = _lognormal_params(self.a, self.b)
            x = rng.lognormal(mu, sigma, size=n)
        top = self.upper if cap is None else min(self.upper, cap)
        return np.clip(np.rint(x), 1, max(top, 1)).astype(np.int64)

    def label(self) -> str:
        if self.kind == "fixed":
            return str(int(self.a))
        return f"{self.kind}:{_num(self.a)}:{_num(self.b)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _lognormal_params(mean: float, std: float) -> tuple[float, float]:
    sigma2 = math.log1p((std / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def parse_lengths(text: str | int, field: str) -> Lengths:
    """``1024``, ``uniform:512:2048``, ``normal:1024:256`` or ``lognormal:1024:512`` (see the module's doc)."""
    flag = arg(field)
    if isinstance(text, bool):
        raise InvalidInputError(f"{flag} must be a length or a distribution, got {quoted(text)}", field=field)
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str) or len(text) > 200:
        raise InvalidInputError(f"{flag} must be a length or a distribution, got {quoted(text)}", field=field)
    parts = [p.strip() for p in text.strip().lower().split(":")]
    usage = (f"{flag} {quoted(text)} is not a length: give N, uniform:LO:HI, normal:MEAN:STD or "
             "lognormal:MEAN:STD (tokens)")
    if len(parts) == 1:
        value = _parse_number(parts[0], usage, field, integer=True)
        _check_range(value, flag, field)
        return Lengths("fixed", value, value, field)
    if len(parts) != 3 or parts[0] not in KINDS[1:]:
        raise InvalidInputError(usage, field=field)
    kind = cast(Kind, parts[0])  # one of KINDS, checked above
    a = _parse_number(parts[1], usage, field, integer=kind == "uniform")
    b = _parse_number(parts[2], usage, field, integer=kind == "uniform")
    _check_range(a, flag, field)
    if kind == "uniform":
        _check_range(b, flag, field)
        if b < a:
            raise InvalidInputError(f"{flag} {quoted(text)}: HI must be at least LO", field=field)
    elif not 0 <= b <= MAX_TOKENS:
        raise InvalidInputError(f"{flag} {quoted(text)}: STD must be between 0 and {MAX_TOKENS:,}", field=field)
    return Lengths(kind, a, b, field)


def _parse_number(text: str, usage: str, field: str, *, integer: bool) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise InvalidInputError(usage, field=field) from None
    if not math.isfinite(value):
        raise InvalidInputError(usage, field=field)
    return float(value)


def _check_range(value: float, flag: str, field: str) -> None:
    if not 1 <= value <= MAX_TOKENS:
        raise InvalidInputError(f"{flag} must be between 1 and {MAX_TOKENS:,} tokens, got {_num(value)}", field=field)


@dataclass(frozen=True)
class Moments:
    """What the steady-state model needs of a traffic's lengths, from ``MOMENT_DRAWS`` draws."""

    prompt: np.ndarray  # the draws themselves (the model prices prefill per draw: its cost is not linear in L)
    gen: np.ndarray

    @property
    def mean_prompt(self) -> float:
        return float(self.prompt.mean())

    @property
    def mean_gen(self) -> float:
        return float(self.gen.mean())

    @property
    def decode_context(self) -> float:
        """The mean context of a decode row, over rows: a request of G tokens contributes G − 1 rows at contexts
        L+1 … L+G−1, so long outputs weigh more (size-biased): Σ(G−1)(L + G/2) / Σ(G−1)."""
        rows = self.gen - 1.0
        if rows.sum() <= 0:
            return self.mean_prompt + 1.0
        return float((rows * (self.prompt + self.gen / 2.0)).sum() / rows.sum())


def moments(prompt: Lengths, gen: Lengths, seed: int = 0, cap: int | None = None) -> Moments:
    rng = np.random.default_rng(seed)
    n = 1 if prompt.kind == gen.kind == "fixed" else MOMENT_DRAWS
    return Moments(prompt.sample(rng, n, cap).astype(np.float64), gen.sample(rng, n, cap).astype(np.float64))


def check_loads(concurrency: list[int] | None, request_rate: list[float] | None) -> tuple[str, list[float]]:
    """Exactly one of the two load lists, non-empty and in range: ("concurrency" | "request_rate", values)."""
    if (concurrency is None) == (request_rate is None):
        raise InvalidInputError(f"give {arg('concurrency')} (a closed loop of users) or {arg('request_rate')} (Poisson "
                                "arrivals, "
                                "requests/s), not both and not neither", field="concurrency")
    if concurrency is not None:
        if not concurrency:
            raise InvalidInputError(f"{arg('concurrency')} lists no value", field="concurrency")
        for n in concurrency:
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**6:
                raise InvalidInputError(f"{arg('concurrency')} must be integers between 1 and 1,000,000, got {quoted(n)}",
                                        field="concurrency")
        return "concurrency", [float(n) for n in concurrency]
    assert request_rate is not None
    if not request_rate:
        raise InvalidInputError(f"{arg('request_rate')} lists no value", field="request_rate")
    for r in request_rate:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or not 0 < r <= 1e6:
            raise InvalidInputError(f"{arg('request_rate')} must be requests/s in (0, 1,000,000], got {quoted(r)}",
                                    field="request_rate")
    return "request_rate", [float(r) for r in request_rate]


def parse_rates(text: str) -> list[float]:
    """``--request-rate 1,2.5,10``: requests per second."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(part.strip()))
        except ValueError:
            raise InvalidInputError(f"{arg('request_rate')} {quoted(text)} is not a list of numbers (requests/s), e.g. "
                                    "1,2.5,10", field="request_rate") from None
    return values


def check_against_model(prompt: Lengths, gen: Lengths, positions: int, seed: object) -> None:
    """What ``serve_traffic`` and ``plan`` refuse before any work: a seed out of range, and bounded lengths that
    cannot fit the model's ``positions`` (a prompt and its output share them)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InvalidInputError(f"{arg('seed')} must be an integer between 0 and 2^63 − 1, got {quoted(seed)}", field="seed")
    bounded = ("fixed", "uniform")
    if prompt.upper >= positions and prompt.kind in bounded:
        raise InvalidInputError(f"{arg('prompt_len')} reaches {prompt.upper:,} tokens, past the model's {positions:,} "
                                "positions less one for the output", field="prompt_len")
    if prompt.upper + gen.upper - 1 > positions and prompt.kind in bounded and gen.kind in bounded:
        raise InvalidInputError(f"prompt + gen length reaches {prompt.upper + gen.upper - 1:,} tokens, past the "
                                f"model's {positions:,} positions; use shorter lengths", field="gen_len")
