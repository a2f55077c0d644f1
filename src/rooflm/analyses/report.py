"""The typed result of an analysis: what the CLI prints, the API returns and the JSON contract fixes."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Expectation(_Frozen):
    """What a calibrated engine is expected to take for the same step: the roofline's companion (docs/DESIGN.md,
    ``totals.calibrated``)."""

    efficiency: str  # the mode it was priced in ("calibrated")
    time_s: float
    bound: str
    tokens_per_s: float
    ttft_s: float | None = None  # e2e only
    tpot_s: float | None = None


class Totals(_Frozen):
    time_s: float
    compute_time_s: float
    memory_time_s: float
    comm_time_s: float
    overhead_time_s: float
    flops: float
    bytes: float
    weight_bytes: float
    activation_bytes: float
    kv_bytes: float
    arithmetic_intensity: float
    ridge_intensity: float
    bound: str
    tokens_per_s: float
    time_by_bound: dict[str, float]
    time_by_class: dict[str, float]
    ttft_s: float | None = None
    tpot_s: float | None = None
    output_tokens_per_s: float | None = None
    # With pipeline parallelism: throughput with pp micro-batches of this batch in flight, one per stage (vLLM's
    # pipeline keeps one batch per stage): pp × tokens / step latency, the bubble-free steady state. None without PP.
    pipelined_tokens_per_s: float | None = None
    # Decode and e2e: tokens a decode step emits per sequence (1 + Σ_i Π_{j≤i} p_j with speculative decoding, else 1)
    # and the effective time per output token (a decode step's time / tokens_per_step; e2e: tpot_s). None in prefill.
    tokens_per_step: float | None = None
    effective_tpot_s: float | None = None
    # An ideal (roofline) report's calibrated expectation of the same step, beside it; None when the report is already
    # calibrated, or when calibrated mode refuses one of its keywords (a dequantization override on a measured curve).
    calibrated: Expectation | None = None


class OperatorRow(_Frozen):
    """One operator, all ``count`` instances together, for the whole step (or request, in e2e)."""

    name: str
    kind: str
    op_class: str
    count: int
    compute_dtype: str
    weight_shape: tuple[int, int] | None
    flops: float
    bytes: float
    weight_bytes: float
    activation_bytes: float
    kv_bytes: float
    arithmetic_intensity: float
    compute_time_s: float
    memory_time_s: float
    overhead_time_s: float
    time_s: float
    bound: str
    # Weight GEMMs: the scheme this operator runs in (a module of a mix or of the checkpoint's native scheme can
    # differ from the headline) and its weights' storage dtype; None for operators without weights.
    scheme: str | None = None
    weight_dtype: str | None = None
    # The memory hierarchy (docs/DESIGN.md, "Memory levels"): bytes at each level, innermost first, "dram" last, and
    # the level whose time is the operator's memory time (None when it moves no bytes).
    bytes_by_level: dict[str, float] = {}
    bound_level: str | None = None


class FitSuggestion(_Frozen):
    """A change under which the workload fits: the API keywords to set (``{"tp": 2}``, ``{"quant": "fp8"}``,
    ``{"batch": 12}``) and the memory per device then (None for the largest batch, which fills it)."""

    change: dict[str, int | str]
    bytes_per_device: float | None = None


class MemoryReport(_Frozen):
    weights_bytes: float
    kv_cache_bytes: float
    # The linear-attention layers' recurrent state of the batch (constant in the context), beside the KV cache.
    state_bytes: float = 0.0
    activation_bytes: float
    total_bytes: float
    capacity_bytes: float
    fits: bool
    max_batch: int
    shortfall_bytes: float
    suggestions: list[FitSuggestion] = []  # nearest change first; the largest batch that fits last

    def suggestion_lines(self, spelling: Callable[[str], str]) -> list[str]:
        """The suggestions as text, each keyword spelled by ``spelling`` (the CLI's ``--tp``)."""
        lines = []
        for s in self.suggestions:
            change = " ".join(f"{spelling(k)} {v}" for k, v in s.change.items())
            lines.append(f"{change}: the largest batch that fits as laid out" if s.bytes_per_device is None
                         else f"{change}: {s.bytes_per_device / 1e9:.1f} GB per device")
        if not self.fits and not any("batch" in s.change for s in self.suggestions):
            lines.append("even one sequence does not fit as laid out: the weights alone exceed the device memory")
        return lines


class Layout(_Frozen):
    tp: int
    ep: int
    pp: int
    dp: int
    devices: int
    comm_algorithm: str
    label: str


class MoeReport(_Frozen):
    """What the experts of one MoE layer do in this step, on one device."""

    routing: str
    tokens_per_step: float  # tokens routed in the expert-parallel group (all replicas under EP)
    top_k: int
    num_experts: int
    distinct_experts: float  # expected experts hit per layer
    experts_read_per_device: float
    tokens_per_expert: float  # the M of each expert GEMM
    expert_critical_batch: int | None  # global decode batch where routed-expert GEMMs turn compute-bound


class ProfileRef(_Frozen):
    """The profile (`rooflm fit`) a prediction used: its file name and the hash of the data it was fitted on."""

    name: str
    data_sha256: str | None


class Report(_Frozen):
    model: str
    hardware: str
    phase: str
    batch: int
    prompt_len: int
    context: int
    gen_len: int
    quant: str
    weight_dtype: str
    activation_dtype: str
    kv_dtype: str
    compute_dtype: str
    quant_modules: dict[str, str] = {}  # module class → the scheme its GEMMs run in (attention, experts, lm_head, ...)
    efficiency: str
    efficiency_sources: dict[str, str]
    profile: ProfileRef | None = None
    engine: str | None = None  # the engine asked for; efficiency_sources["engine"] says what it priced
    engine_kernels: str | None = None  # the engine's part of the mode's name: "vllm 0.24.0 kernels" (None: no engine)
    layout: Layout
    totals: Totals
    operators: list[OperatorRow]
    memory: MemoryReport
    moe: MoeReport | None = None

    def to_json_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")
