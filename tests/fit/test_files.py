"""Tables whose rows name files: a hardware .toml (a measured machine, which the catalog does not know) and a model
config.json, relative to the table's folder; a device whose hardware file has no per-step cost still fits one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rooflm
from rooflm import analyze
from rooflm.fit.solve import Predictor, fit
from rooflm.fit.table import read_table
from rooflm.measure.validate import CaseResult, write_fit_table

CATALOG_H100 = Path(rooflm.__file__).parent / "data" / "hardware" / "h100-sxm.toml"
TINY = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096, "max_position_embeddings": 4096}


def _device(folder: Path, step_overhead: float = 2.5e-4) -> Path:
    """h100-sxm's catalog file under a name the catalog does not know (as `rooflm measure -o` writes one)."""
    text = CATALOG_H100.read_text()
    text = re.sub(r'^name = "h100-sxm"', 'name = "my-gpu"', text, count=1, flags=re.M)
    text = text.replace("step_overhead = { value = 2.5e-4,", f"step_overhead = {{ value = {step_overhead!r},")
    path = folder / "my-gpu.toml"
    path.write_text(text)
    return path


def _table(folder: Path, rows: list[str]) -> Path:
    path = folder / "t.csv"
    path.write_text("model,hardware,phase,batch,context,measured_s\n" + "".join(r + "\n" for r in rows))
    return path


def test_hardware_file_rows_fit_and_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row naming a hardware file relative to the table, read from another folder: the point is predicted on that
    file (before: the file's own name, my-gpu, was looked up in the catalog and refused)."""
    table_dir = tmp_path / "data"
    table_dir.mkdir()
    hw = _device(table_dir)
    rows = [f"llama-3.1-8b,my-gpu.toml,decode,{b},1024,{t}" for b, t in ((1, 0.008), (8, 0.0085), (64, 0.012))]
    path = _table(table_dir, rows)
    monkeypatch.chdir(tmp_path)  # the cell is relative to the table's folder, not to the working directory
    points = read_table(path)
    assert {p.hardware for p in points} == {"my-gpu"} and points[0].device == str(hw)
    expected = analyze("llama-3.1-8b", hw, phase="decode", batch=1, context=1024, efficiency="calibrated")
    assert Predictor(points)({})[0] == pytest.approx(expected.totals.time_s, rel=1e-12)
    (f,) = fit(points, ("bandwidth",))
    assert f.hardware == "my-gpu" and f.parameters["bandwidth.dense"].fitted


def test_no_step_factor_where_the_file_has_no_step_cost(tmp_path: Path) -> None:
    """A hardware file with no per-step cost (0, as a CPU measurement's): a factor on 0 is 0, so no point is
    sensitive to the step factor and it stays 1 (the fit scales the file's figures, it does not invent new ones)."""
    hw = _device(tmp_path, 0.0)
    points = read_table(_table(tmp_path, [f"llama-3.1-8b,{hw.name},decode,{b},1024,{t}"
                                          for b, t in ((1, 0.008), (8, 0.0085), (64, 0.012))]))
    (f,) = fit(points, ("bandwidth", "step"))
    assert "step" in f.unidentified and not f.parameters["step"].fitted and f.parameters["bandwidth.dense"].fitted


def test_validate_cases_written_as_a_fit_table(tmp_path: Path) -> None:
    """`rooflm validate --write-table`'s writer: one row per case, the model's config.json and the hardware file
    relative to the table, the measured median as measured_s; read back, each row is the case and predicts as
    rooflm.analyze does on the same config and file."""
    hw = _device(tmp_path)
    config = tmp_path / "t.models" / "tiny" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(TINY))
    cases = [CaseResult(model="tiny", phase="decode", batch=4, context=128, measured_s=0.0123, predicted_s=0.01,
                        ideal_s=0.005, predicted_bound="memory"),
             CaseResult(model="tiny", phase="prefill", batch=1, prompt_len=256, measured_s=0.0456, predicted_s=0.04,
                        ideal_s=0.02, predicted_bound="compute")]
    path = tmp_path / "out" / "t.csv"
    path.parent.mkdir()
    write_fit_table(path, cases, {"tiny": config}, hw, "measured here\nby a test")
    text = path.read_text()
    assert text.startswith("# measured here\n# by a test\n") and "../t.models/tiny/config.json,../my-gpu.toml" in text
    decode, prefill = read_table(path)
    assert (decode.phase, decode.batch, decode.context, decode.seconds) == ("decode", 4, 128, 0.0123)
    assert (prefill.phase, prefill.batch, prefill.prompt_len, prefill.seconds) == ("prefill", 1, 256, 0.0456)
    expected = analyze(config, hw, phase="decode", batch=4, context=128, efficiency="calibrated")
    assert Predictor([decode])({})[0] == pytest.approx(expected.totals.time_s, rel=1e-12)


def test_profile_of_a_hardware_file_validates_its_table(tmp_path: Path) -> None:
    """`rooflm validate --table T --profile P` where T's rows name a hardware file: the profile's device (the file's
    name, my-gpu) is matched through the file (before: my-gpu was looked up in the catalog and refused)."""
    from rooflm.fit.profile import write_profile
    from rooflm.measure.validate import validate_table

    hw = _device(tmp_path)
    path = _table(tmp_path, [f"llama-3.1-8b,{hw.name},decode,{b},1024,{t}" for b, t in ((1, 0.009), (8, 0.0095),
                                                                                       (64, 0.013))])
    profile = tmp_path / "p.toml"
    write_profile(profile, fit(read_table(path), ("bandwidth",)), path, "test")
    with_profile, default = validate_table(path, profile), validate_table(path)
    assert with_profile.profile is not None and with_profile.median_abs < default.median_abs
