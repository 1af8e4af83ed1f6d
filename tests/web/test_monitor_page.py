"""The Monitor page: past runs listed, a run's windows charted (uPlot in real Chromium) with
its answer; an unknown run is a 404 page."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import pytest

from tunesmith.monitor import monitor
from tunesmith.store.queries import add_served_requests

from ..monitor._real import banking77, need_data, restaurant8k


@pytest.fixture
def monitored(tmp_path):
    data = need_data()
    rows = list(csv.DictReader(open(data / "banking77" / "train.csv", encoding="utf-8")))[::10]
    reference = tmp_path / "train.csv"
    with open(reference, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows(rows)
    texts, truth = banking77("test")
    other = restaurant8k("test")
    now = datetime.now(timezone.utc)
    requests = []
    for day in range(4):  # four daily windows, the share of restaurant bookings growing
        for k in range(60):
            off_domain = k < 15 * day
            text = other[day * 60 + k] if off_domain else texts[day * 60 + k]
            requests.append(dict(api="openai", model="support", status_code=200,
                                 time=now - timedelta(days=3 - day, hours=12, minutes=k),
                                 input_messages={"turns": [{"role": "user", "text": text}]},
                                 output_text=truth[day * 60 + k]))
    add_served_requests(requests)
    return monitor("support", since="4d", window="1d", reference=reference, estimate_cost=False, now=now)


def test_runs_list_and_run_page(client, monitored):
    listing = client.get("/monitor")
    assert listing.status_code == 200 and monitored.id in listing.text and "support" in listing.text
    page = client.get(f"/monitor/{monitored.id}")
    assert page.status_code == 200
    assert monitored.answer.headline in page.text and 'id="chart-windows"' in page.text
    assert client.get("/monitor/mon-nothing-here").status_code == 404
    assert client.get("/monitor/..%2F..%2Fetc").status_code == 404


def test_empty_list_says_how_to_make_a_run(client):
    assert "No monitor runs yet" in client.get("/monitor").text


@pytest.mark.browser
def test_run_page_draws_the_windows_in_chromium(page, monitored):
    response = page.goto(f"/monitor/{monitored.id}")
    assert response.status == 200
    page.wait_for_selector("#chart-windows .uplot canvas")
    assert page.locator("#windows tbody tr").count() == 4
    assert page.locator("#answer h2").inner_text() == monitored.answer.headline
    page.goto("/monitor")
    page.click(f"a:text('{monitored.id}')")
    page.wait_for_selector("#chart-windows .uplot")
    assert page.problems == []
