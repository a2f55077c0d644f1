"""Resolved inputs: the model, the device, the scheme, the efficiency and the layout, checked once.

Every entry point (analyze, sweep, critical batch) takes the same deployment keywords, named like
the CLI flags, and resolves them here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Protocol, TypedDict, cast, get_args, get_type_hints

from typing_extensions import Unpack

from rooflm.core.roofline import NO_FACTORS, Efficiency, Factors, efficiency_for
from rooflm.core.speculation import check_speculation
from rooflm.core.step import MlaDecode, Options
from rooflm.errors import InvalidInputError, arg, quoted
from rooflm.ops.comm import ALGORITHMS
from rooflm.ops.moe import Routing
from rooflm.specs.engine_kernels import engine_tables, measured_devices, parse_engine
from rooflm.specs.engine_policies import EnginePolicy, engine_policy, engine_share, free_share
from rooflm.specs.figures import MAX_OVERHEAD_S
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.kernels import check_dequant_override
from rooflm.specs.model import MODULES, ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import NATIVE, QuantScheme, check_quant, load_scheme
from rooflm.specs.quant_costs import costs_for
from rooflm.specs.workload import PHASES, check_choice, check_context, check_number, check_positive

# vLLM's default share of device memory an engine may use (EngineArgs.gpu_memory_utilization = 0.9,
# vllm/engine/arg_utils.py); the rest is left to other processes and fragmentation.
GPU_MEMORY_UTILIZATION = 0.9
# Tokens one engine step processes: vLLM V1's default max_num_batched_tokens for its OpenAI server on GPUs with
# 70 GiB or more (vllm/engine/arg_utils.py, EngineArgs._set_default_args: 8192; 2048 on smaller GPUs); SGLang's
# chunked_prefill_size is 8192 on such GPUs too. A prefill of more tokens runs in chunks of this size.
MAX_NUM_BATCHED_TOKENS = 8192
# Communication hidden behind compute: none by default. vLLM and SGLang run the tensor-parallel all-reduce in
# line (RowParallelLinear.forward calls tensor_model_parallel_all_reduce and the next norm waits for it), so a
# decode step's all-reduces sit on its critical path; overlap is an opt-in (e.g. SGLang's two-batch overlap).
COMM_OVERLAP = 0.0

# The mode of the views a deployer decides from (serving, plan, quant, explain) when none is asked: calibrated, what an
# engine reaches. The roofline views (analyze, sweep, critical batch) keep ideal, the physical bound, as their subject
# (``Deployment.efficiency``'s default) and show the calibrated expectation beside it.
REALISTIC_EFFICIENCY = "calibrated"

# Routing skew: 1 is uniform. Past a factor of a million every hot expert is already picked by every token
# (its probability is capped at 1), so a larger one changes nothing but risks overflow (1e308 · experts = inf).
MAX_HOT_EXPERT_FACTOR = 1e6


@dataclass(frozen=True)
class Flag:
    """How a deployment keyword is offered: its default, its help text, and its CLI flag (the web field has the
    flag's name: ``--kv-dtype`` is ``kv_dtype``)."""

    default: Any
    help: str
    decls: tuple[str, ...] = ()  # typer's declarations, where more than ``--<name>``: a short option, --x/--no-x
    any_case: bool = False  # a name (mode, scheme, dtype): the CLI lower-cases it
    alias: str | None = None  # the flag's and web field's name, where the API keyword adds a unit (kernel_overhead_s)
    value: Any = None  # the type a flag or web field carries, where the API takes more (a QuantScheme object)
    web_help: str | None = None  # the web field's description, where the flag's help does not fit the page
    web: bool = True  # offered as a web field (a keyword that names a file is not: the server opens no path)


class ProfileSource(Protocol):
    """A loaded profile (``rooflm.fit.Profile``; declared here because rooflm.fit imports this module)."""

    @property
    def path(self) -> Path: ...  # read-only: a loaded Profile is frozen

    @property
    def provenance(self) -> dict[str, Any]: ...

    def deployment_overrides(self, hardware: str | Path | HardwareSpec) -> dict[str, Any]: ...


class Deployment(TypedDict, total=False):
    """How the model is served: every entry point takes these as keyword arguments. The one declaration of the
    deployment keywords: ``DEPLOYMENT_FIELDS`` reads it, and the CLI flags (``rooflm.cli.options``) and the web
    bodies (``rooflm.web.schemas``) are built from that."""

    quant: Annotated[str | QuantScheme | None, Flag(
        NATIVE, "bf16, fp16, fp8, fp8-block, int8 (W8A8), w8a16, w4a16, w4a8, fp4, mxfp4; native = the checkpoint's "
                "quantization_config (bf16 without one); or a mix per module class, e.g. "
                "experts=w4a8,attention=fp8,lm_head=bf16 (attention, mlp, shared_experts, experts, router, lm_head, "
                "embedding; kv=fp8)",
        ("--quant", "-q"), any_case=True, value=str,
        web_help="Quantization scheme, as --quant: a name, `native` (the checkpoint's own; bf16 without one) or a mix "
                 "per module class.")]
    kv_dtype: Annotated[str | None, Flag(None, "KV-cache dtype: bf16, fp16, fp8, int8, int4", any_case=True)]
    efficiency: Annotated[str, Flag("ideal", "ideal (datasheet roofs, no overhead) | calibrated (measured fractions). "
                                             "Default: calibrated for serving, plan, quant and explain; ideal (the "
                                             "roofline, the calibrated expectation beside it) for analyze, sweep and "
                                             "critical-batch", any_case=True)]
    engine: Annotated[str | None, Flag(
        None, "Serving engine: trtllm, vllm or sglang, optionally @version (vllm@0.24). Its serving policy (KV-cache "
              "memory rule and fraction, token budget, running limit, CUDA-graph range; data/engine_policies.toml) "
              "and, in calibrated mode, its measured GEMM kernels where the device has them. Unset: the generic "
              "kernel families and vLLM's memory rule with rooflm's fixed limits", any_case=True)]
    eta_memory: Annotated[float | None, Flag(None, "Override the achievable fraction of memory bandwidth.")]
    eta_compute: Annotated[float | None, Flag(None, "Override the achievable fraction of peak FLOP/s.")]
    kernel_overhead_s: Annotated[float | None, Flag(None, "Override the per-kernel overhead (s).", alias="kernel_overhead",
                                                    web_help="Seconds per kernel, as --kernel-overhead.")]
    tp: Annotated[int, Flag(1, "Tensor-parallel devices (heads and MLP width split).")]
    ep: Annotated[int, Flag(1, "Expert-parallel devices (= tp × dp, or 1).")]
    pp: Annotated[int, Flag(1, "Pipeline stages (layers split).")]
    dp: Annotated[int, Flag(1, "Data-parallel replicas (the batch is split).")]
    comm_algorithm: Annotated[str, Flag(
        "auto", "All-reduce algorithm: auto (the engine's pick, calibrated) | ring | tree", any_case=True)]
    comm_overlap: Annotated[float, Flag(COMM_OVERLAP, "Fraction of communication hidden behind compute, [0, 1).")]
    cuda_graphs: Annotated[bool, Flag(True, "Calibrated decode replays CUDA graphs (cheaper kernel launches).",
                                      ("--cuda-graphs/--no-cuda-graphs",))]  # prefill stays eager
    step_overhead_s: Annotated[float | None, Flag(
        None, "Override the per-step CPU/scheduler time (s, calibrated).", alias="step_overhead",
        web_help="Seconds per engine step, as --step-overhead.")]  # None: the hardware file's
    gpu_memory_utilization: Annotated[float, Flag(
        GPU_MEMORY_UTILIZATION, "The engine's memory fraction (vLLM's default 0.9): with --engine, that engine's "
                                "flag (sglang mem_fraction_static; trtllm free_gpu_memory_fraction, a share of the "
                                "memory left after the weights).")]
    max_num_batched_tokens: Annotated[int, Flag(
        MAX_NUM_BATCHED_TOKENS, "Tokens per engine step: longer prefills run in chunks of this.")]
    hot_expert_factor: Annotated[float, Flag(1.0, "MoE routing skew: hot experts are chosen this many times as often.")]
    hot_expert_fraction: Annotated[float, Flag(0.1, "MoE routing skew: the fraction of experts that are hot.")]
    mla_decode: Annotated[str, Flag("absorbed", "MLA decode form: absorbed | naive", any_case=True)]
    dequant_ops: Annotated[float | None, Flag(None, "Override: vector instructions per weight to dequantize.")]
    kv_dequant_ops: Annotated[float | None, Flag(None, "Override: vector instructions per cached KV element.")]
    act_quant: Annotated[bool | None, Flag(None, "Override: count the per-token activation quantization pass.",
                                           ("--act-quant/--no-act-quant",))]
    spec_tokens: Annotated[int, Flag(0, "Speculative decoding: tokens drafted per step, k (0 = off); a decode step "
                                        "verifies k + 1 rows per sequence.")]
    acceptance: Annotated[float | str | list[float] | None, Flag(
        None, "Speculative decoding: acceptance rate in [0, 1], or one per drafted position, e.g. 0.8,0.6,0.4 (k "
              "values).", value=str)]
    draft: Annotated[str | Path | ModelSpec | None, Flag(
        None, "Speculative decoding: the draft, a catalog model or config path run k times per step at the same "
              "batch, or mtp (one extra decoder layer of the target per drafted token, DeepSeek-V3's MTP), or ngram (prompt "
              "lookup: drafting costs nothing); unset: mtp where the checkpoint has MTP layers, else ngram.",
        value=str,
        web_help="Speculative decoding: the draft, a catalog model, mtp (one extra target layer per drafted token) or "
                 "ngram (free); unset: mtp where the checkpoint has it, else ngram.")]
    profile: Annotated[str | Path | ProfileSource | None, Flag(
        None, "A profile written by `rooflm fit`: predict with its parameters for this device (calibrated mode; "
              "flags given explicitly win).", value=str, web=False)]


@dataclass(frozen=True)
class DeploymentField:
    """One deployment keyword, as ``Deployment`` declares it."""

    name: str  # the API keyword
    api_type: Any
    flag: Flag

    @property
    def cli_name(self) -> str:
        """The CLI parameter's and the web field's name (``kernel_overhead`` for ``kernel_overhead_s``)."""
        return self.flag.alias or self.name

    @property
    def value_type(self) -> Any:
        """The type the CLI flag and the web field carry."""
        return self.api_type if self.flag.value is None else self.flag.value

    @property
    def default(self) -> Any:
        return self.flag.default


def _fields() -> tuple[DeploymentField, ...]:
    hints = get_type_hints(Deployment, include_extras=True)
    return tuple(DeploymentField(name, get_args(hint)[0], get_args(hint)[1]) for name, hint in hints.items())


DEPLOYMENT_FIELDS: tuple[DeploymentField, ...] = _fields()
DEFAULTS: dict[str, Any] = {f.name: f.default for f in DEPLOYMENT_FIELDS}


@dataclass(frozen=True)
class Setup:
    """Resolved inputs shared by every entry point."""

    model: ModelSpec
    hardware: HardwareSpec
    quant: QuantScheme
    eff: Efficiency
    options: Options
    # Decode runs on ``decode_eff`` (CUDA-graph launches in calibrated mode); prefill on ``eff``.
    decode_eff: Efficiency | None = None
    # The bytes of a device the engine may fill (capacity × utilization − runtime reserve), and its chunk size.
    usable_memory: float | None = None
    max_num_batched_tokens: int = MAX_NUM_BATCHED_TOKENS
    step_overhead_s: float = 0.0
    profile: dict[str, str | None] | None = None  # the profile predicted with: {"name", "data_sha256"}
    engine: str | None = None  # the engine asked for (its tables in eff.engine_gemm where the device has them)
    engine_kernels: str | None = None  # what the engine's kernels priced, in words (engine_label); None: no engine
    policy: EnginePolicy | None = None  # its serving policy (None: vLLM's memory rule, rooflm's fixed limits)
    graph_max_batch: int | None = None  # the largest decode batch replayed as a CUDA graph (None: every batch)

    @property
    def decode_efficiency(self) -> Efficiency:
        return self.decode_eff or self.eff

    @property
    def memory_capacity(self) -> float:
        return self.hardware.memory_capacity.value if self.usable_memory is None else self.usable_memory

    @property
    def parallel(self) -> Parallelism:
        return self.options.parallel

    @property
    def ridge(self) -> float:
        """Ridge of the scheme's compute roof, at the efficiencies in use (the datasheet ridge when ideal)."""
        hw, eff, dtype = self.hardware, self.eff, self.quant.compute
        return hw.peak(dtype) * eff.compute_fraction(dtype) / (hw.memory_bandwidth.value * eff.memory)


def setup(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec, **d: Unpack[Deployment]) -> Setup:
    """Check every deployment keyword (type, range, choice) before loading anything, then resolve them. The CLI,
    the API and the web server all come through here, so they refuse the same values with the same message."""
    d, profile, factors = with_profile(d, hardware)
    quant, kv_dtype, act_quant = d.get("quant") or NATIVE, d.get("kv_dtype"), d.get("act_quant")
    if not isinstance(quant, (str, QuantScheme)):
        raise InvalidInputError(f"quant must be a scheme name, got {quoted(quant)}", "quant")
    if kv_dtype is not None and not isinstance(kv_dtype, str):
        raise InvalidInputError(f"kv-dtype must be a dtype name, got {quoted(kv_dtype)}", "kv_dtype")
    kv_dtype = kv_dtype.strip().lower() if kv_dtype else kv_dtype  # dtype names are lower case: "FP8" is fp8
    if act_quant is not None and not isinstance(act_quant, bool):
        raise InvalidInputError(f"act-quant must be true, false or unset, got {quoted(act_quant)}", "act_quant")
    sizes = {k: _get(d, k) for k in ("tp", "ep", "pp", "dp")}
    check_positive(**sizes)
    algorithm = check_choice(_get(d, "comm_algorithm"), "comm_algorithm", ALGORITHMS)
    runtime = check_runtime(d)
    mla_decode: MlaDecode = check_choice(_get(d, "mla_decode"), "mla_decode",
                                         get_args(MlaDecode))
    routing = Routing(
        check_number(_get(d, "hot_expert_factor"), "hot_expert_factor", 1, MAX_HOT_EXPERT_FACTOR),
        check_number(_get(d, "hot_expert_fraction"), "hot_expert_fraction", 0, 1, low_open=True, high_open=True),
    )
    hw = load_hardware(hardware)
    policy = policy_of(check_engine(d.get("engine"), d))
    d = with_policy_defaults(d, policy, hw)
    runtime = check_runtime(d)
    # efficiency_for and costs_for check their own overrides (finite, in range), for their other callers too.
    eff = efficiency_for(hw, _get(d, "efficiency"), memory=d.get("eta_memory"), compute=d.get("eta_compute"),
                         kernel_overhead_s=d.get("kernel_overhead_s"))
    engine = check_engine(d.get("engine"), d)
    eff = with_engine(eff, hw, engine)
    if isinstance(quant, str):
        check_quant(quant)  # a malformed --quant is refused before the model is read
    spec = load_model(model)
    scheme = load_scheme(quant, kv_dtype, spec)
    for module in MODULES:
        hw.peak(scheme.for_module(module).compute)  # refuse a scheme the device has no roof for, before any work
    if d.get("dequant_ops") is not None:  # measured kernel curves include the dequantization: refuse, not ignore
        check_dequant_override(hw.name, {m: scheme.for_module(m) for m in MODULES}, eff.kernels)
    overrides: dict[str, Any] = {"dequant_ops": d.get("dequant_ops"),
                                 "kv_dequant_ops": d.get("kv_dequant_ops"), "act_quant": act_quant}
    costs = costs_for(scheme, eff.mode, **overrides)
    module_costs = tuple((m, costs_for(scheme.for_module(m), eff.mode, **overrides)) for m in MODULES)
    parallel = Parallelism(**sizes, algorithm=algorithm)
    parallel.check(spec)
    eff = with_engine_moe(eff, spec, parallel, scheme, routing)
    options = Options(parallel, routing, mla_decode, costs=costs, module_costs=module_costs)
    options = replace(options, speculation=check_speculation(_get(d, "spec_tokens"), d.get("acceptance"), d.get("draft"),
                                                             spec, scheme, options))
    graphs = None if policy is None else policy.limit("cuda_graph_max_batch", hw.memory_capacity.value, sizes["tp"])
    s = with_runtime(Setup(spec, hw, scheme, eff, options, profile=profile, engine=engine,
                           engine_kernels=engine_label(eff, hw, engine), policy=policy, graph_max_batch=graphs),
                     runtime, d.get("kernel_overhead_s"))
    return with_factors(s, factors) if factors is not NO_FACTORS else s


def deployment_mode(hw: HardwareSpec, d: Deployment) -> tuple[str, str | None]:
    """The efficiency mode and the engine's part of its name (engine_label) that ``d`` runs with on ``hw``."""
    engine = check_engine(d.get("engine"), d)
    eff = with_engine(efficiency_for(hw, _get(d, "efficiency")), hw, engine)
    return eff.mode, engine_label(eff, hw, engine)


def engine_label(eff: Efficiency, hw: HardwareSpec, engine: str | None) -> str | None:
    """The engine's part of the mode's name in every output: "vllm 0.24.0 kernels" where its tables price this
    device's GEMMs, else what stands in for them; None without an engine."""
    if engine is None:
        return None
    if eff.mode == "ideal":
        return f"{engine} kernels unused in ideal mode"
    tables = engine_tables(hw.name, engine)
    if tables is None or not eff.engine_gemm:
        return f"{engine}: generic kernels, no tables for {hw.name}"
    return f"{tables.engine} {tables.version} kernels"


def policy_of(engine: str | None) -> EnginePolicy | None:
    """The serving policy of an engine asked for (``check_engine``'s name, a version suffix dropped)."""
    return None if engine is None else engine_policy(engine.partition("@")[0])


def with_policy_defaults(d: Deployment, policy: EnginePolicy | None, hw: HardwareSpec) -> Deployment:
    """The keywords with the engine's defaults for its memory fraction and token budget where none is given
    (a keyword given always wins; without an engine, the declared defaults stand)."""
    if policy is None:
        return d
    cap, tp, pp = hw.memory_capacity.value, int(_get(d, "tp")), int(_get(d, "pp"))
    out: dict[str, Any] = dict(d)
    if out.get("max_num_batched_tokens") is None:
        out["max_num_batched_tokens"] = policy.limit("max_tokens_per_step", cap, tp)
    if out.get("gpu_memory_utilization") is None:
        out["gpu_memory_utilization"] = policy.memory_share(cap, int(out["max_num_batched_tokens"]), tp, pp)
    return out  # type: ignore[return-value]


def memory_rule(d: Deployment) -> str:
    """The engine's KV-memory rule (rooflm.specs.engine_policies.RULES; "total" without an engine)."""
    policy = policy_of(check_engine(d.get("engine"), d))
    return "total" if policy is None else policy.memory_rule


def kv_free_share(d: Deployment) -> float:
    """The share of the memory left after weights and activations that an engine gives its KV cache: all of it,
    except under TensorRT-LLM's rule (free_gpu_memory_fraction, 0.9 unless --gpu-memory-utilization says)."""
    policy = policy_of(check_engine(d.get("engine"), d))
    if policy is None:
        return 1.0
    return free_share(policy.memory_rule, float(d.get("gpu_memory_utilization") or policy.memory_fraction))


def default_max_running(d: Deployment, hw: HardwareSpec) -> int | None:
    """The engine's default limit of running requests on this device (None without an engine)."""
    policy = policy_of(check_engine(d.get("engine"), d))
    return None if policy is None else policy.limit("max_running", hw.memory_capacity.value, int(_get(d, "tp")))


def check_engine(engine: object, d: Deployment) -> str | None:
    """The engine asked for, in lower case (None: the generic kernel families). Flat efficiency overrides replace
    every measured curve, so with an engine they are refused rather than silently winning."""
    if engine is None:
        return None
    if not isinstance(engine, str):
        raise InvalidInputError(f"engine must be an engine name, got {quoted(engine)}", "engine")
    name, version = parse_engine(engine)
    if d.get("eta_memory") is not None or d.get("eta_compute") is not None:
        raise InvalidInputError("engine: --eta-memory/--eta-compute replace the engine's measured kernels; "
                                "drop one or the other", "engine")
    return name if version is None else f"{name}@{version}"


def with_engine(eff: Efficiency, hw: HardwareSpec, engine: str | None) -> Efficiency:
    """Calibrated mode with an engine: its measured GEMM tables on this device, where it has them; the efficiency
    sources say which (and why not: ideal mode, or no table for this device or version)."""
    if engine is None:
        return eff
    if eff.mode == "ideal":
        note = f"{engine}: ideal mode is the physical bound; the engine's measured kernels apply in calibrated mode"
        return replace(eff, sources={**eff.sources, "engine": note})
    tables = engine_tables(hw.name, engine)
    if tables is None:
        name = engine.partition("@")[0]
        other = engine_tables(hw.name, name)
        why = (f"the tables for {hw.name} are {name} {other.version}" if other is not None else
               f"no measured kernel tables for {hw.name} (measured on: {', '.join(measured_devices(name))})")
        note = f"{engine}: {why}; the generic kernel families price its GEMMs"
        return replace(eff, sources={**eff.sources, "engine": note})
    gpu = tables.provenance["collection"]["gpu"]  # type: ignore[index]
    note = (f"{tables.engine} {tables.version} on {gpu}: dense GEMMs in {', '.join(sorted(tables.gemm))} from its "
            f"measured kernels (data/engine_kernels/{hw.name}-{tables.engine}.toml; {tables.provenance['notice']}); "
            "routed experts from its measured MoE layers where the layer's configuration was measured (engine_moe); "
            "attention and other families: the generic kernel families")
    return replace(eff, engine_gemm=dict(tables.gemm), engine_moe=dict(tables.moe),
                   sources={**eff.sources, "engine": note})


def with_engine_moe(eff: Efficiency, spec: ModelSpec, parallel: Parallelism, scheme: QuantScheme,
                    routing: Routing) -> Efficiency:
    """Say in the efficiency sources whether the engine's measured MoE layers price this model's routed experts:
    only an exact match of (hidden, expert width, top-k, experts, expert TP, EP) in the experts' scheme with
    uniform routing; any other layer keeps the generic grouped-GEMM family."""
    moe = spec.moe
    if moe is None or not eff.engine_gemm:
        return eff
    experts = scheme.for_module("experts").name
    key = (spec.hidden_size, moe.expert.intermediate_size, moe.top_k, moe.num_experts, parallel.expert_tp,
           parallel.ep)
    layout = f"expert TP {parallel.expert_tp}, EP {parallel.ep}"
    table = eff.engine_moe.get(experts)
    if table is None:
        why = f"no measured MoE layers in {experts} (measured: {', '.join(sorted(eff.engine_moe)) or 'none'})"
    elif not routing.uniform:
        why = "skewed routing (the measured layers route uniformly)"
    elif key not in table.configs:
        near = sorted(f"{t}x{e}" for (*shape, t, e) in table.configs if tuple(shape) == key[:4])
        why = (f"this layer ({layout}) was not measured" +
               (f"; measured expert TP x EP: {', '.join(near)}" if near else "; no configuration of this shape"))
    else:
        note = (f"routed experts ({layout}, {experts}) at the measured MoE layer of {table.models[key]}'s shape "
                f"({table.source['source_file']}, {table.source['distribution']} routing; curve residual "
                f"<= {table.residual_max:g}); their activation quantization is inside it")
        return replace(eff, sources={**eff.sources, "engine_moe": note})
    note = f"routed experts: {why}; the generic grouped-GEMM family prices them"
    return replace(eff, engine_moe={}, sources={**eff.sources, "engine_moe": note})


def realistic(d: Deployment) -> Deployment:
    """The keywords with calibrated mode where no efficiency is given (the default of the views that predict what a
    deployment reaches: serving, plan, quant, explain)."""
    return d if d.get("efficiency") is not None else {**d, "efficiency": REALISTIC_EFFICIENCY}


def with_factors(s: Setup, factors: Factors) -> Setup:
    """The setup with a fitted profile's factors on its calibrated curves (prefill's and decode's efficiencies)."""
    return replace(s, eff=replace(s.eff, factors=factors), decode_eff=replace(s.decode_efficiency, factors=factors))


def with_profile(d: Deployment, hardware: str | Path | HardwareSpec
                 ) -> tuple[Deployment, dict[str, str | None] | None, Factors]:
    """The keywords with a profile's overrides for ``hardware`` merged under them (a keyword given, not None, wins),
    the profile's name and data hash (None without one), and its factors on the calibrated curves. A profile means
    calibrated mode: an explicit ideal is refused, as is a profile without this device (``Profile.deployment_overrides``)."""
    source = d.get("profile")
    rest: dict[str, Any] = {k: v for k, v in d.items() if k != "profile"}
    if source is None:
        return cast(Deployment, rest), None, NO_FACTORS  # the keywords less profile
    mode = rest.get("efficiency")
    if isinstance(mode, str) and mode.strip().lower() == "ideal":
        raise InvalidInputError(f"profile: a profile predicts in calibrated mode; drop {arg('efficiency')} ideal", "profile")
    if isinstance(source, (str, Path)):
        from rooflm.core.profiles import load_profile  # at first use: most runs read no profile

        source = load_profile(source)
    elif not callable(getattr(source, "deployment_overrides", None)):
        raise InvalidInputError(f"profile must be a profile file or a loaded Profile, got {quoted(source)}", "profile")
    merged = {**source.deployment_overrides(hardware), **{k: v for k, v in rest.items() if v is not None}}
    sha = source.provenance.get("data_sha256")
    factors_for = getattr(source, "factors_for", None)
    factors = factors_for(hardware) if callable(factors_for) else NO_FACTORS
    return (cast(Deployment, merged), {"name": source.path.name, "data_sha256": sha if isinstance(sha, str) else None},
            factors)


def _get(d: Deployment, name: str) -> Any:
    """A keyword's value, or its declared default."""
    return d.get(name, DEFAULTS[name])


class RuntimeKeywords(TypedDict):
    """The engine keywords, checked (check_runtime)."""

    overlap: float
    graphs: bool
    step: float | None
    utilization: float
    chunk: int


def check_runtime(d: Deployment) -> RuntimeKeywords:
    """The engine keywords, checked: overlap, CUDA graphs, step overhead, memory share and chunk size."""
    graphs = _get(d, "cuda_graphs")
    if not isinstance(graphs, bool):
        raise InvalidInputError(f"cuda-graphs must be true or false, got {quoted(graphs)}", "cuda_graphs")
    step = d.get("step_overhead_s")
    chunk = _get(d, "max_num_batched_tokens")
    check_positive(max_num_batched_tokens=chunk)
    return {
        "overlap": check_number(_get(d, "comm_overlap"), "comm_overlap", 0, 1, high_open=True,
                                label="communication overlap"),
        "graphs": graphs,
        "step": None if step is None else check_number(step, "step_overhead", 0, MAX_OVERHEAD_S, unit="s",
                                                       label="step overhead"),
        "utilization": check_number(_get(d, "gpu_memory_utilization"), "gpu_memory_utilization",
                                    0, 1, low_open=True, label="GPU memory utilization"),
        "chunk": int(chunk),
    }


def with_runtime(s: Setup, r: RuntimeKeywords, kernel_overhead: float | None) -> Setup:
    """The engine's costs on the device (data/hardware ``[runtime]``), calibrated mode only: decode launches from CUDA
    graphs (unless turned off or the per-kernel overhead is overridden), a per-step CPU cost (a ``host`` operator),
    and the memory it may fill. ``ideal`` keeps no overhead but the same memory share: memory is not a roof."""
    hw, eff, rt = s.hardware, replace(s.eff, comm_overlap=float(r["overlap"])), s.hardware.runtime
    calibrated = eff.mode == "calibrated"
    step = r["step"] if r["step"] is not None else (rt.step_overhead.value if rt and calibrated else 0.0)
    step = float(step) if calibrated else 0.0
    if step:
        eff = replace(eff, overhead_by_kind={**eff.overhead_by_kind, "host": step})
    decode = eff
    if calibrated and r["graphs"] and rt is not None and kernel_overhead is None:
        decode = replace(eff, kernel_overhead_s=rt.graph_kernel_overhead.value,
                         overhead_by_kind={k: v for k, v in eff.overhead_by_kind.items() if k == "host"},
                         sources={**eff.sources, "graph_kernel_overhead": rt.graph_kernel_overhead.source})
    if step and r["step"] is None and rt is not None:
        eff = replace(eff, sources={**eff.sources, "step_overhead": rt.step_overhead.source})
        decode = replace(decode, sources={**decode.sources, "step_overhead": rt.step_overhead.source})
    # SGLang's default fraction already leaves room for activations, CUDA graphs and the runtime (its reserved_mem):
    # weights + KV cache = fraction × memory, so no reserve is taken twice.
    reserve = rt.memory_reserve.value if rt and (s.policy is None or s.policy.memory_rule != "sglang") else 0.0
    # The share of the device the engine fills: its fraction (vLLM, SGLang), or all of it where the fraction is of
    # the memory left after the weights (TensorRT-LLM; the KV room applies the fraction: kv_free_share).
    rule = s.policy.memory_rule if s.policy is not None else "total"
    usable = hw.memory_capacity.value * engine_share(rule, float(r["utilization"])) - reserve
    return replace(s, eff=eff, decode_eff=decode, usable_memory=usable, max_num_batched_tokens=int(r["chunk"]),
                   step_overhead_s=step)


def check_phase(phase: object) -> str:
    """The phase in lower case ('Decode' is decode); anything else is refused."""
    picked = phase.strip().lower() if isinstance(phase, str) else None
    if picked not in PHASES:
        raise InvalidInputError(f"phase must be one of {', '.join(PHASES)}, got {quoted(phase)}", "phase")
    return picked


def check_lengths(model: ModelSpec, phase: str, prompt_lens: list[int], contexts: list[int], gen_len: int) -> None:
    limit = model.max_position_embeddings
    if phase == "decode":
        check_context(max(contexts), limit)
    elif phase == "prefill":
        check_context(max(prompt_lens), limit, "prompt length")
    else:
        check_context(max(prompt_lens) + gen_len - 1, limit, "prompt length + gen length")
