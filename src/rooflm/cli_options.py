"""The flags shared by the analysis commands, declared once.

Every command that analyses a deployment takes the same quantization, efficiency, layout and routing
flags; ``with_deployment`` adds them to a command's signature (typer reads ``__signature__``) and hands
them to the command as one ``deployment`` dict of API keywords.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


def lower_case(value: str | None) -> str | None:
    """Modes, schemes and dtypes are names in any case: `--efficiency CALIBRATED` reaches the API as `calibrated`."""
    return None if value is None else value.lower()


Model = Annotated[str, typer.Option("--model", "-m", help="Catalog name or path to a config.json (or its folder).")]
Hardware = Annotated[str, typer.Option("--hardware", "-H", help="Catalog name/alias or a hardware .toml file.")]
Phase = Annotated[str, typer.Option(help="prefill | decode | e2e", callback=lower_case)]
Quant = Annotated[str, typer.Option("--quant", "-q", callback=lower_case,
                                    help="bf16, fp16, fp8, fp8-block, int8 (W8A8), w8a16, w4a16, w4a8, fp4, mxfp4; native = "
                                         "the checkpoint's quantization_config (bf16 without one); or a mix per module "
                                         "class, e.g. experts=w4a8,attention=fp8,lm_head=bf16 (attention, mlp, "
                                         "shared_experts, experts, router, lm_head, embedding; kv=fp8)")]
KvDtype = Annotated[str | None, typer.Option(help="KV-cache dtype: bf16, fp16, fp8, int8, int4", callback=lower_case)]
Efficiency = Annotated[str, typer.Option(help="ideal (datasheet roofs, no overhead) | calibrated (measured fractions)",
                                         callback=lower_case)]
EtaMem = Annotated[float | None, typer.Option(help="Override the achievable fraction of memory bandwidth.")]
EtaCompute = Annotated[float | None, typer.Option(help="Override the achievable fraction of peak FLOP/s.")]
Overhead = Annotated[float | None, typer.Option("--kernel-overhead", help="Override the per-kernel overhead (s).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
GenLen = Annotated[int, typer.Option(help="Output tokens per request (e2e).")]
AllTokens = Annotated[bool, typer.Option("--lm-head-all-tokens", help="Prefill computes logits for every token.")]
Tp = Annotated[int, typer.Option("--tp", help="Tensor-parallel devices (heads and MLP width split).")]
Ep = Annotated[int, typer.Option("--ep", help="Expert-parallel devices (= tp × dp, or 1).")]
Pp = Annotated[int, typer.Option("--pp", help="Pipeline stages (layers split).")]
Dp = Annotated[int, typer.Option("--dp", help="Data-parallel replicas (the batch is split).")]
CommAlgo = Annotated[str, typer.Option("--comm-algorithm", callback=lower_case,
                                       help="All-reduce algorithm: auto (the engine's pick, calibrated) | ring | tree")]
CommOverlap = Annotated[float, typer.Option("--comm-overlap",
                                            help="Fraction of communication hidden behind compute, [0, 1).")]
CudaGraphs = Annotated[bool, typer.Option("--cuda-graphs/--no-cuda-graphs",
                                          help="Calibrated decode replays CUDA graphs (cheaper kernel launches).")]
StepOverhead = Annotated[float | None, typer.Option("--step-overhead",
                                                    help="Override the per-step CPU/scheduler time (s, calibrated).")]
GpuMemUtil = Annotated[float, typer.Option("--gpu-memory-utilization",
                                           help="Share of device memory the engine may use (vLLM's default 0.9).")]
MaxBatchedTokens = Annotated[int, typer.Option("--max-num-batched-tokens",
                                               help="Tokens per engine step: longer prefills run in chunks of this.")]
HotFactor = Annotated[float, typer.Option(help="MoE routing skew: hot experts are chosen this many times as often.")]
HotFraction = Annotated[float, typer.Option(help="MoE routing skew: the fraction of experts that are hot.")]
MlaDecodeOpt = Annotated[str, typer.Option("--mla-decode", help="MLA decode form: absorbed | naive", callback=lower_case)]
DequantOps = Annotated[float | None, typer.Option(help="Override: vector instructions per weight to dequantize.")]
KvDequantOps = Annotated[float | None, typer.Option(help="Override: vector instructions per cached KV element.")]
ActQuant = Annotated[bool | None, typer.Option("--act-quant/--no-act-quant",
                                               help="Override: count the per-token activation quantization pass.")]

# The deployment flags: (name, annotation, default). Their names are the API's keywords, but for
# --kernel-overhead and --step-overhead, which the API takes as kernel_overhead_s and step_overhead_s.
DEPLOYMENT_FLAGS: list[tuple[str, Any, Any]] = [
    ("quant", Quant, "native"), ("kv_dtype", KvDtype, None), ("efficiency", Efficiency, "ideal"),
    ("eta_memory", EtaMem, None), ("eta_compute", EtaCompute, None), ("kernel_overhead", Overhead, None),
    ("tp", Tp, 1), ("ep", Ep, 1), ("pp", Pp, 1), ("dp", Dp, 1), ("comm_algorithm", CommAlgo, "auto"),
    ("comm_overlap", CommOverlap, 0.0), ("cuda_graphs", CudaGraphs, True), ("step_overhead", StepOverhead, None),
    ("gpu_memory_utilization", GpuMemUtil, 0.9), ("max_num_batched_tokens", MaxBatchedTokens, 8192),
    ("hot_expert_factor", HotFactor, 1.0), ("hot_expert_fraction", HotFraction, 0.1),
    ("mla_decode", MlaDecodeOpt, "absorbed"), ("dequant_ops", DequantOps, None),
    ("kv_dequant_ops", KvDequantOps, None), ("act_quant", ActQuant, None),
]


def with_deployment(*, defaults: dict[str, Any] | None = None, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Add the deployment flags a command does not declare itself (nor ``exclude``s); the command receives
    their values as ``deployment`` (API keywords). ``defaults`` changes a flag's default for this command."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "deployment"]
        taken = {p.name for p in own}
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                   default=(defaults or {}).get(name, default))
                 for name, annotation, default in DEPLOYMENT_FLAGS if name not in taken and name not in exclude]

        @wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            chosen = {p.name: kwargs.pop(p.name) for p in added}
            chosen["kernel_overhead_s"] = chosen.pop("kernel_overhead", None)
            if "step_overhead" in chosen:
                chosen["step_overhead_s"] = chosen.pop("step_overhead")
            return fn(*args, deployment=chosen, **kwargs)

        keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        command.__signature__ = signature.replace(parameters=[*keyword_only, *added])  # type: ignore[attr-defined]
        return command  # type: ignore[return-value]

    return decorate
