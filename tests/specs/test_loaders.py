"""Resolving a model or device name: catalog names, files, and the names that are neither."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rooflm.errors import InvalidInputError, UnknownNameError
from rooflm.specs.hardware import HARDWARE_DIR, catalog_hardware, load_hardware
from rooflm.specs.hf_config import MODELS_DIR, catalog_model, load_model, model_from_text


def test_a_hugging_face_id_outside_the_catalog_is_told_how_to_bring_its_config() -> None:
    with pytest.raises(UnknownNameError) as caught:
        load_model("mistralai/Mistral-7B-v0.3")
    message = str(caught.value)
    # Mistral-7B is a dense model; Mixtral-8x7B a mixture of experts: suggesting one for the other misleads.
    assert "did you mean" not in message and "mixtral" not in message.lower()
    assert "download its config.json" in message and "(model path/to/config.json)" in message
    assert "(--model path/to/config.json)" in caught.value.spelled(lambda k: f"--{k}")  # as the CLI prints it
    # A plain misspelling still gets the closest names.
    with pytest.raises(UnknownNameError, match=r"did you mean 'llama-3\.1-8b'"):
        load_model("llama-3.1-8x")


@pytest.mark.parametrize("loader", [load_model, load_hardware, catalog_model, catalog_hardware])
def test_names_longer_than_a_file_name_can_be_are_unknown_names(loader: object) -> None:
    # 300 bytes is past the 255-byte file-name limit of Linux filesystems (OSError ENAMETOOLONG on stat).
    with pytest.raises(UnknownNameError) as caught:
        loader("x" * 300)  # type: ignore[operator]
    assert len(str(caught.value)) < 200  # the name is quoted cut short, not 300 characters


def test_catalog_only_loaders_never_open_files(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text((MODELS_DIR / "llama-3.1-8b" / "config.json").read_text())
    assert load_model(str(config)).total_params == 8_030_261_248  # the CLI and Python API read files …
    with pytest.raises(UnknownNameError, match=r"paste its config\.json"):
        catalog_model(str(config))  # … a server's loader does not
    with pytest.raises(UnknownNameError):
        catalog_model(str(tmp_path))
    device = tmp_path / "gpu.toml"
    device.write_text((HARDWARE_DIR / "h100-sxm.toml").read_text())
    assert load_hardware(str(device)).name == "h100-sxm"
    with pytest.raises(UnknownNameError):
        catalog_hardware(str(device))


def test_pasted_config_text_is_parsed_without_quoting_it() -> None:
    text = (MODELS_DIR / "llama-3.1-8b" / "config.json").read_text()
    assert model_from_text(text).total_params == model_from_text(json.loads(text)).total_params == 8_030_261_248
    for bad, words in [("SECRET{", "not valid JSON"), ("[1]", "must be a JSON object"),
                       ("[" * 100_000, "nests too deeply"), (b"\xff\xfe", "not UTF-8")]:
        with pytest.raises(InvalidInputError, match=words) as caught:
            model_from_text(bad)
        assert "SECRET" not in str(caught.value)
    with pytest.raises(InvalidInputError, match="at most 1,048,576"):
        model_from_text(" " * (1 << 20) + "{}")


def test_oversize_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "config.json"
    big.write_bytes(b" " * ((1 << 20) + 1))
    with pytest.raises(InvalidInputError, match="over 1 MiB"):
        load_model(str(big))
    binary = tmp_path / "gpu.toml"
    binary.write_bytes(b"\xff\xfe name = 1")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        load_hardware(str(binary))
