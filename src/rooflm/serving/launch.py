"""Launch and benchmark commands of a planned deployment for a serving engine (vLLM, SGLang, TensorRT-LLM).

The flag names live in data/engines.toml with the engine version and documentation they were checked against;
this module shapes a configuration into argv lists (nothing is shell-quoted here: the CLI renders) and notes for
what no flag sets. The benchmark is the engine's own client at the planned load (random prompts of the planned
lengths, EOS ignored, every result saved to a file that `rooflm fit` reads).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rooflm.core.inputs import GPU_MEMORY_UTILIZATION, MAX_NUM_BATCHED_TOKENS, Deployment
from rooflm.errors import InvalidInputError, quoted
from rooflm.serving.disagg import parse_split
from rooflm.serving.plan_result import PlanPoint, Traffic
from rooflm.serving.traffic import Lengths, parse_lengths
from rooflm.specs.hf_config import catalog_repo
from rooflm.specs.model import ModelSpec

ENGINES_FILE = Path(__file__).resolve().parent.parent / "data" / "engines.toml"
ENGINES: tuple[str, ...] = ("vllm", "sglang", "trtllm")
# serve_traffic's default engine limit (vLLM's max_num_seqs default)
DEFAULT_MAX_RUNNING = 256
# Prompts per benchmark run: ten per user, so the first wave (every user starting at once into an empty engine)
# is a tenth of the run; at least 100. An open-loop run lasts about RATE_SECONDS of arrivals.
WAVES = 10
MIN_PROMPTS = 100
RATE_SECONDS = 120
# Schemes that are the checkpoint's own precision or 16-bit math: nothing to quantize.
_NATIVE = (None, "native")
_SIXTEEN_BIT = ("bf16", "fp16")


@dataclass(frozen=True)
class Load:
    kind: str  # "concurrency" (closed-loop users) | "request_rate" (Poisson arrivals, requests/s)
    value: float


@dataclass(frozen=True)
class LaunchConfig:
    """One deployment as an engine needs it: the model to download, the layout of one engine instance, the
    engine limits and the traffic the benchmark replays."""

    model: str  # a Hugging Face repo id, or a local checkpoint folder
    prompt_len: Lengths
    gen_len: Lengths
    loads: tuple[Load, ...]
    tp: int = 1
    ep: int = 1
    pp: int = 1
    dp: int = 1
    quant: str | None = None  # rooflm's scheme name; None or "native": the checkpoint's own
    kv_dtype: str | None = None  # None: the model's dtype
    spec_tokens: int = 0
    draft: str | None = None  # "mtp", a draft model (repo id or folder), or None: n-gram lookup
    max_running: int = DEFAULT_MAX_RUNNING
    max_tokens_per_step: int = MAX_NUM_BATCHED_TOKENS
    memory_fraction: float = GPU_MEMORY_UTILIZATION
    disaggregate: tuple[int, int] | None = None  # (prefill, decode) replicas of tp × pp devices

    @property
    def max_model_len(self) -> int:
        """The longest request: the longest prompt plus the longest output."""
        return self.prompt_len.upper + self.gen_len.upper


@dataclass(frozen=True)
class Launch:
    engine: str
    version_checked: str
    sources: list[str]
    serve: list[list[str]]  # one argv per engine instance kind (two when prefill and decode run apart)
    benchmark: list[list[str]]  # one argv per load
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # file name → text the serve command reads

    def to_json_dict(self) -> dict[str, object]:
        return {"engine": self.engine, "version_checked": self.version_checked, "sources": list(self.sources),
                "serve": [list(a) for a in self.serve], "benchmark": [list(a) for a in self.benchmark],
                "files": dict(self.files), "notes": list(self.notes)}


@lru_cache(maxsize=1)
def engines() -> dict[str, dict[str, Any]]:
    with ENGINES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def check_engine(engine: str) -> str:
    name = engine.strip().lower()
    if name not in ENGINES:
        raise InvalidInputError(f"--emit {quoted(engine)} is not an engine rooflm writes commands for: choose "
                                f"{' | '.join(ENGINES)}", field="emit")
    return name


def model_argument(model: str | Path | ModelSpec) -> str:
    """What the engine loads: the catalog's Hugging Face repo id, else the folder of the config.json given (an
    engine loads a checkpoint folder, not its config file)."""
    if isinstance(model, ModelSpec):
        path = getattr(model, "path", None)  # a spec read from a file keeps where it came from, if anywhere
        model = path if path is not None else model.name
    text = str(model)
    repo = catalog_repo(text)
    if repo is not None:
        return repo
    path = Path(text)
    return str(path.parent) if path.suffix == ".json" else text


def _mean(lengths: Lengths) -> int:
    if lengths.kind == "uniform":
        return round((lengths.a + lengths.b) / 2)
    return round(lengths.a)  # fixed: the value; normal, lognormal: the mean


def _draft_argument(model: object, draft: object, k: int) -> str | None:
    """The draft as the launch writes it: "mtp", a model argument, or None for n-gram lookup — the default being the
    checkpoint's MTP head where it has one, as rooflm prices it (rooflm.core.speculation)."""
    kind = str(draft).strip().lower() if isinstance(draft, str) else None
    if draft is None and k > 0:
        from rooflm.specs.hf_config import load_model  # at first use: only a speculative launch reads the config

        return "mtp" if load_model(model).mtp_layers else None  # type: ignore[arg-type]
    if draft is None or kind == "ngram":
        return None
    return "mtp" if kind == "mtp" else model_argument(str(draft))


def config(model: str | Path | ModelSpec, *, prompt_len: str | int | Lengths, gen_len: str | int | Lengths,
           concurrency: Sequence[int] | None = None, request_rate: Sequence[float] | None = None,
           max_running: int | None = None, max_tokens_per_step: int | None = None,
           disaggregate: str | None = None, deployment: Deployment | None = None) -> LaunchConfig:
    """A LaunchConfig from the keywords `rooflm serving` and `rooflm plan` take."""
    d: dict[str, Any] = dict(deployment or {})
    prompt = prompt_len if isinstance(prompt_len, Lengths) else parse_lengths(prompt_len, "prompt_len")
    gen = gen_len if isinstance(gen_len, Lengths) else parse_lengths(gen_len, "gen_len")
    loads = tuple([Load("concurrency", float(c)) for c in concurrency or ()]
                  + [Load("request_rate", float(r)) for r in request_rate or ()])
    split = parse_split(disaggregate)
    draft = _draft_argument(model, d.get("draft"), int(d.get("spec_tokens") or 0))
    quant = d.get("quant")
    return LaunchConfig(
        model=model_argument(model), prompt_len=prompt, gen_len=gen, loads=loads,
        tp=int(d.get("tp") or 1), ep=int(d.get("ep") or 1), pp=int(d.get("pp") or 1), dp=int(d.get("dp") or 1),
        quant=None if quant is None else str(getattr(quant, "name", quant)),
        kv_dtype=d.get("kv_dtype"), spec_tokens=int(d.get("spec_tokens") or 0),
        draft=draft,
        max_running=DEFAULT_MAX_RUNNING if max_running is None else max_running,
        max_tokens_per_step=int(max_tokens_per_step or d.get("max_num_batched_tokens") or MAX_NUM_BATCHED_TOKENS),
        memory_fraction=float(d.get("gpu_memory_utilization") or GPU_MEMORY_UTILIZATION),
        disaggregate=None if split is None else (split.prefill, split.decode))


def plan_config(model: str | Path | ModelSpec, traffic: Traffic, point: PlanPoint,
                deployment: Deployment | None = None) -> LaunchConfig:
    """The LaunchConfig of one point of `rooflm plan` (its searched settings over the deployment keywords)."""
    p = point.config
    d: dict[str, Any] = {**(deployment or {}), **{k: p[k] for k in ("tp", "ep", "pp", "dp", "quant", "kv_dtype",
                                                                     "spec_tokens") if p.get(k) is not None}}
    return config(model, prompt_len=traffic.prompt, gen_len=traffic.gen, concurrency=[int(p["concurrency"] or 1)],
                  max_running=int(p["max_running"] or DEFAULT_MAX_RUNNING),
                  max_tokens_per_step=int(p["max_num_batched_tokens"] or MAX_NUM_BATCHED_TOKENS),
                  disaggregate=None if p.get("disaggregate") is None else str(p["disaggregate"]),
                  deployment=d)  # type: ignore[arg-type]


def launch(engine: str, c: LaunchConfig) -> Launch:
    """The engine's serve command(s), its benchmark command per load, and notes for what no flag sets."""
    name = check_engine(engine)
    spec = engines()[name]
    notes: list[str] = []
    files: dict[str, str] = {}
    serve = _SERVE[name](spec, c, notes, files)
    notes += _length_notes(c)
    if c.spec_tokens:
        notes.append(f"spec-tokens {c.spec_tokens}: the acceptance rate rooflm assumed is not an engine setting; "
                     "the engine's speculative-decoding metrics report the one it reaches")
    bench = [_bench(name, spec, c, load) for load in c.loads]
    if not bench:
        notes.append("no load given: add --concurrency or --request-rate for a benchmark command")
    return Launch(name, str(spec["version_checked"]), list(spec["sources"]), serve, bench, notes, files)


def _fraction(x: float) -> str:
    return f"{x:g}"


def _quant(spec: dict[str, Any], c: LaunchConfig, engine: str, notes: list[str]) -> list[str]:
    """--quantization where the engine quantizes on load, --dtype for 16-bit, else a note: the scheme needs a
    checkpoint already quantized to it (the engine reads its quantization_config)."""
    flags = spec["flags"]
    if c.quant in _NATIVE:
        return []
    if c.quant in spec.get("quant", {}):
        return [flags["quant"], spec["quant"][c.quant]]
    if c.quant in spec.get("dtypes", {}) and "dtype" in flags:
        return [flags["dtype"], spec["dtypes"][c.quant]]
    notes.append(f"quant {c.quant}: {engine} has no flag that quantizes to it on load; serve a checkpoint already "
                 f"quantized to {c.quant} in place of {c.model} (its quantization_config is read as it is)")
    return []


def _kv(spec: dict[str, Any], c: LaunchConfig, engine: str, notes: list[str]) -> str | None:
    if c.kv_dtype is None:
        return None
    value = spec["kv_dtypes"].get(c.kv_dtype)
    if value is None:
        notes.append(f"kv-dtype {c.kv_dtype}: {engine} has no KV cache of this dtype; the nearest it has is fp8")
    return value


def _vllm(spec: dict[str, Any], c: LaunchConfig, notes: list[str], files: dict[str, str]) -> list[list[str]]:
    f = spec["flags"]
    argv = [*spec["serve"], c.model, f["tp"], str(c.tp)]
    if c.pp > 1:
        argv += [f["pp"], str(c.pp)]
    if c.dp > 1 and c.disaggregate is None:
        argv += [f["dp"], str(c.dp)]
    if c.ep > 1:
        argv.append(f["ep"])
        if c.ep != c.tp * (1 if c.disaggregate else c.dp):
            notes.append(f"ep {c.ep}: vLLM spreads the experts over tp × dp = {c.tp * c.dp} devices")
    argv += _quant(spec, c, "vLLM", notes)
    kv = _kv(spec, c, "vLLM", notes)
    if kv is not None:
        argv += [f["kv_dtype"], kv]
    argv += [f["max_running"], str(c.max_running), f["max_tokens_per_step"], str(c.max_tokens_per_step),
             f["memory_fraction"], _fraction(c.memory_fraction), f["max_model_len"], str(c.max_model_len)]
    if c.spec_tokens:
        method: dict[str, object] = ({"method": "mtp"} if c.draft == "mtp" else {"method": "ngram"} if c.draft is None
                                     else {"method": "draft_model", "model": c.draft})
        argv += [f["speculative"], json.dumps({**method, "num_speculative_tokens": c.spec_tokens},
                                              separators=(",", ":"))]
    if c.disaggregate is not None:
        p, d = c.disaggregate
        notes.append(f"disaggregate {p}P:{d}D: vLLM runs prefill and decode instances apart only with a KV connector "
                     "(--kv-transfer-config, e.g. NixlConnector, kv_role kv_producer / kv_consumer) and a proxy that "
                     f"sends each request to a prefill then a decode instance; set them by hand: {p} prefill and {d} "
                     "decode instances of the command above, the benchmark aimed at the proxy")
    return [argv]


def _sglang_layout(f: dict[str, str], c: LaunchConfig) -> list[str]:
    """tp, dp, ep as SGLang reads them: experts spread over tp × dp replicas is its DP attention (attention
    data-parallel inside one tp × dp group, the experts over all of it)."""
    dp = 1 if c.disaggregate else c.dp
    if dp > 1 and c.ep == c.tp * dp and c.ep > 1:
        return [f["tp"], str(c.tp * dp), f["dp"], str(dp), f["dp_attention"], f["ep"], str(c.ep)]
    argv = [f["tp"], str(c.tp)]
    if dp > 1:
        argv += [f["dp"], str(dp)]
    if c.ep > 1:
        argv += [f["ep"], str(c.ep)]
    return argv


def _sglang(spec: dict[str, Any], c: LaunchConfig, notes: list[str], files: dict[str, str]) -> list[list[str]]:
    f = spec["flags"]
    argv = [*spec["serve"], spec["model_flag"], c.model, *_sglang_layout(f, c)]
    if c.pp > 1:
        argv += [f["pp"], str(c.pp)]
    argv += _quant(spec, c, "SGLang", notes)
    kv = _kv(spec, c, "SGLang", notes)
    if kv is not None:
        argv += [f["kv_dtype"], kv]
    argv += [f["max_running"], str(c.max_running), f["max_tokens_per_step"], str(c.max_tokens_per_step),
             f["memory_fraction"], _fraction(c.memory_fraction), f["max_model_len"], str(c.max_model_len)]
    if c.spec_tokens:
        kind = "mtp" if c.draft == "mtp" else "ngram" if c.draft is None else "draft"
        argv += [f["spec_algorithm"], spec["spec_algorithms"][kind]]
        if kind == "draft":
            argv += [f["spec_draft_model"], str(c.draft)]
        if kind != "ngram":  # a chain of k drafted tokens: k steps, one candidate each
            argv += [f["spec_steps"], str(c.spec_tokens), f["spec_topk"], "1"]
        argv += [f["spec_draft_tokens"], str(c.spec_tokens + 1)]
    if c.disaggregate is None:
        return [argv]
    p, d = c.disaggregate
    notes.append(f"disaggregate {p}P:{d}D: run the prefill command on {p} and the decode command on {d} groups of "
                 f"{c.tp * c.pp} GPUs (each its own --port), then the router in front of them: python -m "
                 "sglang_router.launch_router --pd-disaggregation --prefill URL … --decode URL …; aim the benchmark "
                 "at the router")
    return [[*argv, f["disaggregation"], "prefill"], [*argv, f["disaggregation"], "decode"]]


def _yaml(tree: dict[str, object], indent: int = 0) -> str:
    """A small YAML writer for the options file: nested mappings of scalars."""
    lines: list[str] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{' ' * indent}{key}:")
            lines.append(_yaml(value, indent + 2).rstrip("\n"))
        else:
            text = str(value).lower() if isinstance(value, bool) else json.dumps(value) if isinstance(value, str) \
                else str(value)
            lines.append(f"{' ' * indent}{key}: {text}")
    return "\n".join(lines) + "\n"


def _trtllm_options(spec: dict[str, Any], c: LaunchConfig, notes: list[str]) -> dict[str, object]:
    options: dict[str, object] = {"enable_chunked_prefill": True}  # prefills in chunks of the token budget
    kv = _kv(spec, c, "TensorRT-LLM", notes)
    if kv is not None:
        options["kv_cache_config"] = {"dtype": kv}
    if c.spec_tokens:
        if c.draft == "mtp":
            options["speculative_config"] = {"decoding_type": "MTP", "num_nextn_predict_layers": c.spec_tokens}
        elif c.draft is None:
            options["speculative_config"] = {"decoding_type": "NGram", "max_draft_len": c.spec_tokens}
        else:
            options["speculative_config"] = {"decoding_type": "DraftTarget", "max_draft_len": c.spec_tokens,
                                             "speculative_model_dir": c.draft}
    return options


def _trtllm(spec: dict[str, Any], c: LaunchConfig, notes: list[str], files: dict[str, str]) -> list[list[str]]:
    f = spec["flags"]
    options = _trtllm_options(spec, c, notes)
    dp = 1 if c.disaggregate else c.dp
    tp, ep = c.tp, c.ep
    if dp > 1 and c.tp == 1 and c.ep == dp:  # attention data-parallel, experts over the dp devices
        tp, options["enable_attention_dp"] = dp, True
    elif dp > 1:
        notes.append(f"dp {dp}: trtllm-serve runs one replica; start {dp} of the command below on disjoint GPUs "
                     "(CUDA_VISIBLE_DEVICES, each its own --port) behind a load balancer, and aim the benchmark at it")
        if ep == c.tp * dp:  # attention data parallelism needs attention tp 1 here: each replica keeps its experts
            ep = c.tp
            notes.append(f"ep {c.ep}: TensorRT-LLM spreads experts over several replicas only with attention data "
                         f"parallelism at tp 1 (enable_attention_dp); each replica spreads them over its own {c.tp}")
    argv = [*spec["serve"], c.model, f["backend"], "pytorch", f["tp"], str(tp)]
    if c.pp > 1:
        argv += [f["pp"], str(c.pp)]
    if ep > 1:
        argv += [f["ep"], str(ep)]
    if c.quant in _SIXTEEN_BIT:
        notes.append(f"quant {c.quant}: trtllm-serve runs a 16-bit checkpoint in its own dtype (no flag)")
    elif c.quant not in _NATIVE:
        notes.append(f"quant {c.quant}: TensorRT-LLM has no flag that quantizes on load; serve a checkpoint "
                     f"quantized to {c.quant} (e.g. by NVIDIA ModelOpt) in place of {c.model}")
    argv += [f["max_running"], str(c.max_running), f["max_tokens_per_step"], str(c.max_tokens_per_step),
             f["max_model_len"], str(c.max_model_len), f["memory_fraction"], _fraction(c.memory_fraction),
             f["options"], spec["options_file"]]
    notes.append(f"memory fraction {_fraction(c.memory_fraction)}: TensorRT-LLM's is a share of the memory left "
                 "after the weights load (rooflm's, like vLLM's, is a share of the whole GPU), so its KV cache is "
                 "larger; lower it to hold rooflm's KV capacity")
    files[spec["options_file"]] = _yaml(options)
    if c.disaggregate is not None:
        p, d = c.disaggregate
        notes.append(f"disaggregate {p}P:{d}D: trtllm-serve runs context and generation servers apart through "
                     f"`trtllm-serve disaggregated -c CONFIG` ({p} context and {d} generation servers of the command "
                     "above, with cache_transceiver_config set); write that config by hand")
    return [argv]


_SERVE = {"vllm": _vllm, "sglang": _sglang, "trtllm": _trtllm}


def _length_notes(c: LaunchConfig) -> list[str]:
    return [f"{name} {lengths.label()}: the benchmark sends {_mean(lengths)} tokens (the mean) every time; replay "
            "a dataset with this distribution to measure it as planned"
            for name, lengths in (("prompt-len", c.prompt_len), ("gen-len", c.gen_len)) if lengths.fixed is None]


def prompts(load: Load) -> int:
    """Prompts in one benchmark run (WAVES per user, or RATE_SECONDS of arrivals), at least MIN_PROMPTS."""
    per = WAVES * load.value if load.kind == "concurrency" else RATE_SECONDS * load.value
    return max(MIN_PROMPTS, math.ceil(per))


def result_name(engine: str, load: Load, suffix: str) -> str:
    tag = f"c{int(load.value)}" if load.kind == "concurrency" else f"r{load.value:g}"
    return f"rooflm-{engine}-{tag}{suffix}"


def _bench(engine: str, spec: dict[str, Any], c: LaunchConfig, load: Load) -> list[str]:
    b = spec["bench"]
    argv = [*b["command"], b["model"], c.model, *b["fixed"], b["input_len"], str(_mean(c.prompt_len)),
            b["output_len"], str(_mean(c.gen_len)), b["prompts"], str(prompts(load))]
    if load.kind == "concurrency":
        argv += [b["concurrency"], str(int(load.value)), b["request_rate"], "inf"]
    else:
        argv += [b["request_rate"], f"{load.value:g}"]
    return [*argv, *b["save"], b["result_file"], result_name(engine, load, b["result_suffix"])]
