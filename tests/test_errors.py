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
