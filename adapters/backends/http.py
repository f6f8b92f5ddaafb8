"""The HTTP client the bearer-token backends share (ComfyUI behind a proxy, Open WebUI, OpenAI-compatible)."""

from __future__ import annotations

import httpx
from pydantic import SecretStr


def bearer_headers(secret: SecretStr | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret.get_secret_value()}"} if secret else {}


def bearer_client(
    base_url: str, secret: SecretStr | None, timeout_seconds: float, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """A client for one backend: its base URL, the key as a Bearer header, a 10 s connect timeout."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers=bearer_headers(secret),
        timeout=httpx.Timeout(timeout_seconds, connect=10),
        transport=transport,
    )
