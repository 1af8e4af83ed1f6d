"""Raters in a real Chromium: keyboard only, blind, nothing lost when the page closes, bad links refused.

Needs Playwright for Python and Debian's Chromium (/usr/bin/chromium); skips without them.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from tests.evaluate.human._factory import eval_run_with_outputs
from tunesmith.evaluate.human import create_task, task_results
from tunesmith.store import queries
from tunesmith.web.rating.testing import rating_app

pytestmark = pytest.mark.browser
MODEL_NAMES = ("zebra-tuned-7", "okapi-base-3")


@pytest.fixture(scope="module")
def server_url():
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(rating_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the rating app did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


# `browser`: the session's one headless Chromium (tests/web/conftest.py).


def _rate_with_keyboard(page, count: int) -> None:
    """Rate `count` items: prefer the answer ending "one)", score it 4 and the other 2, press Enter."""
    from playwright.sync_api import expect

    for _ in range(count):
        expect(page.locator("#work")).to_be_visible()
        done = int(re.match(r"(\d+) of", page.locator("#progress-text").inner_text()).group(1))
        left_is_better = "one)" in page.locator("#left").inner_text()
        page.keyboard.press("a" if left_is_better else "b")
        page.keyboard.press("4" if left_is_better else "2")  # answer A (outlined first)
        page.keyboard.press("2" if left_is_better else "4")  # then answer B
        page.keyboard.press("Enter")
        expect(page.locator("#progress-text")).to_have_text(re.compile(rf"^{done + 1} of \d+ done$"))


def _record_traffic(page) -> list:
    seen: list = []
    page.on("request", lambda request: seen.append(("request", request.url, request.post_data or "")))
    page.on("response", lambda response: seen.append(("response", response)))
    return seen


def _texts(seen) -> list[str]:
    texts = []
    for entry in seen:
        if entry[0] == "request":
            texts += [entry[1], entry[2]]
        else:
            texts += [entry[1].url, entry[1].text(), str(entry[1].all_headers())]
    return texts


def test_two_raters_rate_with_the_keyboard_and_never_see_a_model_name(browser, server_url):
    from playwright.sync_api import expect

    created = create_task(eval_run=eval_run_with_outputs(6), raters=["ana", "ben"], overlap=0.5, link_base=server_url)
    for rater, link in created.links:
        context = browser.new_context()
        page = context.new_page()
        seen = _record_traffic(page)
        page.goto(link)
        expect(page.locator("#progress-text")).to_have_text(re.compile(r"^0 of \d+ done$"))
        total = int(re.search(r"of (\d+)", page.locator("#progress-text").inner_text()).group(1))
        _rate_with_keyboard(page, total)
        expect(page.locator("#done")).to_be_visible()
        for text in _texts(seen) + [page.content()]:
            for name in (*MODEL_NAMES, created.task.id):
                assert name not in text, (rater, name)
        context.close()
    results = task_results(created.task.id)
    assert results["progress"]["ratings"] == results["progress"]["assignments"] == 9
    assert results["pairwise"]["win_rates"][0]["win_rate"] == 1.0  # every choice went where it was meant to
    assert results["scale"]["means"][0]["mean"] == 4.0 and results["scale"]["means"][1]["mean"] == 2.0


def test_closing_the_page_midway_loses_no_rating(browser, server_url):
    from playwright.sync_api import expect

    created = create_task(eval_run=eval_run_with_outputs(5), raters=["ana"], mode="pairwise", link_base=server_url)
    link = created.links[0][1]
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    expect(page.locator("#progress-text")).to_have_text("0 of 5 done")
    for expected in (1, 2):
        page.keyboard.press("t")
        page.keyboard.press("Enter")
        expect(page.locator("#progress-text")).to_have_text(f"{expected} of 5 done")
    page.keyboard.press("a")  # chosen but not saved: this one is not a rating yet
    context.close()
    assert len(queries.task_ratings(created.task.id)) == 2
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    expect(page.locator("#progress-text")).to_have_text("2 of 5 done")
    context.close()


def test_a_wrong_or_closed_link_is_refused(browser, server_url):
    created = create_task(eval_run=eval_run_with_outputs(2), raters=["ana"], link_base=server_url)
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{server_url}/rate/not-a-real-token")
    assert response.status == 404 and "not valid" in page.locator("#refused").inner_text()
    queries.close_rating_task(created.task.id)
    response = page.goto(created.links[0][1])
    assert response.status == 410 and "no longer works" in page.locator("#refused").inner_text()
    context.close()
