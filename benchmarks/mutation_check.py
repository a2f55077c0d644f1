"""Does the test suite catch a wrong formula? Flip one arithmetic operator at a time in the physics modules
(src/rooflm/ops/*.py, roofline.py) and run the tests that exercise them; a mutant the tests still pass "survives".

    python benchmarks/mutation_check.py            # 40 mutants, deterministic sample
    python benchmarks/mutation_check.py --mutants 200 --seed 1

Runs in a temporary copy of the tree (git worktree of HEAD), so the checkout is never modified. A mutant that makes
the code fail to import counts as killed. Run by hand; the figures go in the notes, not in CI.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["src/rooflm/ops/*.py", "src/rooflm/core/roofline.py"]
TESTS = ["tests/ops", "tests/specs", "tests/core/test_roofline.py", "tests/core/test_graph.py",
         "tests/analyses/test_analyze.py", "tests/test_against_torch.py", "tests/core/test_engine.py",
         "tests/core/test_kernel_curves.py", "tests/test_properties.py", "tests/core/test_memory.py"]
SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
        ast.Pow: ast.Mult}


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    col: int
    before: str
    after: str


def mutants(tree_root: Path) -> list[Mutant]:
    """Every binary arithmetic operator in the target files, with its swapped form."""
    found: list[Mutant] = []
    for pattern in TARGETS:
        for path in sorted(tree_root.glob(pattern)):
            source = path.read_text()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.BinOp) and type(node.op) in SWAP:
                    segment = ast.get_source_segment(source, node)
                    if segment is None or "\n" in segment:
                        continue
                    mutated = ast.BinOp(node.left, SWAP[type(node.op)](), node.right)
                    found.append(Mutant(str(path.relative_to(tree_root)), node.lineno, node.col_offset, segment,
                                        ast.unparse(mutated)))
    return found


def apply(tree_root: Path, m: Mutant) -> str:
    """Write the mutant into the copy; return the original text to restore."""
    path = tree_root / m.path
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    line = lines[m.line - 1]
    start = len(line.encode()[: m.col].decode())  # col_offset counts bytes
    assert line[start:start + len(m.before)] == m.before, (m, line)
    lines[m.line - 1] = line[:start] + f"({m.after})" + line[start + len(m.before):]
    path.write_text("".join(lines))
    return original


def killed(tree_root: Path) -> bool:
    # The copy's src must be what the tests import, not the editable install's: PYTHONPATH comes first.
    env = {**os.environ, "PYTHONPATH": str(tree_root / "src")}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *TESTS]
    return subprocess.run(cmd, cwd=tree_root, env=env, capture_output=True, timeout=900).returncode != 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(copy), "HEAD"], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(copy / "src")}
            where = subprocess.run([sys.executable, "-c", "import rooflm; print(rooflm.__file__)"], env=env,
                                   capture_output=True, text=True, check=True).stdout
            assert where.startswith(str(copy)), f"the tests would import {where}, not the copy"
            if killed(copy):
                raise SystemExit("the unmutated copy fails its tests: fix them first")
            everything = mutants(copy)
            chosen = random.Random(args.seed).sample(everything, min(args.mutants, len(everything)))
            survivors: list[Mutant] = []
            started = time.perf_counter()
            for i, m in enumerate(chosen, 1):
                original = apply(copy, m)
                try:
                    if not killed(copy):
                        survivors.append(m)
                finally:
                    (copy / m.path).write_text(original)
                print(f"[{i}/{len(chosen)}] {m.path}:{m.line} {m.before!r} -> {m.after!r}: "
                      f"{'survived' if m in survivors else 'killed'}", flush=True)
            print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants killed ({len(everything)} possible) in "
                  f"{time.perf_counter() - started:.0f} s")
            for m in survivors:
                print(f"  survived: {m.path}:{m.line}: {m.before} -> {m.after}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(copy)], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
