"""The deployments pages over HTTP: the list, one deployment with the gate's sentence, its
decisions and history; an unknown name is a 404; names and sentences stay text."""

from __future__ import annotations

from tunesmith.rollout import create_deployment, rollback, start_rollout
from tunesmith.store.queries import register_model

from .conftest import LOOPBACK  # noqa: F401 - the client fixture's base URL


def _models(tmp_path):
    ids = []
    for name in ("prod-v1", "cand<b>v2</b>"):
        folder = tmp_path / name.replace("<", "").replace(">", "").replace("/", "")
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
        ids.append(register_model(base_model="smollm2-135m", method="lora", spec={}, adapter_path=str(folder),
                                  name=name).id)
    return ids


def test_deployment_pages_show_status_gate_history_and_decisions(client, tmp_path):
    production, candidate = _models(tmp_path)
    assert "No deployments yet" in client.get("/deployments").text
    create_deployment("support-bot", "prod-v1")
    start_rollout("support-bot", candidate, "shadow")
    listing = client.get("/deployments")
    assert listing.status_code == 200 and 'href="/deployments/support-bot"' in listing.text and "running" in listing.text
    page = client.get("/deployments/support-bot").text
    assert "Keep collecting: 0 labeled pairs so far" in page and "<b>v2</b>" not in page and "&lt;b&gt;v2" in page
    rollback("support-bot", sentence="worse on <i>billing</i>")
    page = client.get("/deployments/support-bot").text
    assert "worse on &lt;i&gt;billing&lt;/i&gt;" in page and "no rollout is running" in page
    assert page.index("<b>rollback</b>") < page.index("<b>start</b>") < page.index("<b>create</b>")  # newest first
    missing = client.get("/deployments/nope")
    assert missing.status_code == 404 and "Not found" in missing.text
