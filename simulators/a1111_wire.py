"""Error bodies and request validation, in the shape each flavour's FastAPI app answers with.

A1111 runs every exception through ``api_middleware`` (``{"error","detail","body","errors"}``)
and validates with pydantic v1; Forge has no middleware (``{"error","detail","body","message"}``
for crashes, plain ``{"detail"}`` for HTTPExceptions) and validates with pydantic v2.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any, Literal

from simulators.a1111_catalog import Flavour

log = logging.getLogger(__name__)

FieldKind = Literal["int", "float", "str", "bool", "list", "strlist", "dict", "any"]


class ApiError(Exception):
    """An answer other than 200: its status and JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body!r}")
        self.status = status
        self.body = body


def http_exception(flavour: Flavour, status: int, detail: str) -> ApiError:
    """A FastAPI ``HTTPException`` as the flavour renders it."""
    if flavour == "forge":
        return ApiError(status, {"detail": detail})
    # Starlette's HTTPException is raised with keyword arguments, so str(e) is "".
    return ApiError(status, {"error": "HTTPException", "detail": detail, "body": "", "errors": ""})


def server_exception(flavour: Flavour, error: str, message: str, status: int = 500) -> ApiError:
    """Any other exception (RuntimeError, OutOfMemoryError, ...) as the flavour renders it."""
    key = "message" if flavour == "forge" else "errors"
    return ApiError(status, {"error": error, "detail": "", "body": "", key: message})


class _Invalid(Exception):
    def __init__(self, v1: tuple[str, str], v2: tuple[str, str]) -> None:
        super().__init__(v2[1])
        self.v1 = v1
        self.v2 = v2


_INT_V1 = ("type_error.integer", "value is not a valid integer")
_FLOAT_V1 = ("type_error.float", "value is not a valid float")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _to_int(flavour: Flavour, v: object) -> int:
    if isinstance(v, bool | int):
        return int(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _Invalid(_INT_V1, ("finite_number", "Input should be a finite number"))
        if v.is_integer() or flavour == "a1111":  # pydantic v1 truncates floats
            return int(v)
        raise _Invalid(
            _INT_V1, ("int_from_float", "Input should be a valid integer, got a number with a fractional part")
        )
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            raise _Invalid(
                _INT_V1, ("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
            ) from None
    raise _Invalid(_INT_V1, ("int_type", "Input should be a valid integer"))


def _to_float(v: object) -> float:
    if isinstance(v, bool | int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise _Invalid(
                _FLOAT_V1, ("float_parsing", "Input should be a valid number, unable to parse string as a number")
            ) from None
    raise _Invalid(_FLOAT_V1, ("float_type", "Input should be a valid number"))


def _to_str(flavour: Flavour, v: object) -> str:
    if isinstance(v, str):
        return v
    if flavour == "a1111" and isinstance(v, int | float):  # pydantic v1 stringifies numbers
        return str(v)
    raise _Invalid(("type_error.str", "str type expected"), ("string_type", "Input should be a valid string"))


def _to_bool(v: object) -> bool:
    v1 = ("type_error.bool", "value could not be parsed to a boolean")
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        low = v.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise _Invalid(v1, ("bool_parsing", "Input should be a valid boolean, unable to interpret input"))
    if isinstance(v, int | float):
        raise _Invalid(v1, ("bool_parsing", "Input should be a valid boolean, unable to interpret input"))
    raise _Invalid(v1, ("bool_type", "Input should be a valid boolean"))


def _to_list(v: object) -> list[Any]:
    if isinstance(v, list):
        return v
    raise _Invalid(("type_error.list", "value is not a valid list"), ("list_type", "Input should be a valid list"))


def _to_dict(v: object) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    raise _Invalid(
        ("type_error.dict", "value is not a valid dict"), ("dict_type", "Input should be a valid dictionary")
    )


def _error(flavour: Flavour, loc: list[str | int], bad: _Invalid, value: object) -> dict[str, Any]:
    if flavour == "forge":
        return {"type": bad.v2[0], "loc": loc, "msg": bad.v2[1], "input": value}
    return {"loc": loc, "msg": bad.v1[1], "type": bad.v1[0]}


def _coerce(flavour: Flavour, kind: FieldKind, value: object, loc: list[str | int]) -> tuple[Any, list[dict[str, Any]]]:
    try:
        if kind == "int":
            return _to_int(flavour, value), []
        if kind == "float":
            return _to_float(value), []
        if kind == "str":
            return _to_str(flavour, value), []
        if kind == "bool":
            return _to_bool(value), []
        if kind == "dict":
            return _to_dict(value), []
        if kind in ("list", "strlist"):
            items = _to_list(value)
            if kind == "list":
                return items, []
            out: list[str] = []
            errors: list[dict[str, Any]] = []
            for i, item in enumerate(items):
                coerced, errs = _coerce(flavour, "str", item, [*loc, i])
                out.append(coerced)
                errors.extend(errs)
            return out, errors
    except _Invalid as bad:
        return None, [_error(flavour, loc, bad, value)]
    return value, []


def validate_body(flavour: Flavour, body: object, fields: Mapping[str, tuple[FieldKind, Any]]) -> dict[str, Any]:
    """The request model: every known field, defaults filled, unknown keys dropped.

    ``null`` keeps the field's default. Raises a 422 ``ApiError`` listing every bad field.
    """
    if not isinstance(body, dict):
        if flavour == "forge":
            msg = "Input should be a valid dictionary or object to extract fields from"
            err: dict[str, Any] = {"type": "model_attributes_type", "loc": ["body"], "msg": msg, "input": body}
        else:
            err = {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}
        raise ApiError(422, {"detail": [err]})
    out: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for name, (kind, default) in fields.items():
        value = body.get(name)
        if value is None:
            out[name] = json.loads(json.dumps(default))  # a fresh copy of list/dict defaults
            continue
        out[name], errs = _coerce(flavour, kind, value, ["body", name])
        errors.extend(errs)
    if errors:
        raise ApiError(422, {"detail": errors})
    return out


def parse_json_body(flavour: Flavour, raw: bytes) -> object:
    """Decode a request body as FastAPI would; a missing or malformed body is a 422."""
    if not raw.strip():
        if flavour == "forge":
            err: dict[str, Any] = {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
        else:
            err = {"loc": ["body"], "msg": "field required", "type": "value_error.missing"}
        raise ApiError(422, {"detail": [err]})
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "Invalid UTF-8"
        if flavour == "forge":
            err = {
                "type": "json_invalid",
                "loc": ["body", pos],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": msg},
            }
        else:
            err = {"loc": ["body", pos], "msg": msg, "type": "value_error.jsondecode"}
        raise ApiError(422, {"detail": [err]}) from None


def require_fields(flavour: Flavour, body: object, names: list[str]) -> None:
    """422 "field required" for each required field missing from an object body."""
    if not isinstance(body, dict):
        return
    missing = [n for n in names if n not in body]
    if not missing:
        return
    if flavour == "forge":
        errors = [{"type": "missing", "loc": ["body", n], "msg": "Field required", "input": body} for n in missing]
    else:
        errors = [{"loc": ["body", n], "msg": "field required", "type": "value_error.missing"} for n in missing]
    raise ApiError(422, {"detail": errors})


def query_bool(flavour: Flavour, name: str, raw: str | None, default: bool) -> bool:
    """A boolean query parameter; 422 when it cannot be read as one."""
    if raw is None:
        return default
    try:
        return _to_bool(raw)
    except _Invalid as bad:
        raise ApiError(422, {"detail": [_error(flavour, ["query", name], bad, raw)]}) from None
