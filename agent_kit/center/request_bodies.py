"""JSON request bodies, validated strictly from the raw bytes (pydantic's JSON mode), and their
place in the OpenAPI document.

Bodies are read as bytes because workstation requests are signed over the exact bytes, and
because strict JSON-mode validation (ISO dates as strings, no coercion) is stricter than
validating an already-decoded dict.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from agent_kit.center.errors import APIError

M = TypeVar("M", bound=BaseModel)
BODY_MODELS: dict[str, type[BaseModel]] = {}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the route's JSON body."""
    BODY_MODELS[model.__name__] = model
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def is_json(request: Request) -> bool:
    return json_content_type(request.headers.get("content-type", ""))


def json_content_type(value: str) -> bool:
    """``application/json`` or ``application/*+json`` (parameters such as charset ignored)."""
    ctype = value.split(";")[0].strip().lower()
    return ctype == "application/json" or (ctype.startswith("application/")
                                           and ctype.endswith("+json"))


def parse_json(content_type: str, body: bytes, model: type[M]) -> M:
    """415 unless JSON; the body validated strictly from its bytes (RequestValidationError with
    pydantic's reasons, without the input echoed back)."""
    if not json_content_type(content_type):
        raise APIError(415, "unsupported_media_type", "send the body as application/json")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            exc.errors(include_url=False, include_context=False, include_input=False)) from None


async def read_json(request: Request, model: type[M]) -> M:
    if not is_json(request):  # before the body is read
        raise APIError(415, "unsupported_media_type", "send the body as application/json")
    return parse_json(request.headers.get("content-type", ""), await request.body(), model)


def add_body_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Put every body model (and what it refers to) into ``components/schemas``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in BODY_MODELS.items():
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in js.pop("$defs", {}).items():
            components[def_name] = definition
        components[name] = js
    return schema
