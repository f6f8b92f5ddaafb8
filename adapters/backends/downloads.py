"""Fetching the images a backend links to: without credentials unless the link is on the backend's own origin,
with the status checked and the bytes checked to be an image (an expired link answers with an XML page).
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from bot.errors import BackendError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def plain_client(timeout_seconds: float, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """A client that carries no credentials, for links to storage hosts (their URLs carry their own signature)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=10), transport=transport, follow_redirects=True
    )


def same_origin(url: str, base_url: str) -> bool:
    """Scheme, host and port match: only then may the backend's key go along."""
    link, base = urlsplit(url), urlsplit(base_url)
    if not link.scheme:  # a relative link is on the backend itself
        return True
    return (
        link.scheme == base.scheme
        and link.hostname == base.hostname
        and (link.port or _DEFAULT_PORTS.get(link.scheme)) == (base.port or _DEFAULT_PORTS.get(base.scheme))
    )


def image_format(data: bytes) -> str | None:
    """The image format the bytes declare (PNG, JPEG, WEBP…), or None when they are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


async def download_image(client: httpx.AsyncClient, url: str, *, source: str) -> bytes:
    """GET an image link. Refusals (4xx) are final; transport errors and 5xx may pass, so they are retryable."""
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        raise BackendError.of("backend.image_link_unreachable", retryable=True, source=source) from exc
    if response.status_code != 200:
        reason = " ".join(response.text.split())[:200]
        raise BackendError.of(
            "backend.image_link_failed",
            retryable=response.status_code >= 500 or response.status_code == 429,
            source=source,
            status=response.status_code,
            reason=reason or response.reason_phrase,
        )
    if image_format(response.content) is None:
        kind = response.headers.get("content-type", "?")
        raise BackendError.of("backend.image_link_not_image", source=source, kind=kind, size=len(response.content))
    return response.content
