"""Structured outputs as clients ask for them, turned into decoding constraints
(models/constrain.py segments) for the engine.

OpenAI chat completions:
    response_format {"type": "text"}                         free text (a tuned model's own
                                                             output space is not applied)
    response_format {"type": "json_object"}                  any JSON object
    response_format {"type": "json_schema", "json_schema": {"name": …, "schema": {…}}}
    guided_choice ["a", "b"]  (vLLM's extension; the OpenAI SDK sends it in extra_body)
    guided_json {…}           (vLLM's extension: a JSON schema)
Gemini generateContent, generationConfig:
    responseMimeType text/x.enum + responseSchema {"type": "STRING", "enum": […]}
    responseMimeType application/json (+ responseSchema or responseJsonSchema)
    responseMimeType text/plain                              free text

None of them: the served model's learned output space applies (serve/engine.py)."""

from __future__ import annotations

from typing import Any

from ..errors import BadInputError
from ..models.constrain import AnyJsonObject, label_segments, schema_segments
from .errors import ApiError

Structured = tuple[tuple | None, bool]  # (segments or None, free: the request asked for plain text)


def _schema(schema: Any, param: str) -> tuple:
    try:
        return schema_segments(_lower_types(schema))
    except BadInputError as exc:
        raise ApiError(400, f"{param}: {exc.message}", param=param) from None


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI schemas write types in capitals (STRING, OBJECT)."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _choices(values: Any, param: str) -> tuple:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ApiError(400, f"{param} must be a non-empty list of non-empty strings", param=param)
    return label_segments(values)


def openai_structured(body: dict[str, Any]) -> Structured:
    given = [name for name in ("response_format", "guided_choice", "guided_json") if body.get(name) is not None]
    if len(given) > 1:
        raise ApiError(400, f"give one of {', '.join(given)}, not several", param=given[1])
    if not given:
        return None, False
    if given[0] == "guided_choice":
        return _choices(body["guided_choice"], "guided_choice"), False
    if given[0] == "guided_json":
        return _schema(body["guided_json"], "guided_json"), False
    fmt = body["response_format"]
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None, True
    if kind == "json_object":
        return (AnyJsonObject(),), False
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise ApiError(400, "response_format.json_schema.schema must be a JSON schema object",
                           param="response_format")
        return _schema(spec["schema"], "response_format.json_schema.schema"), False
    raise ApiError(400, "response_format.type must be text, json_object or json_schema", param="response_format")


def gemini_structured(config: dict[str, Any]) -> Structured:
    mime = config.get("responseMimeType")
    schema = config.get("responseSchema", config.get("responseJsonSchema"))
    where = "generationConfig."
    if mime is None and schema is None:
        return None, False
    if mime in (None, "application/json"):
        if schema is None:
            return (AnyJsonObject(),), False
        return _schema(schema, where + "responseSchema"), False
    if mime == "text/x.enum":
        if not isinstance(schema, dict) or "enum" not in schema:
            raise ApiError(400, f"{where}responseMimeType text/x.enum needs a responseSchema with an enum")
        return _choices(schema["enum"], where + "responseSchema.enum"), False
    if mime == "text/plain":
        return None, True
    raise ApiError(400, f"{where}responseMimeType must be text/plain, application/json or text/x.enum (got {mime!r})")
