"""The product speaks of itself only: no words from how it was made (a tracker's numbers, who built which part, the
name of the question it started from) in its code, tests, docs or benchmarks. Sources cited by a figure (another
project's "vllm-project/vllm issue #10634") are facts and stay."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHERE = ("src", "tests", "docs", "benchmarks", "examples", "README.md")
TEXT = {".py", ".md", ".toml", ".js", ".html", ".css", ".csv", ".json", ".txt", ".yml", ".yaml", ".cfg"}

# A simulation's random `--seed` / `seed=` matches none of these.
PROCESS = re.compile(r"the seed\b|seed says|with_seed|seed_claim|issue [0-9]|session [0-9]", re.IGNORECASE)
# "issue #N" is a citation when the word before it names another project; anything else is the product's own tracker.
ISSUE = re.compile(r"(?:^|([^\s(]*)[\s(\"'`]+)issues?\s+#[0-9]", re.IGNORECASE | re.MULTILINE)
OTHER_PROJECTS = {"vllm", "vllm's", "torch", "fa3", "deepgemm"}


def _files() -> list[Path]:
    out: list[Path] = []
    for name in WHERE:
        path = ROOT / name
        out += [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT]
    return out


def process_words(text: str) -> list[str]:
    hits = [m.group(0) for m in PROCESS.finditer(text)]
    for m in ISSUE.finditer(text):
        before = (m.group(1) or "").lower()
        if "/" not in before and before not in OTHER_PROJECTS:
            hits.append(m.group(0).strip())
    return hits


@pytest.mark.parametrize("text", [
    "the seed's table", "Seed says", "agrees_with_seed", "seed_claim", "(issue 11)", "Issue 12 item 2",
    "after session 14", "Fuzz the command line (issue #10):", "Regression (issue #11): A100", "of issue #3",
])
def test_flags_process_words(text: str) -> None:
    assert process_words(text), text


@pytest.mark.parametrize("text", [
    "rooflm serving --seed 3", "serve_traffic(seed=0)", "a seeded run", '"seed": 1', "the random seed",
    "vllm-project/vllm issue #10634", "(NVIDIA/nccl issue #1264;", "vllm issue #6854", "DeepGEMM issue #136",
])
def test_leaves_product_facts(text: str) -> None:
    assert not process_words(text), text


def test_no_process_words_in_the_product() -> None:
    """Every text file but this one, whose examples above are the words it looks for."""
    found = [f"{p.relative_to(ROOT)}: {hit}" for p in _files() if p != Path(__file__).resolve()
             for hit in process_words(p.read_text(encoding="utf-8", errors="replace"))]
    assert not found, "words from how the product was made:\n" + "\n".join(found)
