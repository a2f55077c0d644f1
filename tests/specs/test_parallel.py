import pytest

import rooflm


@pytest.mark.parametrize(("model", "kwargs", "match"), [
    ("llama-3.1-8b", {"tp": 3}, "tp=3 does not divide the 32 attention heads"),
    ("llama-3.1-8b", {"tp": 2, "ep": 2}, "has no experts"),
    ("mixtral-8x7b", {"dp": 3, "ep": 3}, "ep=3 does not divide the 8 experts"),
    ("mixtral-8x7b", {"tp": 2, "ep": 4}, "must equal tp × dp"),
    ("llama-3.1-8b", {"pp": 64}, "more stages than the 32 layers"),
    ("llama-3.1-8b", {"tp": 0}, "tp must be a positive integer"),
])
def test_layouts_that_do_not_divide_the_model_are_refused(model: str, kwargs: dict, match: str) -> None:
    with pytest.raises(rooflm.InvalidInputError, match=match):
        rooflm.analyze(model, "h100-sxm", **kwargs)


def test_kv_heads_are_replicated_past_their_count() -> None:
    # Llama-3.1-70B has 8 KV heads: at TP=16 each device still holds one.
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=1024, tp=16)
    kv_write = next(o for o in r.operators if o.name == "kv_cache_write")
    # One new token: 80 layers * 1 head * (128 + 128) * 2 B.
    assert kv_write.kv_bytes == 80 * 256 * 2
