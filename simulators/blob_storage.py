"""Signed-URL object storage on its own origin: where OpenAI (Azure Blob) and the AI Horde (Cloudflare R2) put
the images they link to.

The links carry their own authorisation (a SAS or presigned query), so a client must fetch them without its API
key. Each request's headers are recorded so a test can see a key that leaked. Expired links answer 403 with an XML
error page and missing objects 404, as the real stores do: neither body is an image.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web

from simulators.serving import start_app

Style = Literal["azure", "r2"]
_SECRET = b"simulated-storage-account-key"


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml(status: int, code: str, message: str, extra: str = "") -> web.Response:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
    body += f"{extra}</Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


@dataclass
class BlobStorage:
    """Objects served at signed, expiring URLs. `style` picks Azure SAS or R2 presigned query names and errors."""

    style: Style = "azure"
    ttl_seconds: float = 3600.0
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.add_routes([web.get("/{container}/{name:.+}", self._get)])
        self._runner, self.url = await start_app(app, host, port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Store an object and return a signed URL that expires after `ttl_seconds`."""
        self.objects[name] = (data, content_type)
        start = time.time()
        expiry = _stamp(start + self.ttl_seconds)
        signature = self._sign(name, expiry)
        if self.style == "azure":
            query = {"st": _stamp(start), "se": expiry, "sp": "r", "sv": "2021-08-06", "sr": "b", "rscd": "inline",
                     "rsct": content_type, "sig": signature}  # fmt: skip
            return f"{self.url}/private/{name}?{urlencode(query)}"
        query = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": _stamp(start).replace("-", "").replace(":", ""),
                 "X-Amz-Expires": str(int(self.ttl_seconds)), "X-Amz-Expiry": expiry, "X-Amz-SignedHeaders": "host",
                 "X-Amz-Signature": signature}  # fmt: skip
        return f"{self.url}/stable-horde/{name}?{urlencode(query)}"

    def forget(self, name: str) -> None:
        """Drop an object (the store's lifecycle rule ran): its URL now answers 404."""
        self.objects.pop(name, None)

    def _sign(self, name: str, expiry: str) -> str:
        return hmac.new(_SECRET, f"{name}\n{expiry}".encode(), hashlib.sha256).hexdigest()

    async def _get(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, **dict(request.headers)})
        name = request.match_info["name"]
        azure = self.style == "azure"
        expiry = request.query.get("se" if azure else "X-Amz-Expiry", "")
        signature = request.query.get("sig" if azure else "X-Amz-Signature", "")
        if not hmac.compare_digest(signature, self._sign(name, expiry)):
            if azure:
                return _xml(403, "AuthenticationFailed", "Server failed to authenticate the request.")
            return _xml(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        if expiry <= _stamp(time.time()):
            if azure:
                detail = f"<AuthenticationErrorDetail>Signed expiry time [{expiry}] must be after signed start time "
                detail += f"and current time [{_stamp(time.time())}]</AuthenticationErrorDetail>"
                return _xml(403, "AuthenticationFailed", "Server failed to authenticate the request.", detail)
            return _xml(403, "AccessDenied", "Request has expired")
        entry = self.objects.get(name)
        if entry is None:
            if azure:
                return _xml(404, "BlobNotFound", "The specified blob does not exist.")
            return _xml(404, "NoSuchKey", "The specified key does not exist.")
        return web.Response(body=entry[0], content_type=entry[1])
