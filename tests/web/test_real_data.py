"""The dataset pages on a public dataset (skipped when /work/shared/data is absent)."""

from __future__ import annotations

import json

from tunesmith.data.prepare import PrepareOptions, prepare
from tunesmith.store import queries


def test_a_prepared_public_dataset_shows_its_manifest_examples_and_report(client, shared_data, tmp_path):
    # Bitext's responses carry template placeholders such as {{Order Number}}: shown as typed, never evaluated.
    source = shared_data / "bitext-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    prepare([source], tmp_path / "prepared", PrepareOptions(dedupe=True, validation=0.1, test=0.1))
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    version = manifest["dataset_version"]
    queries.record_dataset_version(version, tmp_path / "prepared", manifest)

    page = client.get(f"/datasets/{version}")
    assert page.status_code == 200 and f"{manifest['counts']['train']:,}" in page.text
    assert len(page.text) < 60_000  # the fixes' id lists are counted, not printed
    examples = client.get(f"/datasets/{version}/examples?split=test&page=3").text
    assert "21–30 of" in examples and "{{" in examples
    report = client.get(f"/datasets/{version}/report")
    assert report.status_code == 200 and "script-src 'none'" in report.headers["content-security-policy"]
    assert "<svg" in report.text and "train.jsonl" in report.text
    assert version in client.get("/datasets").text
