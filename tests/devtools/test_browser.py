"""The web UI in real headless Chromium (Debian's ``chromium``, driven by Playwright; no browser
download): a run appears live, opens as a tree, shows its infrastructure spans on request and an
error's stack on click."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cruxcelery.devtools.server import DevtoolsServer
from tests.devtools.helpers import RunBuilder, iso, post

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT, BOUNDARY, CHILD = "00000000000000a1", "00000000000000b2", "00000000000000c3"
STACK = 'Traceback (most recent call last):\n  File "tasks/citations.py", line 12, in rank\nValueError: no citations'


@pytest.fixture()
def page(devtools: DevtoolsServer) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()


def failing_child_run() -> tuple[RunBuilder, list[dict[str, Any]]]:
    run = RunBuilder("plan research")
    now = time.time()
    child_segment = "seg_" + "c" * 24
    return run, [
        run.start(),
        run.span_start(ROOT, "plan research", now),
        run.span_start(BOUNDARY, "rank citations", now + 0.1, parent=ROOT, primitive="runtime.celery.task",
                       attributes={"presentation": {"display": "detail"}}),
        run.span_start(CHILD, "rank citations", now + 0.2, parent=BOUNDARY, segment_id=child_segment),
        run.record("span:event", child_segment, spanId=CHILD, eventId="event_00000000000000e1", name="exception",
                   timestamp=iso(now + 0.3),
                   attributes={"exception.type": "ValueError", "exception.stacktrace": STACK}),
        run.record("span:end", child_segment, spanId=CHILD, endedAt=iso(now + 0.3),
                   durationMs=100.0, status="error", error={"message": "no citations", "name": "ValueError"}),
        run.span_end(ROOT, now + 0.5, now),
    ]


def test_the_ui_shows_a_run_live_and_its_tree_infrastructure_and_error_stack(
        page: Any, devtools: DevtoolsServer, api: httpx.Client, tmp_path: Path) -> None:
    page.goto(devtools.url + "/")
    page.wait_for_selector("#live-state.on")  # subscribed to live updates
    run, records = failing_child_run()
    post(api, records)

    page.click(f'tr[data-run-id="{run.run_id}"]')  # waits until the run appears, live
    page.wait_for_selector(f'.row[data-span-id="{ROOT}"]')
    assert page.locator(f'.row[data-span-id="{BOUNDARY}"]').count() == 0  # folded
    assert page.locator(f'.row[data-span-id="{CHILD}"]').get_attribute("data-status") == "error"

    page.check("#infra")
    page.wait_for_selector(f'.row[data-span-id="{BOUNDARY}"]')

    page.click(f'.row[data-span-id="{CHILD}"] .label')
    page.click("details.error-stack summary")
    stack = page.locator("details.error-stack pre.stack")
    assert stack.is_visible()
    assert "ValueError: no citations" in stack.inner_text()

    shot = tmp_path / "devtools-run-detail.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
