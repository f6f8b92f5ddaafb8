"""Turning A1111 / Forge / SD.Next error bodies into messages a user understands."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.errors import BackendError, BackendUnavailable


def unreachable(name: str, exc: httpx.HTTPError) -> BackendError:
    if isinstance(exc, httpx.ReadTimeout):
        return BackendError(
            f"Backend {name} stopped answering in the middle of the job.", retryable=True, detail=type(exc).__name__
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return BackendUnavailable(
            f"Backend {name} dropped the connection (it may have restarted).", detail=type(exc).__name__
        )
    return BackendUnavailable(f"Backend {name} cannot be reached.", detail=type(exc).__name__)


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
        return BackendError(
            "The backend refused the bot's credentials (check its username and password).", detail=message
        )
    if status == 422:
        return BackendError(f"The backend rejected the request: {message}.", detail=message)
    if "outofmemory" in lowered or "out of memory" in lowered:
        return BackendError("The GPU ran out of memory. Try a smaller size or fewer images.", detail=message)
    if "nansexception" in lowered or "nans" in lowered:
        return BackendError(
            "The model produced NaNs (a black image). Try another seed; admins can add --no-half-vae.",
            detail=message,
        )
    if "not found" in lowered and "model" in lowered:
        return BackendError(
            "The backend does not have the model this preset names. Ask an admin to fix the preset.", detail=message
        )
    if status == 404:
        return BackendError(
            f"The backend could not find something it needed: {message or 'not found'}.", detail=message
        )
    if status in (502, 503, 504):
        return BackendUnavailable(f"The backend is unavailable right now (HTTP {status}).", detail=message)
    if status >= 500:
        return BackendError(f"The backend failed: {message or f'HTTP {status}'}.", retryable=True, detail=message)
    return BackendError(
        f"The backend refused the request (HTTP {status}): {message or 'no reason given'}.", detail=message
    )
