"""Take the screenshots in docs/ui.md: the app on a store with a real training run of a tiny
random model (real curves, not a real model's skill) and the web tests' fixture (a run the
overfitting watch stopped, an evaluation with wins and losses, a dataset with markup in it).

    PYTHONPATH=src:. .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["TUNESMITH_HOME"] = tempfile.mkdtemp(prefix="tunesmith-shots-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

OUT = Path(__file__).resolve().parent / "images"


def tiny_model(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tunesmith.models.catalog import DEFAULT_BASE_MODEL
    from tunesmith.models.embedded import tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(DEFAULT_BASE_MODEL)))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import CHROMIUM_ARGS, fill_store
    from tunesmith.data.prepare import PrepareOptions, prepare
    from tunesmith.examples.tickets import write_tickets
    from tunesmith.store import queries
    from tunesmith.train import jobs
    from tunesmith.train.spec import load_spec
    from tunesmith.web.server import ui_in_background

    work = Path(tempfile.mkdtemp(prefix="tunesmith-shots-data-"))
    write_tickets(work / "tickets.jsonl", n=300, seed=1)
    prepared = work / "prepared"
    prepare([work / "tickets.jsonl"], prepared, PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True,
                                                               validation=0.2, test=0.1))
    filled = fill_store(prepared, markup=False)
    real = jobs.start_job(load_spec(data=prepared, base_model=str(tiny_model(work / "tiny")), batch_size=4,
                                    max_steps=120, eval_interval=10, precision="fp32", name="tickets-tiny"))
    queries.set_model_stage(filled.model, "production")
    OUT.mkdir(exist_ok=True)
    with ui_in_background() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860}, base_url=url)
        shots = [("overview", "/"), ("job", f"/jobs/{real.id}"), ("job-stopped-early", f"/jobs/{filled.done_job}"),
                 ("model", f"/models/{filled.model}"), ("evaluation", f"/evals/{filled.eval_run}"),
                 ("dataset", f"/datasets/{filled.dataset}")]
        for name, path in shots:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"ui-{name}.png"))
            print(f"docs/images/ui-{name}.png  {(OUT / f'ui-{name}.png').stat().st_size // 1024} KB")
        browser.close()


if __name__ == "__main__":
    main()
