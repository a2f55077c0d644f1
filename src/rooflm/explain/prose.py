"""Reports → plain words: the regime of a step, what binds, and the levers ranked by predicted gain.

Every number in the prose comes from a Report, a CriticalBatch or a lever's own analysis; this
module computes no physics. Levers are evaluated by running the same analysis with one thing changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from typing_extensions import Unpack

from rooflm import units
from rooflm.analyses.analyze import LEVER_SCHEMES, analyze, lighter_schemes
from rooflm.analyses.critical import CriticalBatch, critical_batch
from rooflm.analyses.regimes import Regimes, regimes
from rooflm.analyses.report import Report
from rooflm.core.inputs import Deployment, realistic
from rooflm.core.memory import overflow_text, parts_text
from rooflm.errors import RooflmError
from rooflm.explain.regimes import CpuComparison, comparison_lines, cpu_comparison, regime_lines
from rooflm.specs.hardware import HardwareSpec, Link, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import load_scheme
from rooflm.units import mode_label

# Below this share of the bandwidth, decode attention's time is mostly its kernels' fixed cost (explain says so).
FIXED_COST_SHARE = 0.5
CLASS_NAMES = {"weight_gemm": "weight GEMMs", "attention": "attention (KV cache)", "expert": "MoE experts",
               "communication": "communication", "other": "norms and element-wise ops", "overhead": "launch overhead"}



def _flag(keyword: str) -> str:
    """A keyword as `rooflm explain`'s reader types it: the command line's flag (``kv_dtype`` → ``--kv-dtype``)."""
    return "--" + keyword.replace("_", "-")

@dataclass(frozen=True)
class ClassRegime:
    op_class: str
    time_s: float
    share: float
    bound: str
    arithmetic_intensity: float | None


@dataclass(frozen=True)
class Lever:
    lever: str
    change: dict[str, object]  # the API keywords changed ({"batch": 16}); empty for a what-if of the device
    time_s: float
    tokens_per_s: float
    speedup: float  # step time now / step time with the change (latency)
    throughput_gain: float  # tokens/s with the change / tokens/s now
    fits: bool
    note: str = ""
    what_if: str = ""  # a change no keyword makes (links twice as fast)
    # Decode: the speed-up on a whole request with the change (prefill of the prompt + the decode steps, analyze's
    # e2e phase), as `rooflm quant` gives it beside its decode steps; None for a prefill or e2e step.
    request_speedup: float | None = None

    def change_text(self) -> str:
        """The change as `rooflm explain`'s reader types it (``--batch 16``), or the what-if in words."""
        return " ".join(f"{_flag(k)} {v}" for k, v in self.change.items()) or self.what_if


@dataclass(frozen=True)
class Explanation:
    report: Report
    critical: CriticalBatch | None
    regimes: list[ClassRegime]
    attention_intensity_at_double_batch: float | None
    levers: list[Lever] = field(default_factory=list)
    regime_table: Regimes | None = None  # the rule of thumb's regimes for this model, device and scheme (rooflm regimes)
    cpu_vs_gpu: CpuComparison | None = None  # on a CPU: what int4 buys there and on a GPU
    # Decode attention's achieved DRAM bandwidth as a share of the device's: low where each kernel's fixed cost
    # (calibrated mode's attention-decode curve) outweighs the KV it moves. None without decode attention.
    attention_bandwidth_share: float | None = None

    def to_json_dict(self) -> dict[str, object]:
        r = self.report
        return {
            "model": r.model, "hardware": r.hardware, "phase": r.phase, "batch": r.batch, "context": r.context,
            "quant": r.quant, "efficiency": r.efficiency,
            "profile": None if r.profile is None else r.profile.model_dump(),
            "layout": r.layout.label, "time_s": r.totals.time_s, "bound": r.totals.bound,
            "tokens_per_s": r.totals.tokens_per_s, "arithmetic_intensity": r.totals.arithmetic_intensity,
            "ridge_intensity": r.totals.ridge_intensity,
            "critical_batch": None if self.critical is None else self.critical.critical_batch_unconstrained,
            "expert_critical_batch": None if self.critical is None else self.critical.expert_critical_batch,
            "max_batch": r.memory.max_batch, "fits": r.memory.fits,
            "memory_suggestions": [s.model_dump() for s in r.memory.suggestions],
            "regimes": [asdict(x) for x in self.regimes],
            "attention_intensity_at_double_batch": self.attention_intensity_at_double_batch,
            "attention_bandwidth_share": self.attention_bandwidth_share,
            "moe": None if r.moe is None else r.moe.model_dump(),
            "levers": [asdict(x) for x in self.levers],
            "regime_table": None if self.regime_table is None else self.regime_table.to_json_dict()["regimes"],
            "cpu_vs_gpu": None if self.cpu_vs_gpu is None else self.cpu_vs_gpu.to_json_dict(),
            "markdown": self.to_markdown(),
        }

    def to_markdown(self) -> str:
        return "\n".join(_markdown(self))


def _regimes(r: Report) -> list[ClassRegime]:
    out = []
    for cls, t in r.totals.time_by_class.items():
        ops = [o for o in r.operators if o.op_class == cls]
        if t <= 0 or not ops:
            continue
        by_bound: dict[str, float] = {}
        for o in ops:
            by_bound[o.bound] = by_bound.get(o.bound, 0.0) + o.time_s
        flops, nbytes = sum(o.flops for o in ops), sum(o.bytes for o in ops)
        out.append(ClassRegime(cls, t, t / r.totals.time_s, max(by_bound, key=by_bound.get),  # type: ignore[arg-type]
                               flops / nbytes if nbytes else None))
    if r.totals.overhead_time_s:
        out.append(ClassRegime("overhead", r.totals.overhead_time_s, r.totals.overhead_time_s / r.totals.time_s,
                               "overhead", None))
    return sorted(out, key=lambda x: -x.time_s)


def _attention_bandwidth_share(r: Report, hw: HardwareSpec) -> float | None:
    """Decode attention's KV and activation bytes over its memory time, as a share of the device's bandwidth."""
    ops = [o for o in r.operators if o.kind == "attention"]
    seconds = sum(o.memory_time_s for o in ops)
    if r.phase != "decode" or not seconds:
        return None
    return sum(o.bytes for o in ops) / seconds / hw.memory_bandwidth.value


def _attention_ai(r: Report) -> float | None:
    ops = [o for o in r.operators if o.kind == "attention"]
    nbytes = sum(o.bytes for o in ops)
    return sum(o.flops for o in ops) / nbytes if nbytes else None


def _lever(name: str, change: dict[str, object], now: Report, new: Report, note: str = "", what_if: str = "") -> Lever:
    t = new.totals
    return Lever(name, change, t.time_s, t.tokens_per_s, now.totals.time_s / t.time_s,
                 t.tokens_per_s / now.totals.tokens_per_s, new.memory.fits, note, what_if)


def _faster_links(hw: HardwareSpec, factor: float) -> HardwareSpec:
    def better(link: Link | None) -> Link | None:
        if link is None:
            return None
        return link.model_copy(update={
            "bandwidth": link.bandwidth.model_copy(update={"value": link.bandwidth.value * factor}),
            "latency": link.latency.model_copy(update={"value": link.latency.value / factor})})

    ic = hw.interconnect
    return hw.model_copy(update={"interconnect": ic.model_copy(update={
        "intra_node": better(ic.intra_node), "inter_node": better(ic.inter_node)})})


def _levers(now: Report, run: dict[str, object], cb: CriticalBatch | None) -> list[Lever]:
    """Each lever: the same workload with one change, analysed; ranked by throughput gain."""
    levers: list[Lever] = []
    base = dict(run)
    deployment = dict(base.pop("deployment"))  # type: ignore[call-overload]

    whole: dict[str, float] = {}  # the whole request's time now, computed once

    def request_time(args: dict[str, object], dep: dict[str, object]) -> float:
        return analyze(**{**args, "phase": "e2e"}, **dep).totals.time_s  # type: ignore[arg-type]

    def attempt(name: str, note: str = "", what_if: str = "", **override: object) -> None:
        args = {**base, **{k: v for k, v in override.items() if k in base}}
        dep = {**deployment, **{k: v for k, v in override.items() if k not in base}}
        try:
            new = analyze(**args, **dep)  # type: ignore[arg-type]
            if now.phase == "decode" and "now" not in whole:
                whole["now"] = request_time(base, deployment)
            on_request = whole["now"] / request_time(args, dep) if now.phase == "decode" else None
        except RooflmError:
            return
        change = {} if what_if else dict(override)  # a what-if overrides the device itself, no keyword
        levers.append(replace(_lever(name, change, now, new, note, what_if), request_speedup=on_request))

    if now.phase == "decode":
        target = now.batch * 2
        if cb and cb.critical_batch_unconstrained and now.batch < cb.critical_batch_unconstrained:
            target = min(cb.critical_batch_unconstrained, max(now.memory.max_batch, 1))
        target = min(target, max(now.memory.max_batch, 1)) if now.memory.max_batch else target
        if target > now.batch:
            attempt("bigger batch", "more tokens per step; each sequence waits as long as a step", batch=target)
    hw = run["hardware"]
    assert isinstance(hw, HardwareSpec)  # explain() resolves it once: a file's name is not a catalog name
    spec = run["model"]
    assert isinstance(spec, ModelSpec)
    # As analyze resolves it: no --quant is the checkpoint's own scheme (bf16 for a model without one).
    current = load_scheme(deployment.get("quant") or "native", deployment.get("kv_dtype"), spec)
    for scheme, _ in lighter_schemes(LEVER_SCHEMES, current, hw, spec):
        attempt("weight quantization", quant=scheme)
    if current.kv_bytes > 1:
        attempt("KV-cache quantization", kv_dtype="fp8")
    lay = now.layout
    if lay.ep > 1:
        attempt("more expert parallelism", "twice the devices, the same batch per device", dp=lay.dp * 2,
                ep=lay.ep * 2, batch=now.batch * 2)
    else:
        attempt("more tensor parallelism", "twice the devices for the same batch", tp=lay.tp * 2)
    if now.totals.comm_time_s > 0:
        attempt("faster interconnect", "a what-if, not a product", "links 2× faster (bandwidth ×2, latency ÷2)",
                hardware=_faster_links(hw, 2.0))
    best: dict[str, Lever] = {}
    for lv in levers:
        if lv.lever not in best or lv.throughput_gain > best[lv.lever].throughput_gain:
            best[lv.lever] = lv
    return sorted([*best.values(), *_best_on_requests(levers, best)], key=lambda lv: -lv.throughput_gain)


def _best_on_requests(levers: list[Lever], best: dict[str, Lever]) -> list[Lever]:
    """The scheme fastest on whole requests where it is not the one fastest on decode steps (its prefill is slow,
    as `rooflm quant` says too): a lever of its own, so that the ranking by steps does not hide it."""
    schemes = [lv for lv in levers if lv.lever == "weight quantization" and lv.request_speedup is not None]
    if not schemes:
        return []
    on_request = max(schemes, key=lambda lv: lv.request_speedup or 0.0)
    on_steps = best["weight quantization"]
    if on_request is on_steps:
        return []
    return [replace(on_request, lever="weight quantization, whole requests",
                    note=f"faster than {on_steps.change_text()} on a whole request ({on_request.request_speedup:.2f}× "
                         f"against {on_steps.request_speedup:.2f}×: the other's prefill is slower), though slower on "
                         "decode steps: compare both under a traffic with `rooflm serving`")]


def explain(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
            phase: str = "decode", batch: int = 1, prompt_len: int = 1024, context: int | None = None,
            gen_len: int = 256, **deployment: Unpack[Deployment]) -> Explanation:
    """The step in words, in calibrated mode unless ``efficiency`` says otherwise (what an engine reaches)."""
    deployment = realistic(deployment)
    # Resolved once, so every lever's analysis runs on the same device and model, whether they were given by
    # name, as a file or as a spec (a file's device is not in the catalog under its own name).
    model, hardware = load_model(model), load_hardware(hardware)
    r = analyze(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context, gen_len=gen_len,
                **deployment)
    cb = critical_batch(model, hardware, context=r.context, **deployment) if phase == "decode" else None
    double = None
    if phase == "decode":
        double = _attention_ai(analyze(model, hardware, phase=phase, batch=batch * 2, prompt_len=prompt_len,
                                       context=context, gen_len=gen_len, **deployment))
    run = {"model": model, "hardware": hardware, "phase": phase, "batch": batch, "prompt_len": prompt_len,
           "context": context, "gen_len": gen_len, "deployment": deployment}
    return Explanation(r, cb, _regimes(r), double, _levers(r, run, cb), _regime_table(model, hardware, deployment),
                       cpu_comparison(model, hardware, dict(deployment)), _attention_bandwidth_share(r, hardware))


def _regime_table(model: ModelSpec, hardware: HardwareSpec, deployment: Deployment) -> Regimes | None:
    try:
        return regimes(model, hardware, **deployment)
    except RooflmError:  # a layout or scheme one of the regimes' workloads cannot run: the section is left out
        return None


def _markdown(e: Explanation) -> list[str]:
    r, t = e.report, e.report.totals
    where = r.hardware if r.layout.devices == 1 else f"{r.layout.devices}× {r.hardware} ({r.layout.label})"
    step = {"decode": f"one decode step of batch {r.batch} at context {r.context}",
            "prefill": f"a prefill of {r.batch} × {r.prompt_len} tokens",
            "e2e": f"{r.batch} requests of {r.prompt_len} + {r.gen_len} tokens"}[r.phase]
    lines = [f"# {r.model} on {where}: {step}, {r.quant} ({mode_label(r.efficiency, r.engine_kernels)})", ""]
    if r.profile is not None:
        lines += [f"Predicted with the profile `{r.profile.name}` (fitted on data with SHA-256 "
                  f"`{r.profile.data_sha256 or 'unknown'}`).", ""]
    lines.append(f"**{units.seconds(t.time_s)}**, {units.rate(t.tokens_per_s, 'tokens/s')}, bound by **{t.bound}**. "
                 f"The step does {units.flops(t.flops)} on {units.nbytes(t.bytes)}: an arithmetic intensity of "
                 f"{t.arithmetic_intensity:.3g} FLOP/byte against a ridge of {t.ridge_intensity:.4g} "
                 f"({'below' if t.arithmetic_intensity < t.ridge_intensity else 'above'} it).")
    lines += ["", "## Where the time goes", ""]
    for g in e.regimes:
        ai = "" if g.arithmetic_intensity is None else f", {g.arithmetic_intensity:.3g} FLOP/byte"
        lines.append(f"- {CLASS_NAMES.get(g.op_class, g.op_class)}: {units.seconds(g.time_s)} "
                     f"({g.share:.0%}), {g.bound}-bound{ai}")
    lines += ["", "## Why", ""]
    lines += _why(e)
    if e.levers:
        lines += ["", "## Levers, by predicted gain", "",
                  "| lever | change | step time | latency | throughput | whole request | fits |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for lv in e.levers:
            whole = "–" if lv.request_speedup is None else f"{lv.request_speedup:.2f}×"
            lines.append(f"| {lv.lever} | `{lv.change_text()}` | {units.seconds(lv.time_s)} | {lv.speedup:.2f}× | "
                         f"{lv.throughput_gain:.2f}× | {whole} | {'yes' if lv.fits else 'no'} |")
        for lv in e.levers:
            if lv.lever.endswith("whole requests"):
                lines += ["", f"{lv.lever}: {lv.note}."]
        if any(lv.request_speedup is not None for lv in e.levers):
            lines += ["", "\"whole request\": the speed-up of a request's prefill and all its decode steps "
                         "(`rooflm analyze --phase e2e`); the other columns weigh one decode step."]
    if e.regime_table is not None:
        lines += ["", "## The regimes of this model here (`rooflm regimes`)", "", *regime_lines(e.regime_table)]
    if e.cpu_vs_gpu is not None:
        lines += ["", f"## Weight quantization on this CPU, next to {e.cpu_vs_gpu.gpu.hardware}", "",
                  *comparison_lines(e.cpu_vs_gpu)]
    m = r.memory
    parts = (m.weights_bytes, m.kv_cache_bytes, m.activation_bytes, m.capacity_bytes)
    short = overflow_text(*parts, state=m.state_bytes)
    verdict = "fits" if m.fits else f"**does not fit**, {units.nbytes(m.shortfall_bytes)} short: {short}"
    lines += ["", "## Memory", "",
              f"Per device, {parts_text(*parts, state=m.state_bytes)}: {verdict}; the largest batch at this context "
              f"is {m.max_batch}."]
    if suggestions := m.suggestion_lines(_flag):
        lines.append("It would fit with: " + "; ".join(f"`{s}`" for s in suggestions) + ".")
    return lines


def _why(e: Explanation) -> list[str]:
    r, t, cb = e.report, e.report.totals, e.critical
    out: list[str] = []
    gemms = [o for o in r.operators if o.op_class == "weight_gemm"]
    if gemms and r.phase == "decode":
        ai = sum(o.flops for o in gemms) / sum(o.bytes for o in gemms)
        out.append(f"- Decode reads every weight once per step whatever the batch, so the weight GEMMs' intensity "
                   f"grows with the batch: {ai:.3g} FLOP/byte at batch {r.batch}.")
        if cb and cb.critical_batch_unconstrained:
            ratio = r.batch / cb.critical_batch_unconstrained
            reach = ("within" if cb.critical_batch is not None else "beyond") + f" the memory limit of batch {cb.max_batch}"
            out.append(f"- They cross the ridge ({t.ridge_intensity:.4g} FLOP/byte) at the critical batch "
                       f"{cb.critical_batch_unconstrained}, {reach}; this batch is {ratio:.2g}× of it, so the "
                       f"weight GEMMs are {'compute' if ratio >= 1 else 'memory'}-bound and "
                       + ("saved weight bytes buy little time here." if ratio >= 1 else
                          "weight quantization pays about in proportion to the bytes it saves."))
    attn = _attention_ai(r)
    if attn is not None and r.phase == "decode":
        if r.moe is None and e.attention_intensity_at_double_batch is not None:
            out.append(f"- Decode attention reads each sequence's own KV cache: {attn:.3g} FLOP/byte at batch "
                       f"{r.batch} and {e.attention_intensity_at_double_batch:.3g} at batch {r.batch * 2}. Batching "
                       "does not raise it, so long contexts stay KV-bandwidth-bound; a smaller KV dtype helps there, "
                       "weight quantization does not.")
        else:
            out.append(f"- Decode attention runs at {attn:.3g} FLOP/byte whatever the batch; only the KV dtype moves it.")
        share, attention_s = e.attention_bandwidth_share, sum(o.time_s for o in r.operators if o.kind == "attention")
        if share is not None and share < FIXED_COST_SHARE and attention_s >= 0.05 * t.time_s:
            out.append(f"- Here decode attention moves its KV at only {share:.0%} of the memory bandwidth: each of its "
                       "kernels has a fixed cost (partial results per KV split and their merge, page-table walks) that "
                       "this little KV cannot hide. More sequences or longer contexts amortise it; `rooflm hardware "
                       "show` gives the fixed cost per device class.")
        if any(o.name == "indexer" for o in r.operators):
            out.append("- DeepSeek sparse attention: a lightning indexer scores every cached token and attention reads "
                       "only the top-k it selects, so decode attention no longer grows with context beyond top-k; "
                       "the indexer's own small key cache (one fp8 key per token) is what still does.")
        if any(o.name == "linear_attn.recurrence" for o in r.operators):
            out.append("- The linear-attention layers read and write one fixed state per sequence each step: their "
                       "cost grows with the batch, not with the context.")
        if any(o.name == "attention_latent" for o in r.operators):
            out.append("- MLA caches one compressed latent per token shared by all heads, and the absorbed form "
                       f"attends in that latent space: {attn:.3g} FLOP/byte, far above GQA's query-per-KV-head ratio.")
    if r.moe and cb:
        mo = r.moe
        crossing = (f"they turn compute-bound at a global batch of {cb.expert_critical_batch}"
                    if cb.expert_critical_batch else "they never turn compute-bound")
        out.append(f"- The {mo.tokens_per_step:.4g} tokens routed this step (top-{mo.top_k} of {mo.num_experts}) hit "
                   f"{mo.distinct_experts:.4g} experts, each seeing {mo.tokens_per_expert:.3g} tokens: the experts' "
                   f"GEMMs see ≈ B·k/E of the batch, so {crossing}, about E/k = {mo.num_experts / mo.top_k:.3g}× "
                   "later than a dense layer of the same shape.")
        if r.layout.ep > 1:
            out.append(f"- Expert parallelism over {r.layout.ep} devices pools the tokens of every replica into each "
                       "MoE layer and frees memory for KV cache, so the global batch can grow until the experts are "
                       "compute-bound; that, not the experts becoming more memory-bound, is what shrinks the "
                       "benefit of int4 weights at large EP.")
    if t.comm_time_s:
        out.append(f"- Communication takes {units.seconds(t.comm_time_s)} ({t.comm_time_s / t.time_s:.0%} of the step) "
                   f"on the links of {r.layout.label}.")
    if t.overhead_time_s:
        out.append(f"- Kernel launches add {units.seconds(t.overhead_time_s)} ({t.overhead_time_s / t.time_s:.0%}).")
    return out
