"""Speculative decoding's keywords, checked: drafted tokens per step, acceptance rates and the draft (a model
or the checkpoint's own MTP layers), as rooflm.core.inputs.setup reads them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rooflm.core.step import Draft, Options, Speculation
from rooflm.errors import InvalidInputError, arg, named, quoted
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import QuantScheme
from rooflm.specs.workload import check_number

# Drafted tokens per step: EAGLE and MTP deployments use 1–8; past 64 the verify step is a prefill chunk, not a
# decode step, and the expected gain is flat (Π p_j vanishes).
MAX_SPEC_TOKENS = 64
MTP = "mtp"
# Drafting from the context's own n-grams (prompt lookup): no model runs, so the draft costs nothing on the device.
NGRAM = "ngram"


def check_acceptance(value: object, k: int) -> tuple[float, ...]:
    """k acceptance rates in [0, 1]: one rate (a number or "0.8") for every position, or k of them ("0.8,0.6,0.4"
    or a list)."""
    if value is None:
        raise InvalidInputError(f"{named('spec_tokens')} {k} needs an acceptance rate: {arg('acceptance')} 0.8, or one "
                                "per drafted position (0.8,0.6,0.4)", "acceptance")
    items: list[object]
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    rates = []
    for item in items:
        if isinstance(item, str):
            try:
                item = float(item)
            except ValueError:
                raise InvalidInputError(f"acceptance must be numbers in [0, 1], got {quoted(value)}", "acceptance") \
                    from None
        rates.append(check_number(item, "acceptance", 0, 1))
    if len(rates) == 1:
        return tuple(rates) * k
    if len(rates) != k:
        raise InvalidInputError(f"acceptance lists {len(rates)} rates for spec-tokens {k}: give one rate, or one per "
                                "drafted position", "acceptance")
    return tuple(rates)


def check_speculation(k: object, acceptance: object, draft: object, target: ModelSpec, scheme: QuantScheme,
                      options: Options) -> Speculation | None:
    """Speculative decoding, checked: ``k`` drafted tokens (--spec-tokens), their ``acceptance`` rates and the
    ``draft`` (None when off)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_SPEC_TOKENS:
        raise InvalidInputError(f"spec-tokens must be an integer between 0 and {MAX_SPEC_TOKENS}, got {quoted(k)}",
                                "spec_tokens")
    if k == 0:
        if draft is not None or acceptance is not None:
            raise InvalidInputError(f"acceptance and draft need speculative decoding: set {arg('spec_tokens')} k ≥ 1",
                                    "spec_tokens")
        return None
    rates = check_acceptance(acceptance, k)
    if draft is None and target.mtp_layers:
        draft = MTP  # the checkpoint's own MTP head drafts by default: its step is priced, never free
    if draft is None or (isinstance(draft, str) and draft.strip().lower() == NGRAM):
        return Speculation(k, rates, None)  # n-gram drafting (or a model without MTP and no draft named): free
    return Speculation(k, rates, _draft(draft, target, scheme, options))


def _draft(draft: object, target: ModelSpec, scheme: QuantScheme, options: Options) -> Draft:
    """The draft's model and layout: MTP is one layer of the target, laid out as the target but on one pipeline stage
    (the last); a draft model runs at the target's tensor parallelism (vLLM's default draft TP) in the target's
    scheme where it has that module class, on one replica's batch."""
    if not isinstance(draft, (str, Path, ModelSpec)):
        raise InvalidInputError(f"draft must be a model name, a config path, mtp or ngram, got {quoted(draft)}", "draft")
    plain = replace(options, speculation=None)
    if isinstance(draft, str) and draft.strip().lower() == MTP:
        if not target.mtp_layers:  # engines run MTP only from the checkpoint's own MTP weights
            raise InvalidInputError(f"{target.name} has no multi-token-prediction layers (its config.json sets no "
                                    "num_nextn_predict_layers); use a draft model instead", "draft")
        last = target.layers[-1]
        layer = last.model_copy(update={"count": 1, "linear": False})  # an MTP layer has full attention
        one = target.model_copy(update={"name": f"{target.name} MTP", "layers": [layer]})
        return Draft(one, scheme, replace(plain, parallel=options.parallel.model_copy(update={"pp": 1})), mtp=True)
    spec = load_model(draft)
    layout = Parallelism(tp=options.parallel.tp, algorithm=options.parallel.algorithm)
    try:
        layout.check(spec)
    except InvalidInputError as e:
        raise InvalidInputError(f"draft {spec.name} cannot run at {arg('tp')} {layout.tp}: {e.marked}", "draft") from None
    return Draft(spec, scheme, replace(plain, parallel=layout))
