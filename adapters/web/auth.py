"""Signed values (sign-in tokens, session cookies, CSRF tokens) and the signing key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.logs import register_secret
from bot.secret_source import SecretSource

log = logging.getLogger(__name__)

SECRET_NAME = "IMAGEBRIDGE_WEB_SECRET"
COOKIE = "ib_session"


def load_key(secrets_source: SecretSource, data_dir: Path) -> bytes:
    """The signing key: the secret IMAGEBRIDGE_WEB_SECRET, else one made once and kept in data_dir/web_secret."""
    found = secrets_source.get(SECRET_NAME)
    if found is not None:
        return found.get_secret_value().encode()
    path = data_dir / "web_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by the bot only
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        log.info("made a web signing key in %s (set %s to choose one)", path, SECRET_NAME)
    value = path.read_text().strip()
    register_secret(value)
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 over a JSON payload, with a purpose so a value signed for one use fits no other."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\n{data}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self.mac(purpose, body)}"

    def unsign(self, purpose: str, value: str) -> dict[str, Any] | None:
        body, _, mac = value.partition(".")
        if not body or not hmac.compare_digest(mac, self.mac(purpose, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the chat user it stands for."""

    platform: str
    user_id: str
    name: str
    sid: str  # random per sign-in; the CSRF token is derived from it
    expires: float

    def payload(self) -> dict[str, Any]:
        return {"p": self.platform, "u": self.user_id, "n": self.name, "s": self.sid, "e": self.expires}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Session:
        return cls(str(payload["p"]), str(payload["u"]), str(payload["n"]), str(payload["s"]), float(payload["e"]))

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"
