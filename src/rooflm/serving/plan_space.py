"""What `rooflm plan` searches: layouts of N GPUs valid for the model, schemes, KV dtypes and speculative decoding
(each combination a step table, priced once), aggregated or disaggregated serving (a replica's step table and the
splits xP:yD of the N GPUs' replicas), and engine limits and loads (cheap: read off that table).

The count is known before any step is priced: the layouts, schemes and dtypes are checked by rooflm.core.inputs.setup
(milliseconds each), and a search past ``MAX_CONFIGS`` configurations or ``MAX_STEP_TABLES`` step tables is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from rooflm.core.inputs import Deployment, setup
from rooflm.errors import InvalidInputError, RooflmError, arg, named, quoted
from rooflm.serving.disagg import MAX_REPLICAS, Split, parse_split
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.parallel import Parallelism

# The schemes an engine offers on a current GPU (weights 16, 8 and 4 bits; activations 16, 8 or 4); those the device
# has no compute roof for are left out.
DEFAULT_QUANTS: tuple[str, ...] = ("bf16", "fp8", "w4a16", "w4a8", "fp4")
DEFAULT_KV_DTYPES: tuple[str, ...] = ("bf16", "fp8")
# vLLM's max_num_seqs defaults to 256 (1024 in SGLang's largest setting); max_num_batched_tokens to 8192 on large
# GPUs and 2048 on small ones (rooflm.core.inputs.MAX_NUM_BATCHED_TOKENS).
DEFAULT_MAX_RUNNING: tuple[int, ...] = (32, 64, 128, 256, 512)
DEFAULT_MAX_TOKENS: tuple[int, ...] = (2048, 8192)
DEFAULT_CONCURRENCY: tuple[int, ...] = tuple(2**i for i in range(12))  # 1 … 2048 users
DEFAULT_SPEC_TOKENS: tuple[int, ...] = (0,)
# The mean TTFT the best configuration must meet when no target is given. Without one, the most tokens/s per GPU is
# a point deep in the queue (users waiting tens of seconds for their first token). 10 s is past every published
# serving constraint (MLPerf Inference v5.0's server scenario: TTFT ≤ 2 s for Llama 2 70B, ≤ 6 s for Llama 3.1 405B),
# so it only rules out points whose first token waits on a queue no interactive service would keep.
DEFAULT_TTFT_SLO_S = 10.0
# `--disaggregate auto`: every split xP:yD of up to this many replicas; past it the prefill share on a geometric
# grid from each end (1, 2, 4, … prefill replicas, and as many decode), ~2 log2(R) splits, so the count stays small.
AUTO_EVERY_SPLIT = 8
# A step table costs ~0.1–0.3 s to price and evaluate (benchmarks/bench_plan.py), a configuration ~0.1 ms more: the
# largest search is a few minutes on one core.
MAX_STEP_TABLES = 400
MAX_CONFIGS = 1_000_000
MAX_GPUS = 4096
# Deployment keywords the plan chooses itself: given by the caller they would fix what is searched.
SEARCHED: tuple[str, ...] = ("tp", "ep", "pp", "dp", "quant", "kv_dtype", "spec_tokens", "max_num_batched_tokens")


@dataclass(frozen=True)
class Table:
    """One step table: a layout, a scheme, a KV dtype and a number of drafted tokens."""

    tp: int
    ep: int
    pp: int
    dp: int
    quant: str
    kv_dtype: str
    spec_tokens: int
    # Disaggregated: the splits xP:yD of the GPUs' dp replicas of tp × pp devices, read off this table's step model
    # (per replica: the same as a dp = 1 layout's when experts are not spread over the replicas, ep = 1).
    splits: tuple[Split, ...] = ()
    aggregated: bool = True  # False: a replica's own table (dp = 1, ep = tp), searched for its splits only

    @property
    def blocks(self) -> list[Split | None]:
        """What is read off the table: aggregated serving (None) and each split."""
        return [*([None] if self.aggregated else []), *self.splits]

    def deployment(self, extra: Deployment) -> Deployment:
        """The deployment keywords of this table: the caller's others, and acceptance/draft only with drafting."""
        d: dict[str, Any] = {k: v for k, v in extra.items() if self.spec_tokens or k not in ("acceptance", "draft")}
        d.update(tp=self.tp, ep=self.ep, pp=self.pp, dp=self.dp, quant=self.quant, kv_dtype=self.kv_dtype,
                 spec_tokens=self.spec_tokens)
        return cast(Deployment, d)  # the caller's keywords with the table's own

    def replica(self, extra: Deployment) -> Deployment:
        """The deployment keywords of one replica (dp = 1): those of `rooflm serving --disaggregate`."""
        return {**self.deployment(extra), "dp": 1}


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layouts(model: ModelSpec, gpus: int) -> list[Parallelism]:
    """Every tp × pp × dp = ``gpus`` the model divides into (heads, KV heads, widths, layers), each MoE layout also
    with its experts spread over the stage (ep = tp × dp), as rooflm.specs.parallel lays expert parallelism out."""
    found = []
    for tp in divisors(gpus):
        for pp in divisors(gpus // tp):
            dp = gpus // (tp * pp)
            for ep in (1, tp * dp) if model.moe is not None and tp * dp > 1 else (1,):
                p = Parallelism(tp=tp, ep=ep, pp=pp, dp=dp)
                try:
                    p.check(model)
                except InvalidInputError:
                    continue  # a layout the model does not divide into is not searched
                found.append(p)
    return found


def names(value: str | Sequence[str] | None, default: Sequence[str], field: str) -> tuple[list[str], bool]:
    """A list of names from ``"a,b"`` or a sequence, lower case and without repeats; and whether it was given."""
    if value is None:
        return list(default), False
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in items):
        raise InvalidInputError(f"{named(field)} must be names, got {quoted(value)}", field=field)
    picked = list(dict.fromkeys(v.strip().lower() for v in items if v.strip()))
    if not picked:
        raise InvalidInputError(f"{arg(field)} lists no value", field=field)
    return picked, True


def integers(value: int | Sequence[int] | None, default: Sequence[int], field: str, low: int, high: int) -> list[int]:
    """A sorted list of integers in [low, high] without repeats."""
    items = list(default) if value is None else [value] if isinstance(value, int) else list(value)
    flag = arg(field)
    if not items:
        raise InvalidInputError(f"{flag} lists no value", field=field)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise InvalidInputError(f"{flag} must be integers between {low:,} and {high:,}, got {quoted(v)}",
                                    field=field)
    return sorted(set(items))


def check_gpus(gpus: object) -> int:
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= MAX_GPUS:
        raise InvalidInputError(f"{arg('gpus')} must be an integer between 1 and {MAX_GPUS:,}, got {quoted(gpus)}",
                                field="gpus")
    return gpus


def check_slo(value: object, field: str) -> float | None:
    """A latency target in seconds; None (not given) and infinity (no target) are None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise InvalidInputError(f"{arg(field)} must be a positive number of seconds (inf: no target), got "
                                f"{quoted(value)}", field=field)
    return None if math.isinf(value) else float(value)


def check_not_searched(extra: Deployment) -> None:
    for name in SEARCHED:
        if name in extra:
            raise InvalidInputError(f"{named(name)} is searched by the plan: give the values to search "
                                    f"({arg('quant')}, {arg('kv_dtype')}, {arg('spec_tokens')}, "
                                    f"{arg('max_num_batched_tokens')} lists; layouts follow "
                                    f"{arg('gpus')}), not a fixed deployment keyword", field=name)


def parse_disaggregate(value: str | Sequence[str | Split] | None) -> str | list[Split]:
    """``"auto"`` (the default, also None), ``"off"``, or the splits listed (``"1P:3D,2P:2D"`` or a sequence)."""
    if value is None:
        return "auto"
    if isinstance(value, str) and value.strip().lower() in ("auto", "off"):
        return value.strip().lower()
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not items:
        raise InvalidInputError(f"{arg('disaggregate')} must be auto, off or a list of xP:yD splits (e.g. 1P:3D,2P:2D), got "
                                f"{quoted(value)}", field="disaggregate")
    splits = [parse_split(v.strip() if isinstance(v, str) else v) for v in items]
    return list(dict.fromkeys(s for s in splits if s is not None))


def splits_of(replicas: int, choice: str | list[Split]) -> tuple[Split, ...]:
    """The splits searched for ``replicas`` replicas of a layout (none for one replica: nothing to split)."""
    if choice == "off" or replicas < 2:
        return ()
    if isinstance(choice, list):
        return tuple(s for s in choice if s.prefill + s.decode == replicas)
    if replicas <= AUTO_EVERY_SPLIT:
        prefill = set(range(1, replicas))
    else:
        ends = {2**i for i in range(replicas.bit_length()) if 2**i < replicas}
        prefill = ends | {replicas - k for k in ends}
    # `rooflm serving --disaggregate` takes up to MAX_REPLICAS of each kind.
    return tuple(Split(x, replicas - x) for x in sorted(prefill) if max(x, replicas - x) <= MAX_REPLICAS)


def disaggregated_layouts(model: ModelSpec, gpus: int,
                          choice: str | list[Split]) -> list[tuple[Parallelism, tuple[Split, ...]]]:
    """Each replica layout (tp × pp of fewer than ``gpus`` devices; ep = 1 or tp for MoE) whose ``gpus`` / devices
    replicas can be split, with its splits; the layout's dp is the replicas (so that one with ep = 1 is the aggregated
    layout whose step table it shares). A listed split that no layout takes is an error."""
    found = []
    for devices in divisors(gpus)[:-1]:
        for p in layouts(model, devices):
            splits = splits_of(gpus // devices, choice) if p.dp == 1 else ()
            if splits:
                found.append((Parallelism(tp=p.tp, ep=p.ep, pp=p.pp, dp=gpus // devices), splits))
    if isinstance(choice, list):
        used = {s for _, splits in found for s in splits}
        for s in choice:
            if s not in used:
                raise InvalidInputError(f"{arg('disaggregate')} {s.label}: {s.prefill + s.decode} replicas of "
                                        f"{gpus / (s.prefill + s.decode):g} GPUs is no layout of {arg('gpus')} {gpus} "
                                        "the model divides into (x + y must divide the GPUs)", field="disaggregate")
    return found


def tables(model: ModelSpec, hardware: HardwareSpec, gpus: int, quants: tuple[list[str], bool],
           kv_dtypes: tuple[list[str], bool], spec_tokens: list[int], extra: Deployment,
           disaggregated: Sequence[tuple[Parallelism, tuple[Split, ...]]] = ()) -> tuple[list[Table], list[str]]:
    """The step tables searched, and notes on what was left out. A scheme or KV dtype the device cannot run is an
    error when the caller listed it, and left out (with a note) from the defaults; so is a draft that cannot run
    at a layout's tensor parallelism. ``disaggregated``: the replica layouts and their splits."""
    found: list[Table] = []
    dropped: dict[str, str] = {}
    # A replica layout with ep = 1 is read off the aggregated layout of dp replicas (their step tables are the same
    # per replica); one with its experts over its own devices (ep = tp > 1) has a table of its own.
    plans: dict[tuple[int, int, int, int], tuple[Parallelism, tuple[Split, ...], bool]] = {
        (p.tp, p.ep, p.pp, p.dp): (p, (), True) for p in layouts(model, gpus)}
    for p, splits in disaggregated:
        key = (p.tp, p.ep, p.pp, p.dp)
        plans[key] = (p, splits, True) if p.ep == 1 and key in plans else (p, splits, False)
    for p, splits, aggregated in plans.values():
        for q in quants[0]:
            for kv in kv_dtypes[0]:
                for k in spec_tokens:
                    t = Table(p.tp, p.ep, p.pp, p.dp, q, kv, k, splits, aggregated)
                    try:
                        setup(model, hardware, **(t.deployment(extra) if aggregated else t.replica(extra)))
                    except RooflmError as e:
                        given = {"quant": quants[1], "kv_dtype": kv_dtypes[1]}.get(e.field or "")
                        if given is False or e.field == "draft":
                            dropped.setdefault(f"{e.field} {q if e.field == 'quant' else kv}", str(e))
                            continue
                        raise
                    found.append(t)
    notes = [f"left out: {msg}" for msg in dropped.values()]
    return found, notes


def check_size(found: list[Table], n_limits: int, n_loads: int) -> int:
    """The configurations searched (each table's aggregated serving and splits × limits × loads), refused past the
    limits before any work."""
    n_tables = len(found)
    blocks = sum(len(t.blocks) for t in found)
    configs = blocks * n_limits * n_loads
    what = (f"{configs:,} configurations ({blocks:,} aggregated or disaggregated deployments on {n_tables:,} step "
            f"tables × {n_limits:,} engine limits × {n_loads:,} loads)")
    if n_tables > MAX_STEP_TABLES:
        raise InvalidInputError(f"{what}: {n_tables:,} step tables (layouts × schemes × KV dtypes × spec tokens, "
                                f"aggregated and disaggregated), at most {MAX_STEP_TABLES:,} per plan; give fewer "
                                f"{arg('quant')}, {arg('kv_dtype')} or {arg('spec_tokens')}, or {arg('disaggregate')} off",
                                field="quant")
    if configs > MAX_CONFIGS:
        raise InvalidInputError(f"{what}; at most {MAX_CONFIGS:,} per plan: give fewer {arg('concurrency')}, "
                                f"{arg('max_running')}, {arg('max_num_batched_tokens')} or {arg('disaggregate')} values",
                                field="concurrency")
    if configs == 0:
        raise InvalidInputError(f"no layout, scheme and KV dtype to search: no tp × pp × dp of {arg('gpus')} divides the "
                                "model, or the device runs none of the schemes", field="gpus")
    return configs
