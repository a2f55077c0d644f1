"""Rerun the `$ rooflm ...` console examples of the README and the docs and say which printed numbers have drifted.

    python benchmarks/readme_examples.py            # every example, README.md and docs/**/*.md
    python benchmarks/readme_examples.py --match serving
    python benchmarks/readme_examples.py --update   # re-paste the drifted examples' output (then reread the prose)

The outputs are pasted from real runs; a physics or calibration change can move them. For each example,
every number printed in the README's output (e.g. "4.524", "1,878", "55.4") must appear in the output of the same
command run now; the missing ones are listed. Run it after changing the physics, and re-paste what moved.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def pages() -> list[Path]:
    """The README and every page of the docs site, in a stable order."""
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*\.?\d*(?![\w])")


def examples(text: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) for each `$ rooflm` line of a console block, its output up to the next `$` line."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        current: tuple[str, list[str]] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                found.append(current)
            elif current is not None:
                current[1].append(line)
    return [(c, out) for c, out in found if c.startswith("rooflm ")]


def numbers(lines: list[str]) -> set[str]:
    return {m.rstrip(".,") for line in lines for m in NUMBER.findall(line)}


def run(command: str) -> str:
    """The command's output, run in a scratch folder (what it writes, e.g. `fit -o profile.toml`, stays out of the
    checkout) where `examples/` points at the checkout's."""
    argv = [sys.executable, "-c", "from rooflm.cli import app; app()", *shlex.split(command)[1:]]
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "examples").symlink_to(ROOT / "examples")
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=scratch, timeout=600)
    return done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--match", default="", help="Only the examples whose command contains this text.")
    parser.add_argument("--update", action="store_true", help="Replace a drifted example's output in README.md.")
    args = parser.parse_args()
    drifted = 0
    for page in pages():
        text = page.read_text()
        before = text
        for command, shown in examples(text):
            if args.match not in command:
                continue
            output = run(command)
            now = numbers(output.splitlines())
            missing = sorted(numbers(shown) - now)
            if missing and args.update:
                old = "\n".join([f"$ {command}", *shown])
                fresh = [line.rstrip() for line in output.rstrip().splitlines()]
                text = text.replace(old, "\n".join([f"$ {command}", *fresh, ""]) if old.endswith("\n") else
                                    "\n".join([f"$ {command}", *fresh]), 1)
            drifted += bool(missing)
            where = page.relative_to(ROOT)
            print(("ok      " if not missing else "DRIFTED ") + f"{where}: " + command[:100])
            if missing:
                print("        not printed now: " + ", ".join(missing[:30]))
        if args.update and text != before:
            page.write_text(text)
    print(f"{drifted} example(s) drifted")


if __name__ == "__main__":
    main()
