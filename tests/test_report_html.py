"""`report --format html`: one self-contained page that a browser renders with no console error."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from usage_synth import write_known_log

pytest.importorskip("plotly", reason="report --format html needs plotly (the [html] extra)")


def _monthly_page(log: Path, capsys) -> Path:
    """The monthly HTML report of ``log`` (until 2025-10-15), written beside it as a .html file."""
    code = main(["report", "--period", "month", "--log", str(log), "--until", "2025-10-15", "--format", "html",
                 "--policy", "default"])
    out = capsys.readouterr().out
    assert code == 0
    path = log.with_suffix(".html")
    path.write_text(out, encoding="utf-8")
    return path


@pytest.fixture()
def page(tmp_path, capsys) -> Path:
    return _monthly_page(write_known_log(tmp_path / "known.jsonl"), capsys)


def test_the_page_is_self_contained(page):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count('class="plotly-graph-div"') == 3
    assert not re.search(r"<script[^>]*\bsrc\s*=|<link\b|<img\b|<iframe\b", text)  # nothing to fetch when viewed
    assert "Monthly usage report and recommendations" in text and "specialists/dbt-expert" in text
    assert "move to specialist-broad" in text and "exceedance_rate_95" in text  # recommendations with evidence


HOSTILE_NAMES = ('<a href="https://example.com/x">click</a>', "x<b>bold</b>", "p&amp;q", "&mu;<br>line")
"""Agent names from a usage log (many hands write it) that plotly would read as markup."""


@pytest.fixture()
def hostile_page(tmp_path, capsys) -> Path:
    log = tmp_path / "hostile.jsonl"
    with open(log, "w", encoding="utf-8") as out:
        for day in range(1, 6):
            for name in HOSTILE_NAMES:
                out.write(json.dumps({"timestamp": f"2025-10-0{day}T00:00:00Z", "agent": name, "profile": "p",
                                      "tier": "simple", "budget": 1000, "tokens_loaded": 900,
                                      "scopes": {"<i>scope</i>": 600, "global": 300}}) + "\n")
    return _monthly_page(log, capsys)


def _figure_strings(text: str) -> list[str]:
    """Every string in the page's plotly traces (the data argument of each ``Plotly.newPlot``), decoded."""
    decoder = json.JSONDecoder()
    found: list[str] = []
    for call in re.finditer(r'Plotly\.newPlot\(\s*"[^"]*",\s*', text):
        stack = [decoder.raw_decode(text, call.end())[0]]
        while stack:
            item = stack.pop()
            if isinstance(item, (list, dict)):
                stack.extend(item.values() if isinstance(item, dict) else item)
            elif isinstance(item, str):
                found.append(item)
    assert found
    return found


def test_names_from_the_log_are_shown_as_they_are_never_as_markup(hostile_page):
    strings = _figure_strings(hostile_page.read_text())
    escaped = {name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for name in HOSTILE_NAMES}
    assert escaped <= set(strings)  # plotly turns &lt; &gt; &amp; back into the characters it shows
    assert "&lt;i&gt;scope&lt;/i&gt;" in strings
    assert not set(HOSTILE_NAMES) & set(strings)  # a name as it is would be read as a link, bold, a line break


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.slow
def test_headless_chromium_renders_it_without_console_errors(page, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright drives the browser")
    browser_path = _chromium()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (.ci/run installs the `chromium` package)")
    errors: list[str] = []
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            view = browser.new_page(viewport={"width": 1200, "height": 900})
            view.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            view.on("pageerror", lambda e: errors.append(str(e)))
            view.on("request", lambda r: errors.append(f"fetched {r.url}") if not r.url.startswith("file:") else None)
            view.goto(page.as_uri())
            view.wait_for_selector(".plotly-graph-div .main-svg", timeout=30000)
            rendered = view.locator(".plotly-graph-div .main-svg").count()
            shot = Path(os.environ.get("CTXBUDGET_ARTIFACTS", tmp_path)) / "report-month.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            view.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert rendered >= 3
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_headless_chromium_shows_hostile_names_as_text(hostile_page):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright drives the browser")
    browser_path = _chromium()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (.ci/run installs the `chromium` package)")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            view = browser.new_page(viewport={"width": 1200, "height": 900})
            view.goto(hostile_page.as_uri())
            view.wait_for_selector(".plotly-graph-div .main-svg", timeout=30000)
            links = view.locator(".plotly-graph-div a").count()
            texts = view.evaluate("Array.from(document.querySelectorAll('.plotly-graph-div text'))"
                                  ".map(t => t.textContent)")
        finally:
            browser.close()
    assert links == 0
    assert set(HOSTILE_NAMES) <= set(texts) and "<i>scope</i>" in texts
