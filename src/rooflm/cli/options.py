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

try:  # typer 0.2x vendors click: its context, not click's, is the one a command runs in
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - a typer on click
    # The same API from click itself; mypy sees both branches, and click's classes are not typer's copies.
    from click import get_current_context  # type: ignore[no-redef]
    from click.core import ParameterSource  # type: ignore[assignment]

from rooflm.core.inputs import DEFAULTS, DEPLOYMENT_FIELDS, DeploymentField

F = TypeVar("F", bound=Callable[..., Any])


def lower_case(value: str | None) -> str | None:
    """Modes, schemes and dtypes are names in any case: `--efficiency CALIBRATED` reaches the API as `calibrated`."""
    return None if value is None else value.lower()


Model = Annotated[str, typer.Option("--model", "-m", help="Catalog name or path to a config.json (or its folder).")]
Hardware = Annotated[str, typer.Option("--hardware", "-H", help="Catalog name/alias or a hardware .toml file.")]
Phase = Annotated[str, typer.Option(help="prefill | decode | e2e", callback=lower_case)]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
GenLen = Annotated[int, typer.Option(help="Output tokens per request (e2e).")]
# A setting's former spelling, still read but hidden from --help, so that scripts written for it keep working:
# `--max-tokens-per-step` (now vLLM's `--max-num-batched-tokens`, as in every command) and `quant`'s `--schemes`.
OldBudget = Annotated[int | None, typer.Option("--max-tokens-per-step", hidden=True)]
OldBudgets = Annotated[str | None, typer.Option("--max-tokens-per-step", hidden=True)]
OldSchemes = Annotated[str | None, typer.Option("--schemes", hidden=True)]


AllTokens = Annotated[bool, typer.Option("--lm-head-all-tokens", help="Prefill computes logits for every token.")]


def _flag(f: DeploymentField) -> tuple[str, Any, Any]:
    """A deployment keyword as a typer parameter: (parameter name, annotation, default)."""
    decls = f.flag.decls or (f"--{f.cli_name.replace('_', '-')}",)
    option = typer.Option(*decls, help=f.flag.help, callback=lower_case if f.flag.any_case else None)
    return f.cli_name, Annotated[f.value_type, option], f.default


# The deployment flags, built from rooflm.core.inputs.Deployment. Their names are the API's keywords, but for
# --kernel-overhead and --step-overhead, which the API takes as kernel_overhead_s and step_overhead_s.
DEPLOYMENT_FLAGS: list[tuple[str, Any, Any]] = [_flag(f) for f in DEPLOYMENT_FIELDS]
_API_NAME = {f.cli_name: f.name for f in DEPLOYMENT_FIELDS}
_CLI_NAME = {f.name: f.cli_name for f in DEPLOYMENT_FIELDS}


def flag(keyword: str) -> str:
    """An API keyword as the command line spells it in messages: ``seed`` → ``--seed``, ``kernel_overhead_s`` →
    ``--kernel-overhead``."""
    return "--" + _CLI_NAME.get(keyword, keyword).replace("_", "-")


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
            chosen = {_API_NAME[p.name]: kwargs.pop(p.name) for p in added}
            return fn(*args, deployment=_given(chosen), **kwargs)

        keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        command.__signature__ = signature.replace(parameters=[*keyword_only, *added])  # type: ignore[attr-defined]
        return command  # type: ignore[return-value]

    return decorate


def _given(chosen: dict[str, Any]) -> dict[str, Any]:
    """The keywords less those left at the API's own default, which the API fills in the same way: a flag not
    typed must not read as given, so that a --profile's parameters are not overridden by defaults (and an
    --efficiency ideal typed can be told from the default). None is never given: a command whose default depends on
    what it runs (`plot`'s efficiency) leaves it to the API."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return chosen

    def typed(api: str) -> bool:
        cli = next(f.cli_name for f in DEPLOYMENT_FIELDS if f.name == api)
        source = ctx.get_parameter_source(cli)
        return source is not None and source is not ParameterSource.DEFAULT

    return {k: v for k, v in chosen.items() if v is not None and (typed(k) or v != DEFAULTS[k])}
