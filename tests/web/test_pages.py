"""The pages over HTTP (no browser): every page renders, unknown ids get a 404 page, text from
the data stays text, the guard refuses what it should, the stage rule holds, the stream streams."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from tunesmith.store import queries

from .conftest import IMG, LOOPBACK, SCRIPT


def pages(f) -> list[str]:
    return ["/", "/datasets", f"/datasets/{f.dataset}", f"/datasets/{f.dataset}/examples?split=train",
            f"/datasets/{f.dataset}/examples?split=quarantine", "/jobs", f"/jobs/{f.done_job}", f"/jobs/{f.failed_job}",
            f"/jobs/{f.remote_job}", "/models", f"/models/{f.model}", f"/models/{f.other_model}", "/evals",
            f"/evals/{f.eval_run}", f"/evals/{f.eval_run}/items?view=wins", "/jobs?status=succeeded&q=tiny",
            "/models?stage=candidate&q=tickets", "/evals?verdict=no_difference"]


def test_every_page_renders(client, filled):
    for path in pages(filled):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[-800:])
        assert "<nav>" in response.text and "Traceback" not in response.text


def test_pages_show_what_the_store_holds(client, filled):
    job = client.get(f"/jobs/{filled.done_job}").text
    assert "stopped_early" in job and "learning_rate: 0.0002" in job  # state and resolved spec
    data = json.loads(job.split('id="job-data">')[1].split("</script>")[0])
    assert len(data["rows"]) == 24 and data["rows"][0][1] == 1 and not data["live"]
    assert any(e["kind"] == "stopped_early" and e["data"]["best_step"] == 10 for e in data["events"])
    assert "waiting for quota" in client.get(f"/jobs/{filled.remote_job}").text  # Vertex AI's state and sub-state
    model = client.get(f"/models/{filled.model}").text
    assert filled.dataset in model and filled.done_job in model and filled.eval_run in model and "2.2" in model
    dataset = client.get(f"/datasets/{filled.dataset}").text
    assert "sealed" in dataset and "dedupe" in dataset
    evaluation = client.get(f"/evals/{filled.eval_run}").text
    assert "no difference on accuracy" in evaluation and "mcnemar-exact" in evaluation and "25.0% – 75.0%" in evaluation


def test_unknown_ids_get_a_404_page(client, filled):
    for path in ["/jobs/job-nope", "/models/mv-nope", "/evals/ev-nope", "/datasets/0000", "/no/such/page",
                 "/datasets/0000/report", "/jobs/job-nope/stream", f"/datasets/{filled.dataset}/examples?split=nope"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text and "Traceback" not in response.text
    assert client.get("/jobs?status=bogus").status_code == 400
    assert "page" in client.get("/jobs?page=abc").text


def test_text_from_the_data_is_never_markup(client, filled):
    for path in [f"/datasets/{filled.dataset}/examples?split=train&page={p}" for p in range(1, 10)] + \
                [f"/datasets/{filled.dataset}/examples?split={s}" for s in ("validation", "test")] + \
                [f"/jobs/{filled.done_job}", f"/jobs/{filled.failed_job}", f"/models/{filled.model}",
                 f"/evals/{filled.eval_run}", f"/evals/{filled.eval_run}/items?q=answer"]:
        text = client.get(path).text
        assert SCRIPT not in text and IMG not in text, path
    shown = "".join(client.get(f"/datasets/{filled.dataset}/examples?split={s}&page={p}").text
                    for s in ("train", "validation", "test") for p in range(1, 10))
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in shown


def test_the_per_example_browser_filters_searches_and_pages(client, filled):
    def ids(query: str) -> list[str]:
        text = client.get(f"/evals/{filled.eval_run}/items?{query}", headers={"HX-Request": "true"}).text
        return [part.split("<")[0] for part in text.split('<span class="id">')[1:]]

    assert ids("view=wins") == ["ex-0", "ex-4", "ex-8"]
    assert ids("view=losses") == ["ex-1", "ex-5", "ex-9"]
    assert ids("view=ties") == ["ex-2", "ex-3", "ex-6", "ex-7", "ex-10", "ex-11"]
    assert ids("view=errors") == ["ex-1", "ex-3", "ex-5", "ex-7", "ex-9", "ex-11"]
    assert ids("q=ANSWER 1") == ["ex-1", "ex-10", "ex-11"]
    assert ids("q=100%25") == []  # a LIKE wildcard is searched for, not obeyed
    assert ids("view=all") == [f"ex-{i}" for i in range(10)] and ids("page=2") == ["ex-10", "ex-11"]
    assert client.get(f"/evals/{filled.eval_run}/items?view=nope").status_code == 400


def test_job_filters_and_paging(client, filled):
    for i in range(60):
        queries.create_job("local", {}, f"/tmp/r{i}", "other-base", "lora")
    first = client.get("/jobs").text
    assert "1–50 of 63" in first and "next" in first
    assert "51–63 of 63" in client.get("/jobs?page=2").text
    assert "past the end" in client.get("/jobs?page=9").text
    restored = client.get("/jobs?status=failed", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<nav>" in restored.text  # the back button gets the whole page
    only = client.get("/jobs?status=failed", headers={"HX-Request": "true"}).text
    assert filled.failed_job in only and filled.done_job not in only and "<nav>" not in only  # a fragment
    assert "1–1 of 1" in client.get(f"/jobs?q={filled.remote_job}").text


def test_at_most_one_production_model_per_family(client, filled):
    assert client.post(f"/models/{filled.model}/stage", data={"stage": "production"}).status_code == 200
    refused = client.post(f"/models/{filled.other_model}/stage", data={"stage": "production"},
                          headers={"HX-Request": "true"})
    assert refused.status_code == 400 and "already in production" in refused.text
    assert queries.get_model(filled.other_model).stage == "candidate"
    # another family may have its own production model
    assert client.post(f"/models/{filled.other_model}/family", data={"family": "tickets-b"}).status_code == 200
    assert client.post(f"/models/{filled.other_model}/stage", data={"stage": "production"}).status_code == 200
    # and cannot move into a family that has one
    assert client.post(f"/models/{filled.other_model}/family", data={"family": ""}).status_code == 400
    assert client.post(f"/models/{filled.model}/stage", data={"stage": "bogus"}).status_code == 400


def test_state_changes_from_other_sites_are_refused(client, filled):
    url = f"/models/{filled.model}/stage"
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}):
        response = client.post(url, data={"stage": "staging"}, headers=headers)
        assert response.status_code == 403, headers
    assert queries.get_model(filled.model).stage == "candidate"
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": LOOPBACK}, {}):
        assert client.post(url, data={"stage": "staging"}, headers=headers).status_code == 200, headers


def test_a_loopback_app_answers_only_loopback_host_names(client):
    assert client.get("/", headers={"Host": "rebound.example:7860"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:7860"}).status_code == 200


def test_with_a_key_every_page_needs_it_and_the_browser_keeps_it_in_a_cookie(filled):
    from fastapi.testclient import TestClient

    from tunesmith.errors import BadInputError
    from tunesmith.web import UiConfig
    from tunesmith.web.app import create_app

    with pytest.raises(BadInputError, match="without an API key"):
        create_app(UiConfig(host="0.0.0.0"))
    app = create_app(UiConfig(host="0.0.0.0", api_key="s3cret"))
    with TestClient(app, base_url="http://tunesmith.lan:7860") as c:
        assert c.get("/jobs").status_code == 401
        assert c.get("/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/static/app.css").status_code == 200  # static files need no key
        opened = c.get("/jobs?status=failed&key=s3cret", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/jobs?status=failed"
        assert "httponly" in opened.headers["set-cookie"].lower() and "samesite=strict" in opened.headers["set-cookie"].lower()
        assert c.get("/jobs").status_code == 200  # the cookie from here on


def test_the_stream_sends_rows_events_and_the_end(client, filled):
    with client.stream("GET", f"/jobs/{filled.done_job}/stream?after_metric=0&after_event=0") as response:
        body = "".join(response.iter_text())
    events = [block for block in body.split("\r\n\r\n") if block.strip()]
    kinds = [line.split(": ", 1)[1] for block in events for line in block.splitlines() if line.startswith("event:")]
    assert kinds == ["metrics", "events", "status", "end"]
    rows = json.loads(next(b for b in events if "event: metrics" in b).split("data: ", 1)[1])
    assert len(rows) == 24
    # a reconnecting browser says where it was: nothing is sent twice
    last = rows[-1][0]
    with client.stream("GET", f"/jobs/{filled.done_job}/stream", headers={"Last-Event-ID": f"{last}.999999"}) as response:
        again = "".join(response.iter_text())
    assert "event: metrics" not in again and "event: end" in again


def test_missing_javascript_is_said_on_every_page(client, filled, monkeypatch):
    from fastapi.testclient import TestClient

    from tunesmith.web import app as web_app

    monkeypatch.setattr(web_app, "VENDOR_FILES", ("htmx.min.js", "not-there.js"))
    with TestClient(web_app.create_app(), base_url=LOOPBACK) as c:
        text = c.get("/").text
    assert "not-there.js missing" in text and "make" in text


def test_a_section_plugs_in_with_its_router_and_nav_link(filled):
    from fastapi import APIRouter
    from fastapi.testclient import TestClient

    from tunesmith.web.app import Section, create_app, default_sections
    from tunesmith.web.pages import render

    router = APIRouter()

    @router.get("/extra")
    def extra(request: Request):
        return render(request, "error.html", {"status": 200, "message": "an extra page"})

    app = create_app(sections=[*default_sections(), Section(router, nav=("Extra", "/extra"), open_prefixes=("/extra",))])
    with TestClient(app, base_url=LOOPBACK) as c:
        assert '<a href="/extra"' in c.get("/").text and "an extra page" in c.get("/extra").text


def test_cancel_and_resume_refuse_what_cannot_be_done(client, filled):
    refused = client.post(f"/jobs/{filled.done_job}/cancel", headers={"HX-Request": "true"})
    assert refused.status_code == 400 and "already ended" in refused.text and "<nav>" not in refused.text
    assert "only a failed or cancelled job" in client.post(f"/jobs/{filled.done_job}/resume").text
    assert client.post("/jobs/job-nope/cancel").status_code == 404
