"""The commands' file arguments end to end: unreadable inputs and unwritable outputs are one line and exit 2, an
output never replaces an input, and validate and measure check every argument before measuring anything."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rooflm.cli import app

runner = CliRunner()
EXAMPLE = Path(__file__).parents[2] / "examples" / "measurements.csv"


@pytest.fixture
def alarm() -> Iterator[None]:
    def hung(*_: object) -> None:
        raise AssertionError("the command waited on a named pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _one_line(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_fit_refuses_to_write_its_profile_over_its_own_table(tmp_path: Path) -> None:
    table = tmp_path / "self.csv"
    shutil.copy(EXAMPLE, table)
    before = table.read_bytes()
    _one_line(runner.invoke(app, ["fit", str(table), "-o", str(table)]), "inputs", str(table))
    assert table.read_bytes() == before


@pytest.mark.parametrize(("output", "word"), [
    (".", "folder"), ("missing/p.toml", "does not exist"), ("a" * 300 + ".toml", "too long"),
    ("file/p.toml", "not a folder"), ("dangling.toml", "a link to"),
])
def test_fit_output_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str,
                                        word: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    (tmp_path / "dangling.toml").symlink_to(tmp_path / "gone" / "p.toml")
    _one_line(runner.invoke(app, ["fit", str(EXAMPLE), "-o", output]), word)


@pytest.mark.parametrize("argv", [
    ["analyze", "--profile", "PIPE"], ["fit", "PIPE"], ["validate", "--table", "PIPE"], ["analyze", "--model", "PIPE"],
    ["analyze", "--hardware", "PIPE"], ["sweep", "--profile", "PIPE", "--batch", "1,2"],
])
def test_a_named_pipe_is_refused_at_once(tmp_path: Path, alarm: None, argv: list[str]) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    _one_line(runner.invoke(app, [str(pipe) if a == "PIPE" else a for a in argv]), "named pipe")


@pytest.mark.parametrize("argv", [
    ["analyze", "--profile", "/dev/zero"], ["fit", "/dev/zero"], ["validate", "--table", "/dev/zero"],
    ["analyze", "--profile", "/dev/urandom"], ["analyze", "--model", "/dev/zero"],
    ["analyze", "--hardware", "/dev/zero"], ["plot", "roofline", "-o", "x.png", "--profile", "/dev/zero"],
])
def test_endless_devices_are_refused_unread(argv: list[str]) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    _one_line(runner.invoke(app, argv), "character device")


def test_a_table_past_its_bound_is_refused_naming_it(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as fh:
        fh.truncate((64 << 20) + 1)  # sparse: one byte past the 64 MiB bound costs no disk
    _one_line(runner.invoke(app, ["fit", str(big)]), "over 64 MiB")


@pytest.mark.parametrize(("output", "word"), [
    ("missing/f.png", "does not exist"), ("dir.png", "folder"), ("file/f.png", "not a folder"),
])
def test_plot_output_errors_are_one_line_and_come_before_the_figure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, word: str) -> None:
    from rooflm import plot

    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "file").write_text("")

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the figure was computed before the output was checked")

    monkeypatch.setattr(plot, "figure_data", never)
    _one_line(runner.invoke(app, ["plot", "roofline", "-o", output]), word, output)


def test_plot_refuses_to_write_over_its_hardware_file(tmp_path: Path) -> None:
    hw = tmp_path / "hw.png"
    shutil.copy(Path(__file__).parents[2] / "src" / "rooflm" / "data" / "hardware" / "h100-sxm.toml", hw)
    before = hw.read_bytes()
    _one_line(runner.invoke(app, ["plot", "roofline", "-H", str(hw), "-o", str(hw)]), "inputs")
    assert hw.read_bytes() == before


@pytest.fixture
def no_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way validate and measure start timing (or describing) the machine fails the test."""
    from rooflm.measure import bench, machine
    from rooflm.measure import runner as measure_runner

    def measured(*_: object, **__: object) -> None:
        raise AssertionError("measured before checking the arguments")

    for module, name in ((machine, "describe_machine"), (bench, "measure_machine"), (measure_runner, "run_model"),
                         (measure_runner, "run_gemms")):
        monkeypatch.setattr(module, name, measured)


@pytest.mark.parametrize(("argv", "word"), [
    (["validate", "--models", "tiny"], "--models"),
    (["validate", "--models", "dense-tiny", "--hardware", "nope-gpu"], "nope-gpu"),
    (["validate", "--write-table", "missing/t.csv"], "does not exist"),
    (["validate", "--write-table", "."], ".csv"),
    (["validate", "--device", "gpu"], "--device"),
    (["validate", "--quant", "--device", "tpu"], "--device"),
    (["measure", "-o", "missing/m.toml"], "does not exist"),
    (["measure", "-o", "dir.toml"], "folder"),
    (["measure", "--device", "gpu"], "--device"),
])
def test_validate_and_measure_check_arguments_before_measuring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_measuring: None, argv: list[str], word: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.toml").mkdir()
    _one_line(runner.invoke(app, argv), word)
