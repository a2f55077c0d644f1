"""`profile=` / `--profile`: every entry point predicts with a profile written by `rooflm fit`; explicit keywords win."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflm import analyze, critical_batch
from rooflm.analyses.report import Report
from rooflm.cli import app
from rooflm.errors import InvalidInputError
from rooflm.explain.prose import explain
from rooflm.fit import fit, load_profile, write_profile
from rooflm.fit.solve import Predictor
from rooflm.fit.table import Point

# H100 SXM's HBM3 bandwidth, 3.35 TB/s (NVIDIA H100 datasheet; data/hardware's h100-sxm).
H100_BW = 3.35e12
# The synthetic engine's achieved share of it, away from the catalog's 0.81.
TRUE_ETA_MEMORY = 0.5


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile of the first format (flat overrides, still read as before): eta_memory 0.5, with the hash of the
    table it names."""
    folder = tmp_path_factory.mktemp("profile")
    data = folder / "synthetic.csv"
    data.write_text("synthetic decode points\n", encoding="utf-8")  # the profile records its hash
    path = folder / "p.toml"
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    path.write_text(f'[profile]\ndata = "synthetic.csv"\ndata_sha256 = "{sha}"\n\n'
                    f'[devices."h100-sxm".parameters.eta_memory]\nvalue = {TRUE_ETA_MEMORY}\nfitted = true\n')
    return path


@pytest.fixture(scope="module")
def factor_profile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A profile `rooflm fit` wrote (format 2), fitted on noiseless decode points made with the dense GEMMs at half
    the catalog's bandwidth; and its fitted factors."""
    folder = tmp_path_factory.mktemp("factors")
    points = [Point(i + 2, "llama-3.1-8b", "h100-sxm", "decode", batch, 1024, 1024, 256, False, {})
              for i, batch in enumerate((1, 4, 16, 64))]
    times = Predictor(points)({"bandwidth.dense": 0.5})
    points = [dataclasses.replace(p, value=float(t), seconds=float(t)) for p, t in zip(points, times, strict=True)]
    data = folder / "synthetic.csv"
    data.write_text("synthetic decode points\n", encoding="utf-8")
    path = folder / "p.toml"
    (f,) = fit(points, ("bandwidth.dense",))
    write_profile(path, [f], data, "test")
    return path, f.fitted_values()


def test_a_factor_profile_predicts_as_the_fit(factor_profile: tuple[Path, dict[str, float]]) -> None:
    """analyze with the written profile predicts what the fit's own predictor does at the fitted factors, and the
    fit recovered the engine. Noiseless, so the prior's pull toward 1 is all that separates them: log(factor) is
    shrunk by w² / (JᵀJ + w²), with w = 0.3 and JᵀJ ≈ 4 points × (~0.7 of each step in the dense GEMMs' memory
    time)² ≈ 2, i.e. about 4% of log 0.5: a factor about 0.515."""
    path, values = factor_profile
    assert values["bandwidth.dense"] == pytest.approx(0.5, rel=0.03)
    point = Point(2, "llama-3.1-8b", "h100-sxm", "decode", 8, 2048, 2048, 256, False, {})
    r = analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=8, context=2048, profile=path)
    assert r.totals.time_s == pytest.approx(Predictor([point])(values)[0], rel=1e-12)
    assert r.totals.time_s > analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=8, context=2048,
                                      efficiency="calibrated").totals.time_s


def _eta(path: Path) -> float:
    """The profile's fitted eta_memory, read from its TOML."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return float(doc["devices"]["h100-sxm"]["parameters"]["eta_memory"]["value"])


def _memory_times_at(report: Report, eta: float) -> None:
    """Every operator's memory time is its bytes over eta × the device's bandwidth."""
    moved = [o for o in report.operators if o.bytes > 0]
    assert moved
    for o in moved:
        assert o.memory_time_s == pytest.approx(o.bytes / (eta * H100_BW), rel=1e-9), o.name


def test_analyze_predicts_with_the_profile(profile_path: Path) -> None:
    r = analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=8, context=2048, profile=profile_path)
    assert r.efficiency == "calibrated"
    _memory_times_at(r, _eta(profile_path))
    assert r.profile is not None and r.profile.name == "p.toml"
    data = (profile_path.parent / "synthetic.csv").read_bytes()
    assert r.profile.data_sha256 == hashlib.sha256(data).hexdigest()
    # A loaded profile is the same as its path.
    same = analyze("llama-3.1-8b", "h100", phase="decode", batch=8, context=2048, profile=load_profile(profile_path))
    assert same.totals.time_s == r.totals.time_s


def test_without_a_profile_the_report_says_none() -> None:
    assert analyze("llama-3.1-8b", "h100-sxm").profile is None


def test_explicit_keywords_win(profile_path: Path) -> None:
    r = analyze("llama-3.1-8b", "h100-sxm", profile=profile_path, eta_memory=0.8)
    _memory_times_at(r, 0.8)
    # None is "not given": the profile's value stays.
    _memory_times_at(analyze("llama-3.1-8b", "h100-sxm", profile=profile_path, eta_memory=None), _eta(profile_path))


@pytest.mark.parametrize("mode", ["ideal", " IDEAL "])
def test_ideal_with_a_profile_refused(profile_path: Path, mode: str) -> None:
    with pytest.raises(InvalidInputError, match="calibrated") as e:
        analyze("llama-3.1-8b", "h100-sxm", profile=profile_path, efficiency=mode)
    assert e.value.field == "profile"


@pytest.mark.parametrize("profile", ["missing.toml", 3])
def test_bad_profile_refused(profile: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError) as e:
        analyze("llama-3.1-8b", "h100-sxm", profile=profile)  # type: ignore[arg-type]
    assert e.value.field == "profile"


def test_profile_without_the_device_refused(profile_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no parameters for a100") as e:
        critical_batch("llama-3.1-8b", "a100-80gb", profile=profile_path)
    assert e.value.field == "profile"


def test_explain_names_the_profile(profile_path: Path) -> None:
    e = explain("llama-3.1-8b", "h100-sxm", profile=profile_path)
    doc = e.to_json_dict()
    assert doc["profile"]["name"] == "p.toml"  # type: ignore[index]
    assert "`p.toml`" in e.to_markdown() and doc["profile"]["data_sha256"] in e.to_markdown()  # type: ignore[index]
    assert explain("llama-3.1-8b", "h100-sxm").to_json_dict()["profile"] is None


def test_cli_flag_end_to_end(profile_path: Path) -> None:
    runner = CliRunner()
    base = ["analyze", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--json"]
    # No --efficiency typed: the flag's default (ideal) must not count as given, nor refuse the profile.
    ok = runner.invoke(app, [*base, "--profile", str(profile_path)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["efficiency"] == "calibrated" and doc["profile"]["name"] == "p.toml"
    _memory_times_at(Report.model_validate(doc), _eta(profile_path))
    won = runner.invoke(app, [*base, "--profile", str(profile_path), "--eta-memory", "0.8"])
    _memory_times_at(Report.model_validate(json.loads(won.stdout)), 0.8)
    refused = runner.invoke(app, [*base, "--profile", str(profile_path), "--efficiency", "ideal"])
    assert refused.exit_code != 0 and "profile" in refused.output
    assert json.loads(runner.invoke(app, base).stdout)["profile"] is None


@pytest.mark.parametrize("command", [["sweep", "--batch", "1,2"], ["critical-batch"], ["quant", "--batch", "1,2"],
                                     ["serving", "--concurrency", "2", "--method", "steady"], ["explain"]])
def test_every_command_takes_the_profile_and_names_it(profile_path: Path, command: list[str]) -> None:
    runner = CliRunner()
    base = [*command, "-m", "llama-3.1-8b", "-H", "h100-sxm", "--json"]
    used = runner.invoke(app, [*base, "--profile", str(profile_path)])
    assert used.exit_code == 0, used.output
    doc = json.loads(used.stdout)
    assert doc["profile"]["name"] == "p.toml" and len(doc["profile"]["data_sha256"]) == 64
    assert "profile" not in (doc.get("overrides") or {})  # quant: shown in its own key
    assert json.loads(runner.invoke(app, base).stdout)["profile"] is None
