"""Big sweeps: counted before they run, refused when they cannot finish, evaluated and streamed a chunk at a time."""

import importlib
import io
import json
import os
import tracemalloc

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.errors import InvalidInputError

sweep_module = importlib.import_module("rooflm.analyses.sweep")  # `rooflm.sweep` the attribute is the function
count_points, sweep_chunks = sweep_module.count_points, sweep_module.sweep_chunks
write_csv, write_json = sweep_module.write_csv, sweep_module.write_json


def test_count_points_multiplies_the_axes_the_phase_spans() -> None:
    # decode spans batch × context (context defaults to prompt_len); prefill and e2e span batch × prompt_len.
    assert count_points(phase="decode", batch=[1, 2, 3], context=[128, 256]) == 6
    assert count_points(phase="decode", batch=[1, 2, 3], prompt_len=[1, 2, 3, 4]) == 12
    assert count_points(phase="prefill", batch=[1, 2, 3], prompt_len=[1, 2, 3, 4], context=[9]) == 12
    assert count_points(phase="e2e", batch=range(1, 301), prompt_len=range(1, 301)) == 90_000
    assert count_points(batch=range(1, 10**7 + 1), context=range(1, 10**7 + 1)) == 10**14  # instantly: no grid
    with pytest.raises(InvalidInputError):
        count_points(phase="train")


def test_chunks_cover_the_grid_in_order_and_agree_with_single_analyses() -> None:
    batch, context = [1, 16, 300, 4096], [128, 1024, 8192]
    chunks = list(sweep_chunks(batch=batch, context=context, points_per_chunk=5, quant="fp8"))
    assert [len(c) for c in chunks] == [5, 5, 2]
    whole = rooflm.SweepResult.concat(chunks)
    # Batch-major, as numpy.meshgrid(indexing="ij") flattens.
    assert whole.axes["batch"].tolist() == [b for b in batch for _ in context]
    assert whole.axes["context"].tolist() == context * len(batch)
    for i in (0, 4, 5, 11):  # both sides of each chunk boundary
        r = rooflm.analyze(batch=int(whole.axes["batch"][i]), context=int(whole.axes["context"][i]), quant="fp8")
        assert whole.columns["time_s"][i] == pytest.approx(r.totals.time_s, rel=1e-12)
        assert whole.columns["bound"][i] == r.totals.bound
        assert bool(whole.columns["fits"][i]) == r.memory.fits


def test_e2e_chunks_bound_the_per_step_arrays_and_agree_with_single_analyses() -> None:
    # An e2e point evaluates its gen_len − 1 decode steps as one row of a (points × steps) array: the chunk holds
    # E2E_CHUNK_ELEMENTS // 4095 points.
    chunks = list(sweep_chunks(phase="e2e", batch=range(1, 11), prompt_len=range(100, 2100, 100), gen_len=4096))
    per_chunk = sweep_module.E2E_CHUNK_ELEMENTS // 4095
    assert max(len(c) for c in chunks) == per_chunk and sum(len(c) for c in chunks) == 200
    whole = rooflm.SweepResult.concat(chunks)
    for i in (0, per_chunk - 1, per_chunk, 199):
        b, pl = int(whole.axes["batch"][i]), int(whole.axes["prompt_len"][i])
        r = rooflm.analyze(phase="e2e", batch=b, prompt_len=pl, gen_len=4096)
        assert whole.columns["time_s"][i] == pytest.approx(r.totals.time_s, rel=1e-12)
        assert whole.columns["tpot_s"][i] == pytest.approx(r.totals.tpot_s, rel=1e-12)


def test_e2e_sweep_memory_does_not_grow_with_gen_len_times_points() -> None:
    # Before chunking, 400 points × 4095 steps made ~13 MB arrays, dozens alive at once: a 145 MB peak here
    # (and 20.6 GB, OOM-killed, at 1:300 × 1:300). Chunked, the peak is one chunk's (~25 MB).
    tracemalloc.start()
    try:
        rooflm.sweep(phase="e2e", batch=range(1, 21), prompt_len=range(1, 21), gen_len=4096)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 60e6


def test_streamed_csv_memory_does_not_grow_with_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    # 12,000 points in chunks of 1,024: the whole sweep in memory plus its CSV text peaks at 31.6 MB (measured with
    # one chunk of them all, as the code before chunking ran); streamed, the peak is one chunk's intermediates and
    # text (3.3 MB measured; 3.6 MB at 30,000 points: it does not grow with the sweep).
    monkeypatch.setattr(sweep_module, "CHUNK_ELEMENTS", 1024)
    tracemalloc.start()
    try:
        with open(os.devnull, "w") as sink:
            write_csv(sweep_chunks(batch=range(1, 12_001)), sink)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 15e6


@pytest.mark.parametrize(("kwargs", "field", "numbers"), [
    # 10,001 × 10,000 = 100,010,000 points, over the 10^8 a sweep can finish.
    ({"batch": range(1, 10_002), "context": range(1, 10_001)}, "batch", ["100,010,000", "100,000,000"]),
    # 10^6 e2e points × 20,000 decode steps = 2 × 10^10 step evaluations, over 10^10.
    ({"phase": "e2e", "batch": range(1, 1001), "prompt_len": range(1, 1001), "gen_len": 20_001}, "gen_len",
     ["1,000,000 points", "20,000 decode steps", "20,000,000,000", "10,000,000,000"]),
])
def test_a_sweep_that_cannot_finish_is_refused_at_the_call(kwargs: dict, field: str, numbers: list[str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        sweep_chunks(**kwargs)  # not iterated: the refusal comes before the first chunk is asked for
    assert info.value.field == field
    assert all(n in str(info.value) for n in numbers), str(info.value)


def test_an_in_memory_sweep_has_its_own_lower_limit() -> None:
    # 10^7 + 1 points would be ~3 GB as arrays; streamed, the same grid is allowed.
    big = {"batch": range(1, 10_001), "context": [*range(1, 1001), 1001]}  # 10,000 × 1,001 = 10,010,000 points
    with pytest.raises(InvalidInputError, match=r"10,010,000 points.*--csv"):
        rooflm.sweep(**big)
    assert sum(1 for _ in zip(range(1), sweep_chunks(**big), strict=False)) == 1  # starts


@pytest.mark.parametrize(("model", "phase", "gen_len"), [("llama-3.1-8b", "decode", 256),
                                                          ("qwen3-30b-a3b", "prefill", 256),
                                                          ("llama-3.1-8b", "e2e", 1), ("llama-3.1-8b", "e2e", 9)])
def test_streamed_json_is_the_document_json_dumps_writes(model: str, phase: str, gen_len: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "CHUNK_ELEMENTS", 3)
    monkeypatch.setattr(sweep_module, "E2E_CHUNK_ELEMENTS", 20)
    axes = {"model": model, "phase": phase, "batch": [1, 8, 512], "prompt_len": [64, 1000], "gen_len": gen_len}
    buf = io.StringIO()
    write_json(sweep_chunks(**axes), buf)
    assert buf.getvalue() == json.dumps(rooflm.sweep(**axes).to_json_dict(), indent=2, allow_nan=False) + "\n"


def test_an_undefined_tpot_is_null_in_the_document() -> None:
    # gen_len 1 has no decode step, so no time per output token: analyze reports None; the sweep's JSON
    # used to raise ("Out of range float values are not JSON compliant: nan") and print a traceback.
    s = rooflm.sweep(phase="e2e", batch=[1, 2], gen_len=1)
    assert [p["tpot_s"] for p in s.points()] == [None, None]
    assert rooflm.analyze(phase="e2e", gen_len=1).totals.tpot_s is None
    result = CliRunner().invoke(app, ["sweep", "--phase", "e2e", "--gen-len", "1", "--batch", "1,2", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["points"][0]["tpot_s"] is None


def test_cli_streams_csv_and_json_over_many_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "CHUNK_ELEMENTS", 7)
    args = ["sweep", "--batch", "1:40", "--context", "128,4096"]
    runner = CliRunner()
    csv_out = runner.invoke(app, [*args, "--csv"])
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("batch,context,time_s") and len(lines) == 1 + 80  # one header, one row per point
    assert csv_out.stdout.replace("\r\n", "\n") == \
        rooflm.sweep(batch=range(1, 41), context=[128, 4096]).to_csv().replace("\r\n", "\n")
    doc = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert [p["batch"] for p in doc["points"]] == [b for b in range(1, 41) for _ in range(2)]


@pytest.mark.parametrize("command", ["sweep", "quant"])
def test_json_and_csv_together_is_one_error_line(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--batch", "1,2", "--json", "--csv"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "--json and --csv" in result.stderr


def test_cli_refuses_an_oversize_sweep_before_printing_anything() -> None:
    result = CliRunner().invoke(app, ["sweep", "--batch", "1:10001", "--context", "1:10000", "--csv"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "100,010,000 points" in result.stderr and "100,000,000" in result.stderr


def test_count_points_is_the_length_of_the_sweep() -> None:
    for kwargs in ({"batch": [1, 2, 4], "context": [128, 4096]}, {"phase": "prefill", "batch": [1, 2], "prompt_len": [64]},
                   {"phase": "e2e", "batch": [1], "prompt_len": [64, 128, 256], "gen_len": 4}):
        assert count_points(**{k: v for k, v in kwargs.items() if k != "gen_len"}) == len(rooflm.sweep(**kwargs))
