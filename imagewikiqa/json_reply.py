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


_TYPE_NAMES = ((type(None), "null"), (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"))  # bool before int: a bool is an int too


def _type_name(value: Any) -> str:
    return next((name for t, name in _TYPE_NAMES if isinstance(value, t)), type(value).__name__)


def _is_type(value: Any, t: str) -> bool:
    actual = _type_name(value)
    if t == "number":
        return actual in ("integer", "number")
    if t == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == t


def _broken_bound(schema: dict, size: Any, low_key: str, high_key: str) -> tuple[bool, Any]:
    """``(True, lower bound)`` when ``size`` is below ``schema[low_key]``, ``(False, upper bound)`` when above
    ``schema[high_key]``, else ``(False, None)``."""
    if low_key in schema and size < schema[low_key]:
        return True, schema[low_key]
    if high_key in schema and size > schema[high_key]:
        return False, schema[high_key]
    return False, None


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
        low, limit = _broken_bound(schema, len(value), "minLength", "maxLength")
        if limit is not None:
            return f"{path}: string {'shorter' if low else 'longer'} than {limit}"
    if _type_name(value) in ("integer", "number"):
        low, limit = _broken_bound(schema, value, "minimum", "maximum")
        if limit is not None:
            return f"{path}: {value} is {'less than minimum' if low else 'greater than maximum'} {limit}"
    if isinstance(value, list):
        low, limit = _broken_bound(schema, len(value), "minItems", "maxItems")
        if limit is not None:
            return f"{path}: expected {'at least' if low else 'at most'} {limit} items, got {len(value)}"
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
