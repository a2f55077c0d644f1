"""Fuzz the command line: whatever arguments a user types, `rooflm` answers with its output and exit
status 0, or with one line on stderr starting "error:" and exit status 2. Never a traceback, never status 1.

The argument lists are built from the flags each command really declares (read from the click command typer
builds), so a new flag is fuzzed as soon as it exists: ``test_every_flag_has_a_value_strategy`` fails until it
has an entry in FLAG_VALUES. Set ROOFLM_FUZZ_EXAMPLES=2000 for a long, randomly seeded run; CI runs a short,
derandomized one.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from rooflm.analyses import documents
from rooflm.cli import app
from rooflm.specs.hardware import hardware_names
from rooflm.specs.quant import scheme_names

runner = CliRunner()

_EXAMPLES = os.environ.get("ROOFLM_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_EXAMPLES or 12), deadline=None, derandomize=_EXAMPLES is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------- values

EDGE_INTS = ["0", "-1", "1", "2", "-0", "2147483648", str(2**63), str(10**400), str(-(10**400)), "1_000", " 8", "٣"]
EDGE_FLOATS = ["nan", "-nan", "NaN", "inf", "-inf", "Infinity", "1e308", "1e309", "-1e308", "5e-324", "0", "-0.0",
               "1", "0.5", "1e-300", "0.001", "0.000999", "0x10", "1,5"]
# Text that rich would read as markup or emoji, or that a terminal would act on, and text too long for one line.
MARKUP = ["[red]", "[/]", "[bold red]x[/bold red]", ":x:", ":thumbs_up:", "[link=file:///etc/passwd]a[/link]",
          "\x1b[2J", "\r", "\n", "a\nb", "\t", "\u202e", "ﬁ", "💥", "%s", "{}", "{0}", "$HOME", "*", ".", "..", "/",
          "-", "--", "-x", "x" * 300, "[" * 301, "é" * 400]
# argv cannot carry NUL (the OS ends a C string there), nor a lone surrogate.
ARGV_CHARS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))


def _int_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(EDGE_INTS), st.integers(-10, 70_000).map(str), st.integers().map(str))


def _float_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats().map(repr), st.floats(0, 1).map(repr))


def _junk() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(MARKUP), st.text(ARGV_CHARS, max_size=12), st.text(ARGV_CHARS, min_size=300,
                                                                                         max_size=320))


def _cased(words: list[str]) -> st.SearchStrategy[str]:
    """A valid value as typed, shouted, capitalised or padded."""
    return st.sampled_from(words).flatmap(lambda w: st.sampled_from([w, w.upper(), w.title(), f" {w} ", w.lower()]))


def _axis() -> st.SearchStrategy[str]:
    """A sweep axis in the CLI's syntax; its ranges stay small (the CLI streams sweeps of any size, slowly)."""
    small = st.integers(-2, 64)
    listed = st.lists(small, min_size=1, max_size=4).map(lambda v: ",".join(map(str, v)))
    ranged = st.tuples(small, st.integers(0, 32)).map(lambda r: f"{r[0]}:{r[0] + r[1]}")
    step = st.sampled_from(["1", "3", "0", "-1", "x2", "x1.5", "x1", "x0", "x-2", "xnan", "xinf", "x", "2.5", "x1e400"])
    stepped = st.tuples(small, st.integers(0, 64), step).map(lambda r: f"{r[0]}:{r[0] + r[1]}:{r[2]}")
    odd = st.sampled_from(["", ",", "1,,2", "1:", ":8", "1:2:3:4", "8:1", "1:1e400", f"1:{10**400}:x2", f"{10**400}",
                           "1:99999999999999", "1:4096:x1.0000000001", " 4 , 8 "])
    return st.one_of(listed, ranged, stepped, odd)


def _mostly(sane: st.SearchStrategy[str], anything: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Usually a plausible value, so that many examples reach the analysis rather than the first check."""
    return st.integers(0, 3).flatmap(lambda pick: anything if pick == 0 else sane)


ANY = st.one_of(_int_text(), _float_text(), _junk())
# Files of every kind a path may name (made in the fuzz's folder by _empty_cwd): a pipe, a folder, a dangling link,
# an empty file, one past the 1 MiB bound, endless devices, a name under a file, a name too long, nothing.
SPECIAL_FILES = ["pipe", "folder", "dangling.toml", "empty.toml", "big.toml", "/dev/zero", "/dev/urandom", "/dev/null",
                 "missing.toml", "file/x.toml", "n" * 300, "folder/"]
FILES = st.sampled_from(SPECIAL_FILES)
MODELS = [name for name, _ in documents.catalog_models()]
MODEL = _mostly(_cased(MODELS), st.one_of(ANY, FILES))
HARDWARE = _mostly(_cased([*hardware_names(), "h100"]), st.one_of(ANY, FILES))
QUANT = _mostly(_cased([*scheme_names(), "fp8+kv-fp8"]), ANY)
INT = _mostly(_int_text(), ANY)
FLOAT = _mostly(_float_text(), ANY)
AXIS = _mostly(_axis(), ANY)

# Every value-taking option of the fuzzed commands, by its parameter name. Boolean flags take no value.
FLAG_VALUES: dict[str, st.SearchStrategy[str]] = {
    "model": MODEL, "hardware": HARDWARE,
    "phase": _mostly(_cased(["prefill", "decode", "e2e"]), ANY),
    "batch": INT, "prompt_len": _mostly(st.integers(1, 70_000).map(str), INT), "context": INT, "gen_len": INT,
    "quant": QUANT, "kv_dtype": _mostly(_cased(["bf16", "fp16", "fp8", "int8", "int4"]), ANY),
    "efficiency": _mostly(_cased(["ideal", "calibrated"]), ANY),
    "eta_memory": FLOAT, "eta_compute": FLOAT, "kernel_overhead": FLOAT,
    "tp": _mostly(st.sampled_from(["1", "2", "4", "8"]), INT), "ep": _mostly(st.sampled_from(["1", "2", "8"]), INT),
    "pp": _mostly(st.sampled_from(["1", "2", "4"]), INT), "dp": _mostly(st.sampled_from(["1", "2"]), INT),
    "comm_algorithm": _mostly(_cased(["auto", "ring", "tree"]), ANY),
    "comm_overlap": FLOAT, "step_overhead": FLOAT, "gpu_memory_utilization": FLOAT,
    "max_num_batched_tokens": _mostly(st.sampled_from(["512", "2048", "8192"]), INT),
    "max_tokens_per_step": _mostly(st.sampled_from(["512", "2048", "8192"]), INT),  # its former name, still read
    "hot_expert_factor": FLOAT, "hot_expert_fraction": FLOAT,
    "mla_decode": _mostly(_cased(["absorbed", "naive"]), ANY),
    "dequant_ops": FLOAT, "kv_dequant_ops": FLOAT, "threshold": FLOAT,
    "spec_tokens": _mostly(st.sampled_from(["0", "1", "3", "65"]), INT),
    "acceptance": _mostly(st.sampled_from(["0.8", "0.8,0.6,0.4", "1", "0", "1.5", ",", "nan"]), FLOAT),
    "draft": _mostly(_cased(["mtp", "qwen3-8b", "llama-3.1-8b"]), st.one_of(ANY, FILES)),
    # A profile file: none that exists here, a folder, a pipe, a device, an empty or oversized file, junk.
    "profile": _mostly(st.one_of(FILES, st.sampled_from([".", ""])), ANY),
    "schemes": _mostly(st.lists(QUANT, min_size=1, max_size=3).map(",".join), ANY),
    "baseline": QUANT,
    # rooflm serving: lengths are distributions, loads are lists; simulated requests kept few (each costs time).
    "concurrency": _mostly(_axis(), ANY),
    "request_rate": _mostly(st.lists(st.one_of(_float_text(), st.sampled_from(["1", "2.5", "10"])), min_size=1,
                                     max_size=3).map(",".join), ANY),
    "method": _mostly(_cased(["simulate", "steady", "exact"]), ANY),
    "view": _mostly(_cased(["steady", "benchmark", "bench"]), ANY),
    "requests": _mostly(st.integers(1, 64).map(str), INT),
    "seed": INT, "max_running": INT, "kv_blocks": INT, "front_end_s": FLOAT, "front_end_token_s": FLOAT,
    "disaggregate": _mostly(_cased(["1P:1D", "2p:1d", "0P:1D", "1P:999D", "1P:3", "abc"]), ANY),
    "kv_link": _mostly(_cased(["inter_node", "intra_node", "intra-node", "fiber"]), ANY),
    "engine": _mostly(_cased(["vllm", "trtllm", "sglang", "vllm@0.24", "sglang@9", "tgi", "@1"]), ANY),
    "emit": _mostly(_cased(["vllm", "sglang", "trtllm", "tensorrt"]), ANY),
    # rooflm regimes: the small prefill's tokens and the MoE row's batch.
    "small_prefill": INT, "moe_batch": INT,
    # rooflm plan: the GPU count, the latency targets (seconds), processes and printed rows.
    "gpus": _mostly(st.sampled_from(["1", "2", "3", "8"]), INT), "ttft_slo": FLOAT, "tpot_slo": FLOAT,
    "workers": _mostly(st.sampled_from(["1", "2"]), INT), "rows": INT, "verify": _mostly(st.sampled_from(["0", "1"]), INT),
}
# rooflm serving's --prompt-len and --gen-len: a token count or a distribution of them.
LENGTH = _mostly(st.one_of(st.integers(1, 4096).map(str), st.tuples(
    st.sampled_from(["uniform", "normal", "lognormal", "Uniform", "zipf", ""]), _float_text(), _float_text())
    .map(":".join)), ANY)
# What a command needs to do anything: serving takes one load (closed-loop users or an arrival rate), so that
# most examples carry one, and a few simulated requests (the default simulation takes about a second).
_LOAD = st.one_of(
    st.lists(st.integers(1, 16), min_size=1, max_size=3).map(lambda v: ["--concurrency", ",".join(map(str, v))]),
    st.lists(st.sampled_from(["0.5", "1", "4", "20"]), min_size=1, max_size=3).map(lambda v: ["--request-rate",
                                                                                               ",".join(v)]))
NEEDS: dict[tuple[str, ...], st.SearchStrategy[list[str]]] = {
    ("serving",): st.tuples(_LOAD, st.integers(1, 48)).map(lambda n: [*n[0], "--requests", str(n[1])]),
    # plan: a small search (2 GPUs, one scheme, one KV dtype, one limit each, two loads) unless the example overrides it.
    ("plan",): st.just(["--gpus", "2", "--quant", "bf16", "--kv-dtype", "bf16", "--max-running", "32",
                        "--max-num-batched-tokens", "2048", "--concurrency", "1,8"]),
}
# Commands that always get their NEEDS: plan's default search takes seconds (bench_plan.py), the fuzz wants many
# small ones (its flags still override the small search's when drawn).
ALWAYS = {("plan",)}
# Commands whose --batch, --prompt-len and --context are axes (lists or ranges) rather than one integer.
AXIS_COMMANDS = {"sweep", "quant"}
UNKNOWN = ["--bogus", "--batchx", "--BATCH", "-Z", "--json=1", "--", "extra", "---batch", "--batch=", "-b"]

COMMANDS = [("analyze",), ("sweep",), ("critical-batch",), ("quant",), ("explain",), ("models", "show"),
            ("hardware", "show"), ("serving",), ("regimes",), ("plan",)]


@functools.cache
def _params(path: tuple[str, ...]) -> list[Any]:
    """The click parameters typer declares for the command at ``path``."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.get_command(None, name)
    return list(command.params)


def _value(path: tuple[str, ...], name: str) -> st.SearchStrategy[str]:
    if path[0] in AXIS_COMMANDS and name in ("batch", "prompt_len", "context"):
        return AXIS
    if path[0] == "serving" and name in ("prompt_len", "gen_len"):
        return LENGTH
    return FLAG_VALUES[name]


@st.composite
def _argv(draw: st.DrawFn, path: tuple[str, ...]) -> list[str]:
    """The command, its positional argument (if it takes one), then options in any order, some repeated, with
    now and then an option it does not have."""
    params = _params(path)
    argv = list(path)
    if any(p.param_type_name == "argument" for p in params):
        argv.append(draw(MODEL if path[0] == "models" else HARDWARE))
    if path in NEEDS and (path in ALWAYS or draw(st.integers(0, 3))):
        argv.extend(draw(NEEDS[path]))
    options = [p for p in params if p.param_type_name == "option"]
    for option in draw(st.lists(st.sampled_from(options), max_size=6)):
        argv.append(draw(st.sampled_from([*option.opts, *option.secondary_opts])))
        if not option.is_flag:
            argv.append(draw(_value(path, option.name)))
    if draw(st.integers(0, 5)) == 0:
        argv.insert(draw(st.integers(len(path), len(argv))), draw(st.sampled_from(UNKNOWN)))
    return argv


# ---------------------------------------------------------------- the contract


@pytest.fixture(scope="module", autouse=True)
def _empty_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run in an empty folder: a fuzzed model or hardware name is looked up as a path too, and must find nothing
    of the checkout's (a `.` would otherwise be the repository, a `pyproject.toml` a hardware file)."""
    old = Path.cwd()
    here = tmp_path_factory.mktemp("fuzz-cwd")
    os.chdir(here)
    os.mkfifo("pipe")
    Path("folder").mkdir()
    Path("dangling.toml").symlink_to(here / "gone" / "x.toml")
    Path("empty.toml").write_text("")
    with open("big.toml", "wb") as fh:
        fh.truncate((1 << 20) + 1)  # sparse: past the bound without the disk
    Path("file").write_text("")
    Path(TABLE).write_text(TABLE_TEXT)
    yield
    os.chdir(old)


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in the JSON output")

    return json.loads(text, parse_constant=refuse)


def check_contract(argv: list[str], result: Result) -> None:
    shown = f"rooflm {' '.join(map(repr, argv))}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{shown}\nexception: {result.exception!r}")
    assert result.exit_code in (0, 2), shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    if result.exit_code == 2:
        lines = result.stderr.strip("\n").splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), shown
    elif "--json" in argv:
        _strict_json(result.stdout)


def test_every_flag_has_a_value_strategy() -> None:
    """A new option of a fuzzed command must be fuzzed too: add its values to FLAG_VALUES."""
    for path in COMMANDS:
        names = {p.name for p in _params(path) if p.param_type_name == "option" and not p.is_flag}
        assert names <= set(FLAG_VALUES), f"{' '.join(path)}: no fuzz values for {names - set(FLAG_VALUES)}"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
@FUZZ
@given(data=st.data())
def test_any_arguments_give_output_or_one_error_line(path: tuple[str, ...], data: st.DataObject) -> None:
    argv = data.draw(_argv(path), label="argv")
    check_contract(argv, runner.invoke(app, argv))


@pytest.mark.parametrize("argv", [
    ["analyze", "--batch", "0"],
    ["analyze", "--bogus"],
    ["analyze", "--batch", "x"],
    ["sweep", "--batch", f"1:{10**400}:x2"],
    ["quant", "--schemes", "[red]bf16[/red]"],
    ["models", "show", "[bold]" + "x" * 300],
    ["hardware", "show", ":x:\n"],
    ["critical-batch", "--eta-compute", "5e-324"],
    ["analyze", "--eta-memory", "5e-324", "--json"],
    ["quant", "--eta-compute", "5e-324", "--batch", "1,8", "--json"],
    ["regimes", "--max-num-batched-tokens", str(10**400)],
    ["fit", "big.toml"],
], ids=repr)
def test_known_edges(argv: list[str]) -> None:
    """Edges the fuzzer found or might not draw in a short run: a range with a 400-digit end, markup in a name, an
    efficiency so small (a subnormal float) that times overflow to inf, an engine step of a 401-digit token count, a
    table whose one line (a megabyte of NUL bytes) is past csv's field limit."""
    check_contract(argv, runner.invoke(app, argv))


# ---------------------------------------------------------------- files in, files out

# A small valid measurement table (four rows of examples/measurements.csv's form): fit and validate --table read it.
TABLE = "table.csv"
TABLE_TEXT = ("model,hardware,phase,batch,context,measured_s\n"
              "llama-3.1-8b,h100-sxm,decode,1,1024,0.0068\nllama-3.1-8b,h100-sxm,decode,8,1024,0.0071\n"
              "llama-3.1-8b,h100-sxm,decode,64,1024,0.0093\nllama-3.1-8b,h100-sxm,decode,256,1024,0.0190\n")
# Where a run may be told to write: folders, a missing folder, a dangling link, a name under a file or too long,
# devices and pipes, its own input table, and good names.
OUTPUTS = st.sampled_from([".", "folder", "folder/", "missing/x.png", "dangling.toml", "file/x.png", "n" * 300 + ".png",
                           "/dev/null", "pipe", TABLE, "x.txt", "", "out.png", "out.svg", "out.html", "out.toml"])
INPUTS = st.one_of(FILES, st.just(TABLE))


@st.composite
def _file_argv(draw: st.DrawFn) -> list[str]:
    """fit, validate --table and plot with files of every kind in and out."""
    command = draw(st.sampled_from(["fit", "validate", "plot"]))
    if command == "fit":
        argv = ["fit", draw(INPUTS)]
        if draw(st.booleans()):
            argv += ["-o", draw(OUTPUTS)]
        return argv
    if command == "validate":
        argv = ["validate", "--table", draw(INPUTS)]
        return argv + (["--profile", draw(INPUTS)] if draw(st.booleans()) else [])
    argv = ["plot", draw(st.sampled_from(["memory", "roofline"])), "-o", draw(OUTPUTS)]
    for flag, values in (("--model", MODEL), ("--hardware", HARDWARE), ("--profile", INPUTS)):
        if draw(st.integers(0, 2)) == 0:
            argv += [flag, draw(values)]
    return argv


@FUZZ
@given(argv=_file_argv())
def test_files_of_any_kind_in_and_out_give_output_or_one_error_line(argv: list[str]) -> None:
    """No read waits on a pipe or reads a device for ever (signal.alarm fails the example), no write error is a
    traceback, and the run's own input table is never written over."""
    old = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(60)
    try:
        result = runner.invoke(app, argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    check_contract(argv, result)
    assert Path(TABLE).read_text() == TABLE_TEXT, argv


def _hung(*_: object) -> None:
    raise AssertionError("the command waited (a pipe or an endless device read)")
