"""The rating page's routes through FastAPI's test client: blind responses and refusals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.evaluate.human._factory import eval_run_with_outputs
from tunesmith.evaluate.human import create_task
from tunesmith.store import queries
from tunesmith.web.rating.testing import rating_app

MODEL_NAMES = ("zebra-tuned-7", "okapi-base-3")


@pytest.fixture
def client():
    return TestClient(rating_app())


def _blind(text: str, task_id: str) -> None:
    for secret in (*MODEL_NAMES, task_id, '"model"', '"baseline"', "first_model", "example_id", "ex1"):
        assert secret not in text, secret


def test_the_page_and_its_json_name_no_model_and_no_id(client):
    created = create_task(eval_run=eval_run_with_outputs(3), raters=["ana"], instructions="Correctness first.")
    token = created.links[0][1].rsplit("/", 1)[1]
    page = client.get(f"/rate/{token}")
    assert page.status_code == 200 and "Correctness first." in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    _blind(page.text, created.task.id)
    state = client.get(f"/rate/{token}/next").json()
    assert set(state["item"]) == {"n", "input", "reference", "left", "right"}
    _blind(client.get(f"/rate/{token}/next").text, created.task.id)
    answer = client.post(f"/rate/{token}/ratings", json={"n": state["item"]["n"], "choice": "tie",
                                                         "left_score": 3, "right_score": 3})
    assert answer.status_code == 200 and answer.json()["done"] == 1
    _blind(answer.text, created.task.id)
    assert client.get("/rate-assets/rating.js").status_code == 200


def test_refusals_have_their_status_and_a_sentence(client):
    created = create_task(eval_run=eval_run_with_outputs(2), raters=["ana"])
    token = created.links[0][1].rsplit("/", 1)[1]
    assert client.get("/rate/wrong-token").status_code == 404
    assert client.get("/rate/wrong-token/next").json()["error"] == "this rating link is not valid"
    first = {"n": 1, "choice": "left", "left_score": 5, "right_score": 1}
    assert client.post(f"/rate/{token}/ratings", json={"n": 1, "choice": "left"}).status_code == 422
    assert client.post(f"/rate/{token}/ratings", json={**first, "left_score": 9}).status_code == 422
    assert client.post(f"/rate/{token}/ratings", json=first).status_code == 200
    again = client.post(f"/rate/{token}/ratings", json=first)
    assert again.status_code == 409 and "rated already" in again.json()["error"]
    assert len(queries.task_ratings(created.task.id)) == 1
    queries.close_rating_task(created.task.id)
    closed = client.get(f"/rate/{token}")
    assert closed.status_code == 410 and "no longer works" in closed.text
