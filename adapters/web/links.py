"""The sign-in links /gallery hands out: a random token, signed, stored as a hash, usable once before it expires."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from adapters.web.auth import Signer
from bot.models import utcnow
from bot.settings import WebConfig
from storage.web import SignIn, SqliteWebStore


class WebSignIn:
    """`commands.context.SignInLinks` for the gallery."""

    def __init__(
        self,
        config: WebConfig,
        store: SqliteWebStore,
        signer: Signer,
        clock: Callable[[], datetime] = utcnow,
        served_at: Callable[[], str] = str,
    ) -> None:
        self.config = config
        self.store = store
        self.signer = signer
        self.clock = clock
        self.served_at = served_at  # the server's own address, when no base_url is configured

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.served_at()).rstrip("/")

    async def issue(self, platform: str, user_id: str, user_name: str, server_id: str) -> str:
        nonce = secrets.token_urlsafe(18)
        token = f"{nonce}.{self.signer.mac('link', nonce)}"
        expires = self.clock() + timedelta(minutes=self.config.link_minutes)
        await self.store.issue(token, SignIn(platform, user_id, user_name or user_id, server_id), expires)
        return f"{self.base_url}/gallery/login?token={token}"

    def well_formed(self, token: str) -> bool:
        """Whether we signed this token (it may still be expired or used)."""
        nonce, _, mac = token.partition(".")
        return bool(nonce) and secrets.compare_digest(mac, self.signer.mac("link", nonce))

    async def redeem(self, token: str) -> SignIn | None:
        """Who the link was for, once: a forged, expired or already used token gives None."""
        if not self.well_formed(token):
            return None
        return await self.store.redeem(token, self.clock())
