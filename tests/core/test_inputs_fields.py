"""The deployment keywords are declared once (rooflm.core.inputs.Deployment); the CLI flags and web fields follow it."""

from typing import get_type_hints

import typer.main

from rooflm.cli import app
from rooflm.core.inputs import DEPLOYMENT_FIELDS, Deployment, setup
from rooflm.web.schemas import AnalyzeBody


def test_every_keyword_has_a_flag_and_a_web_field_with_its_default() -> None:
    analyze = typer.main.get_command(app).commands["analyze"]  # type: ignore[attr-defined]
    flags = {p.name: p for p in analyze.params}
    body = AnalyzeBody.model_fields
    assert [f.name for f in DEPLOYMENT_FIELDS] == list(get_type_hints(Deployment))
    for f in DEPLOYMENT_FIELDS:
        assert flags[f.cli_name].default == f.default, f.name
        if f.flag.web:
            assert body[f.cli_name].default == f.default, f.name
        else:  # a keyword that names a file (--profile) is no web field: the server opens no path
            assert f.cli_name not in body, f.name
    assert [f.name for f in DEPLOYMENT_FIELDS if not f.flag.web] == ["profile"]


def test_the_api_spelling_of_a_flag_with_a_unit() -> None:
    # --kernel-overhead (CLI, web) is kernel_overhead_s in the API; a body hands the API its spelling.
    assert AnalyzeBody(kernel_overhead=1e-3, step_overhead=2e-4).common()["kernel_overhead_s"] == 1e-3
    assert AnalyzeBody(step_overhead=2e-4).common()["step_overhead_s"] == 2e-4
    assert {f.cli_name for f in DEPLOYMENT_FIELDS} >= {"kernel_overhead", "step_overhead"}


def test_setup_defaults_are_the_declared_ones() -> None:
    # Nothing passed: the layout is 1 device, the chunk vLLM's 8192 tokens, the routing uniform.
    s = setup("llama-3.1-8b", "h100-sxm")
    assert (s.parallel.tp, s.parallel.ep, s.parallel.pp, s.parallel.dp) == (1, 1, 1, 1)
    assert s.max_num_batched_tokens == 8192
    assert s.options.routing.uniform
