"""The Discord simulator's HTTP side: request bodies as discord.py sends them, and the checks Discord applies
to message payloads and autocomplete answers, raised as Discord's error bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulators.discord_modals import FormError
from simulators.discord_state import UPLOAD_LIMIT


class SimError(Exception):
    """An error answer: HTTP status, Discord's JSON error code and message, and `errors` for a form error."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    @classmethod
    def form(cls, error: FormError) -> SimError:
        """400 / 50035 "Invalid Form Body" with the `errors` tree Discord sends."""
        return cls(400, 50035, "Invalid Form Body", error.errors())


def check_choices(choices: Any) -> list[dict[str, Any]]:
    """APPLICATION_COMMAND_AUTOCOMPLETE_RESULT: at most 25 choices, names 1-100 characters, values up to 100."""
    if not isinstance(choices, list) or len(choices) > 25:
        raise SimError(400, 50035, "Invalid Form Body: data.choices: Must be 25 or fewer in length.")
    for choice in choices:
        name, value = str(choice.get("name", "")), choice.get("value")
        if not 1 <= len(name) <= 100 or (isinstance(value, str) and len(value) > 100):
            raise SimError(400, 50035, "Invalid Form Body: data.choices: Must be between 1 and 100 in length.")
    return choices


def check_message(payload: dict[str, Any], files: list[tuple[str, bytes]]) -> None:
    if len(payload.get("content") or "") > 2000:
        raise SimError(400, 50035, "content: Must be 2000 or fewer in length.")
    for name, data in files:
        if len(data) > UPLOAD_LIMIT:
            raise SimError(413, 40005, f"Request entity too large ({name})")
    for row in payload.get("components") or []:
        if len(row.get("components", [])) > 5:
            raise SimError(400, 50035, "components: at most 5 buttons per row")
        for item in row.get("components", []):
            if len(item.get("custom_id", "")) > 100:
                raise SimError(400, 50035, "custom_id: Must be 100 or fewer in length.")


async def read_body(request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    files: list[tuple[str, bytes]] = []
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            data = await part.read()  # type: ignore[union-attr]
            if part.name == "payload_json":  # type: ignore[union-attr]
                payload = json.loads(data)
            else:
                files.append((part.filename or "file", bytes(data)))  # type: ignore[union-attr]
        return payload, files
    if request.can_read_body:
        body = await request.json()
        return (body if isinstance(body, dict) else {"_list": body}), files
    return {}, files
