"""JSON replies of a chat model: :func:`parse_json_reply` finds the JSON in a reply (a fenced block or the
first value) and :func:`validate_json` checks it against a small JSON-schema subset (no ``jsonschema``)."""

from __future__ import annotations

import json
import re
from typing import Any

from vlm_classdata.errors import UserError

_JSON_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.S)


def parse_json_reply(text: str) -> tuple[Any, str | None]:
    """Parse a model reply as JSON: strips ```json fences and, failing that, tries the outermost ``{...}`` or
    ``[...]`` span. Returns ``(value, None)`` or ``(None, reason)``."""
    if text is None:
        return None, "empty reply"
    s = text.strip()
    m = _FENCE.search(s)
    if m:
        s = m.group(1).strip()
    if not s:
        return None, "empty reply"
    try:
        return json.loads(s), None
    except ValueError as exc:
        first_err = f"not valid JSON ({exc})"
    for open_c, close_c in (("{", "}"), ("[", "]")):
        i, j = s.find(open_c), s.rfind(close_c)
        if 0 <= i < j:
            try:
                return json.loads(s[i:j + 1]), None
            except ValueError:
                pass
    return None, first_err


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, t: str) -> bool:
    actual = _type_name(value)
    if t == "number":
        return actual in ("integer", "number")
    if t == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == t


def validate_json(value: Any, schema: dict, path: str = "$") -> str | None:
    """Validate ``value`` against a JSON-schema subset; return the first error (``"$.a[0]: ..."``) or None.

    Supported keywords: ``type`` (object/array/string/integer/number/boolean/null, or a list of them),
    ``required``, ``properties``, ``items``, ``enum``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
    ``minimum``/``maximum``, ``additionalProperties: false``. Other keywords are ignored.
    """
    if not isinstance(schema, dict):
        raise UserError(f"JSON schema at {path} must be an object, got {_type_name(schema)}")
    t = schema.get("type")
    if t is not None:
        types = [t] if isinstance(t, str) else list(t)
        bad = [x for x in types if x not in _JSON_TYPES]
        if bad:
            raise UserError(f"JSON schema at {path}: unsupported type {bad[0]!r}")
        if not any(_is_type(value, x) for x in types):
            return f"{path}: expected {' or '.join(types)}, got {_type_name(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {json.dumps(value, ensure_ascii=False)[:80]} is not one of {schema['enum']}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"{path}: string shorter than {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{path}: string longer than {schema['maxLength']}"
    if _type_name(value) in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path}: {value} is less than minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path}: {value} is greater than maximum {schema['maximum']}"
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{path}: expected at least {schema['minItems']} items, got {len(value)}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{path}: expected at most {schema['maxItems']} items, got {len(value)}"
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                err = validate_json(item, schema["items"], f"{path}[{i}]")
                if err:
                    return err
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return f"{path}: missing required property {name!r}"
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                err = validate_json(value[name], sub, f"{path}.{name}")
                if err:
                    return err
        if schema.get("additionalProperties") is False:
            extra = sorted(k for k in value if k not in props)
            if extra:
                return f"{path}: unexpected property {extra[0]!r}"
    return None
