"""Every user mistake names the input it is about (the web API turns it into the 422's field)."""

from pathlib import Path

import pytest

import rooflm


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"batch": 0}, "batch"),
    ({"context": 10**6}, "context"),
    ({"hardware": "h100-sxn"}, "hardware"),
    ({"model": "llama-3.1-8"}, "model"),
    ({"quant": "w5a16"}, "quant"),
    ({"kv_dtype": "int3"}, "kv_dtype"),
    ({"tp": 3}, "tp"),
    ({"ep": 2, "tp": 2}, "ep"),
    ({"efficiency": "fast"}, "efficiency"),
    ({"eta_memory": 1.5}, "eta_memory"),
    ({"quant": "fp8", "hardware": "a100-sxm"}, "quant"),
])
def test_errors_name_their_field(kwargs: dict, field: str) -> None:
    args = {"model": "llama-3.1-8b", "hardware": "h100-sxm", **kwargs}
    with pytest.raises(rooflm.RooflmError) as info:
        rooflm.analyze(args.pop("model"), args.pop("hardware"), **args)
    assert info.value.field == field


def test_a_broken_config_is_the_models_fault(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(rooflm.RooflmError) as info:
        rooflm.analyze(tmp_path, "h100-sxm")
    assert info.value.field == "model"


# Each surface spells the inputs an error names its own way: the Python keyword, the CLI flag, the request field.
def test_the_api_names_keywords_not_flags() -> None:
    with pytest.raises(rooflm.RooflmError) as info:
        rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", concurrency=[1], seed=-1)
    assert info.value.field == "seed"
    assert str(info.value) == "seed must be an integer between 0 and 2^63 − 1, got -1"


def test_the_cli_spells_the_same_error_with_its_flags() -> None:
    from typer.testing import CliRunner

    from rooflm.cli import app

    result = CliRunner().invoke(app, ["serving", "--concurrency", "1", "--seed", "-1"])
    assert result.exit_code == 2
    assert "error: --seed must be an integer between 0 and 2^63 − 1, got -1" in result.output
    two = CliRunner().invoke(app, ["serving", "--concurrency", "1", "--max-running", "64", "--max-tokens-per-step", "32"])
    assert "error: --max-num-batched-tokens (32) must be at least --max-running (64)" in two.output


def test_the_web_spells_it_with_the_request_fields() -> None:
    from fastapi.testclient import TestClient

    from rooflm.web.app import create_app

    client = TestClient(create_app(), base_url="http://localhost")
    reply = client.post("/api/serving", json={"concurrency": "1", "kv_link": "intra_node"}).json()
    assert reply["field"] == "kv_link"
    assert reply["message"] == "kv_link is the link of disaggregate's KV transfer; give disaggregate too"


def test_a_keyword_each_surface_names_differently() -> None:
    from rooflm.cli.options import flag
    from rooflm.errors import InvalidInputError, arg
    from rooflm.web.schemas import body_field

    e = InvalidInputError(f"{arg('kernel_overhead_s')} must be finite", "kernel_overhead_s")
    assert str(e) == "kernel_overhead_s must be finite"  # rooflm.analyze(kernel_overhead_s=...)
    assert e.spelled(flag) == "--kernel-overhead must be finite"
    assert e.spelled(body_field) == "kernel_overhead must be finite"


def test_marks_never_come_from_what_the_user_sent() -> None:
    from rooflm.cli.options import flag
    from rooflm.errors import InvalidInputError, arg, quoted

    sent = f"{arg('seed')}"  # a value that looks like a marked keyword is quoted with its control characters escaped
    e = InvalidInputError(f"{arg('quant')} {quoted(sent)} is unknown", "quant")
    assert e.spelled(flag) == "--quant '\\x1dseed\\x1e' is unknown"


def test_an_input_named_as_a_noun_keeps_each_surfaces_spelling() -> None:
    from typer.testing import CliRunner

    from rooflm.cli import app

    with pytest.raises(rooflm.RooflmError) as info:
        rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", prompt_len=-5)
    assert str(info.value) == "prompt_len must be a positive integer, got -5"
    cli = CliRunner().invoke(app, ["analyze", "--phase", "prefill", "--prompt-len", "-5"])
    assert cli.exit_code == 2 and "error: prompt-len must be a positive integer, got -5" in cli.output
