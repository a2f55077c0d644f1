"""The page in a real browser: Debian's chromium driven by Playwright against `rooflm serve` on loopback.

Skipped, with the reason, where chromium or Playwright is missing (`.ci/run` installs both).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run the browser "
                "test; Playwright cannot download its own browser here", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
httpx = pytest.importorskip("httpx")

from rooflm.specs.hardware import HARDWARE_DIR  # noqa: E402  (after the skips: the module may not run at all)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Moving a range input the way a user's drag ends: set its value and fire the input event.
ERROR_SAYS = "(words) => !document.getElementById('error').hidden && " \
             "document.getElementById('error').textContent.includes(words)"
MOVE = "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Built once per run: conftest.WORKER_UNITS sends this module's tests to one xdist worker.
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from rooflm.cli import app; app()", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/schemes", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"rooflm serve did not start: {output}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# One chromium for the module (a launch is about a second); each test opens its page in a fresh context, so no
# state (inputs, storage) carries from one test to the next.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def _loaded_page(chromium: Any, server: str) -> Iterator[Any]:
    """The page in a fresh browser context, its first roofline drawn; on leaving, no script error may have been
    thrown on it."""
    errors: list[str] = []
    context = chromium.new_context(viewport={"width": 1440, "height": 1100})
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    page.wait_for_function("Number(document.getElementById('roofline').dataset.renders) >= 1", timeout=30_000)
    yield page
    context.close()
    assert not errors, errors


def test_batch_slider_moves_the_step_from_memory_to_compute_bound(chromium: Any, server: str, tmp_path: Path) -> None:
    with _loaded_page(chromium, server) as page:
        chart = page.locator("#roofline")

        page.select_option("#model", "llama-3.1-8b")
        page.select_option("#hardware", "h100-sxm")
        page.locator("#context").evaluate(MOVE, "7")  # 2^7 = 128 tokens: short, so batch decides the bound
        page.locator("#batch").evaluate(MOVE, "0")  # batch 1
        page.wait_for_function("document.getElementById('roofline').dataset.batch === '1' && "
                               "document.getElementById('context-value').textContent === '128'", timeout=30_000)
        assert page.text_content("#bound") == "memory"
        renders = int(chart.get_attribute("data-renders") or 0)
        before = chart.screenshot()
        page.screenshot(path=str(tmp_path / "batch-1.png"), full_page=True)

        page.locator("#batch").evaluate(MOVE, "10")  # 2^10 = 1024
        page.wait_for_function("document.getElementById('roofline').dataset.batch === '1024'", timeout=30_000)
        assert page.text_content("#batch-value") == "1,024"
        assert page.text_content("#bound") == "compute"
        assert int(chart.get_attribute("data-renders") or 0) > renders  # the chart was drawn again …
        assert chart.screenshot() != before  # … and shows something else
        assert "B=1,024, compute-bound" in (chart.text_content() or "")
        page.screenshot(path=str(tmp_path / "batch-1024.png"), full_page=True)

        # A mistake shows a message naming the field, and the page keeps working.
        page.select_option("#model", "__config__")
        page.fill("#config", '{"model_type": "llama"}')
        # The empty box may be sent first (on a slow machine the fill lands after the debounce): wait for the answer
        # to the filled one.
        page.wait_for_function(ERROR_SAYS, arg="has no 'hidden_size'", timeout=30_000)
        assert (page.text_content("#error") or "").startswith("config: config has no 'hidden_size'")
        page.select_option("#model", "qwen3-8b")
        page.wait_for_selector("#error[hidden]", state="attached", timeout=30_000)

        # A device pasted as TOML (the server opens no file): a broken one names the field, a good one is used.
        page.select_option("#hardware", "__hardware_toml__")
        page.fill("#hardware_toml", "name = ")
        page.wait_for_function(ERROR_SAYS, arg="not valid TOML", timeout=30_000)
        assert (page.text_content("#error") or "").startswith("hardware_toml: hardware_toml is not valid TOML")
        page.fill("#hardware_toml", (HARDWARE_DIR / "h200.toml").read_text())
        page.wait_for_selector("#error[hidden]", state="attached", timeout=30_000)

        # A `rooflm fit` profile loaded from a file (read by the page, sent as profile_toml): offered in calibrated
        # mode, and the page names it once the server predicted with it.
        page.select_option("#hardware", "h100-sxm")
        assert not page.is_visible("#profile_toml")
        page.select_option("#efficiency", "calibrated")
        (tmp_path / "bench.toml").write_text('[profile]\ndata_sha256 = "0123456789abcdef"\n'
                                             '[devices."h100-sxm".parameters.eta_memory]\nvalue = 0.5\n')
        page.set_input_files("#profile_toml", str(tmp_path / "bench.toml"))
        page.wait_for_function("() => document.getElementById('profile-line').textContent.includes('predicting')",
                               timeout=30_000)
        assert page.text_content("#profile-line") == "predicting with profile bench.toml (data sha256 0123456789ab…)"
        page.wait_for_selector("#error[hidden]", state="attached", timeout=30_000)
    for name in ("batch-1.png", "batch-1024.png"):
        assert (tmp_path / name).stat().st_size > 50_000


PANEL_BODIES = json.loads((Path(__file__).parent / "serving_panel_bodies.json").read_text())
SERVING_ERROR_SAYS = "(words) => !document.getElementById('serving-error').hidden && " \
                     "document.getElementById('serving-error').textContent.includes(words)"


def _run_serving(page: Any) -> dict[str, Any]:
    """Press the panel's button; the body the page sent to /api/serving."""
    with page.expect_request(lambda r: r.url.endswith("/api/serving") and r.method == "POST") as sent:
        page.click("#serving-run")
    return dict(json.loads(sent.value.post_data or "{}"))


def test_serving_panel_runs_a_traffic_and_keeps_inputs_on_a_mistake(chromium: Any, server: str, tmp_path: Path) -> None:
    with _loaded_page(chromium, server) as page:
        chart = page.locator("#serving-chart")

        # Three closed-loop loads, simulated: three rows, three labelled markers, the notes.
        page.fill("#serving-prompt_len", "uniform:100:400")
        page.fill("#serving-gen_len", "32")
        page.fill("#serving-loads", "1,4,16")
        page.fill("#serving-requests", "100")
        assert _run_serving(page) == PANEL_BODIES["simulate_concurrency"]
        page.wait_for_function("document.getElementById('serving-chart').dataset.renders === '1'", timeout=60_000)
        assert page.locator("#serving-table tbody tr").count() == 3
        assert [page.text_content(f"#serving-table tbody tr:nth-child({i}) td:first-child") for i in (1, 2, 3)] == \
            ["1", "4", "16"]
        assert chart.get_attribute("data-points") == "3"
        assert chart.locator(".scatterlayer path.point").count() == 3
        assert "llama-3.1-8b · h100-sxm · bf16 · prompt uniform:100:400, 32 output tokens" in (chart.text_content() or "")
        assert page.locator("#serving-notes li").count() >= 2
        page.screenshot(path=str(tmp_path / "serving.png"), full_page=True)

        # A wrong length: the API's message in one line naming the field, the input marked, every input kept and
        # the last good points kept (greyed out).
        page.fill("#serving-prompt_len", "uniform:9:1")
        _run_serving(page)
        page.wait_for_function(SERVING_ERROR_SAYS, arg="HI must be at least LO", timeout=30_000)
        assert (page.text_content("#serving-error") or "").startswith("prompt_len: ")
        assert "\n" not in (page.text_content("#serving-error") or "")
        assert "invalid" in (page.get_attribute("#serving-prompt_len", "class") or "")
        assert [page.input_value(f"#serving-{f}") for f in ("prompt_len", "gen_len", "loads", "requests")] == \
            ["uniform:9:1", "32", "1,4,16", "100"]
        assert page.locator("#serving-table tbody tr").count() == 3
        assert "stale" in (page.get_attribute("#serving-results", "class") or "")

        # Request rates by the steady-state model, with engine limits: five rows, the error gone.
        page.fill("#serving-prompt_len", "1024")
        page.select_option("#serving-load", "request_rate")
        assert page.input_value("#serving-loads") == "1,2,4,8,16"
        page.select_option("#serving-method", "steady")
        assert not page.is_visible("#serving-requests")
        page.fill("#serving-max_running", "64")
        page.fill("#serving-max_num_batched_tokens", "2048")
        assert _run_serving(page) == PANEL_BODIES["steady_request_rate"]
        page.wait_for_function("document.getElementById('serving-chart').dataset.renders === '2'", timeout=60_000)
        page.wait_for_selector("#serving-error[hidden]", state="attached", timeout=30_000)
        assert page.locator("#serving-table tbody tr").count() == 5
        assert page.text_content("#serving-load-head") == "requests/s"
        assert "invalid" not in (page.get_attribute("#serving-prompt_len", "class") or "")

        # Disaggregated prefill/decode: a wrong split names its field; a right one (over the intra-node link) is run.
        assert not page.is_visible("#serving-kv_link")
        page.fill("#serving-disaggregate", "2P")
        _run_serving(page)
        page.wait_for_function("!document.getElementById('serving-error').hidden", timeout=30_000)
        assert (page.text_content("#serving-error") or "").startswith("disaggregate: ")
        assert "invalid" in (page.get_attribute("#serving-disaggregate", "class") or "")
        page.fill("#serving-disaggregate", "1P:1D")
        page.select_option("#serving-kv_link", "intra_node")
        assert _run_serving(page) == PANEL_BODIES["steady_disaggregated"]
        page.wait_for_function("document.getElementById('serving-chart').dataset.renders === '3'", timeout=60_000)
        page.wait_for_selector("#serving-error[hidden]", state="attached", timeout=30_000)
        assert "disaggregated 1P:1D" in (chart.text_content() or "")
        assert page.locator("#serving-table tbody tr").count() == 5
    assert (tmp_path / "serving.png").stat().st_size > 50_000
