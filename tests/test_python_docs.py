"""docs/python.md runs as written (on the tiny test model), so the page cannot go stale; and
the public namespace is what the page and `__all__` say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tunesmith

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"
DEFAULT_MODEL_LINE = 'BASE_MODEL = "smollm2-135m-instruct"'


def test_the_python_page_runs_from_data_to_a_served_model(tiny_model_dir, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5 and DEFAULT_MODEL_LINE in blocks[0]
    code = "\n".join(blocks).replace(DEFAULT_MODEL_LINE, f"BASE_MODEL = {str(tiny_model_dir)!r}")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    assert scope["job"].status == "succeeded" and scope["model"].job_id == scope["job"].id
    assert scope["evaluation"].verdict_text and Path(scope["evaluation"].report_path).is_file()
    assert isinstance(scope["reply"].choices[0].message.content, str)
    counts = scope["result"].counts
    assert counts["input_records"] == counts["train"] + counts["validation"] + counts["test"] + counts["quarantine"]


def test_every_public_name_resolves_and_import_stays_light():
    for name in tunesmith.__all__:
        assert getattr(tunesmith, name) is not None, name
    # `import tunesmith` loads no floor: torch, the store and the server come with the names that need them.
    probe = "import sys, tunesmith; print(sorted(m for m in sys.modules if m.startswith(('tunesmith.', 'torch', 'sqlalchemy'))))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_public_names_load_no_heavy_module():
    # The public names import in under 0.3 s (bench/import_time.py) because these load on first use.
    heavy = ("torch", "transformers", "sqlalchemy", "numpy", "jinja2", "yaml", "rich", "fastapi", "google")
    probe = ("import sys, tunesmith\n"
             "for name in tunesmith.__all__: getattr(tunesmith, name)\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_lazy_module_reads_and_writes_through_to_the_module():
    from tunesmith.lazy import lazy_module

    stand_in = lazy_module("tunesmith.store.queries")
    get_model = stand_in.get_model  # the first read imports the module
    module = sys.modules["tunesmith.store.queries"]
    original = module.list_models
    assert get_model is module.get_model and vars(stand_in) is vars(module)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stand_in, "list_models", lambda *a, **k: ["patched"])  # a write reaches the module
        assert module.list_models() == ["patched"]
    assert module.list_models is original  # and undoing it restores the module's own
    assert "lazy module" in repr(stand_in) and "get_model" in dir(stand_in)
