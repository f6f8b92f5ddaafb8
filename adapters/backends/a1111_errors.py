"""Turning A1111 / Forge / SD.Next error bodies into messages a user understands."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.errors import BackendError, BackendUnavailable


def unreachable(name: str, exc: httpx.HTTPError) -> BackendError:
    if isinstance(exc, httpx.ReadTimeout):
        return BackendError.of("backend.stopped_answering", retryable=True, detail=type(exc).__name__, name=name)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        # The server closed a request it had taken: for a generation, the WebUI died (or restarted) running it.
        return BackendUnavailable.during(True, "backend.dropped_connection", detail=type(exc).__name__, name=name)
    return BackendUnavailable.of("backend.unreachable", detail=type(exc).__name__, name=name)


def _message(body: Any) -> str:
    """The useful text of any of the error shapes: A1111 `errors`, Forge `message`, FastAPI `detail`."""
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI 422, pydantic v1 or v2
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
        return "; ".join(parts)
    for key in ("errors", "message", "detail", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def explain(status: int, text: str) -> BackendError:
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text[:300]
    message = _message(body)
    kind = body.get("error", "") if isinstance(body, dict) else ""
    lowered = f"{kind} {message}".lower()
    if status == 401:
        return BackendError.of("backend.bad_credentials", detail=message)
    if status == 422:
        return BackendError.of("backend.rejected", detail=message, message=message)
    if "outofmemory" in lowered or "out of memory" in lowered:
        return BackendError.of("backend.out_of_memory", detail=message)
    if "nansexception" in lowered or "nans" in lowered:
        return BackendError.of("backend.nans", detail=message)
    if "not found" in lowered and "model" in lowered:
        return BackendError.of("backend.missing_model", detail=message)
    if status == 404:
        if not message:
            return BackendError.of("backend.not_found_unnamed")
        return BackendError.of("backend.not_found", detail=message, message=message)
    if status in (502, 503, 504):
        return BackendUnavailable.of("backend.unavailable_http", detail=message, status=status)
    if status >= 500:
        return BackendError.of("backend.failed", retryable=True, detail=message, message=message or f"HTTP {status}")
    if not message:
        return BackendError.of("backend.refused_no_reason", status=status)
    return BackendError.of("backend.refused", detail=message, status=status, message=message)
