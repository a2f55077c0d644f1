"""The page in a real browser: Debian's chromium driven by Playwright against `rooflm serve` on loopback.

Skipped, with the reason, where chromium or Playwright is missing (`.ci/run` installs both).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


def test_batch_slider_moves_the_step_from_memory_to_compute_bound(server: str, tmp_path: Path) -> None:
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        chart = page.locator("#roofline")
        page.wait_for_function("Number(document.getElementById('roofline').dataset.renders) >= 1", timeout=30_000)

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
        browser.close()
    assert not errors, errors
    for name in ("batch-1.png", "batch-1024.png"):
        assert (tmp_path / name).stat().st_size > 50_000
