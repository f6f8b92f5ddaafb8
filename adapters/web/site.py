"""The gallery's shared parts: who is signed in, what they may see, rendering pages, CSRF."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from adapters.web.auth import COOKIE, Session, Signer
from adapters.web.links import WebSignIn
from adapters.web.previews import PreviewBoard
from adapters.web.thumbs import Thumbnails
from bot.i18n import LANGUAGES, language, t
from commands.context import Services
from storage.web import SqliteWebStore, Viewer

HERE = Path(__file__).parent
LANG_COOKIE = "ib_lang"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the sign-in token is in a URL: never pass it on
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
}

ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)


@dataclass
class WebSite:
    """Everything the pages share, built once by `adapters.web.create`."""

    services: Services
    store: SqliteWebStore
    signer: Signer
    links: WebSignIn
    previews: PreviewBoard
    thumbs: Thumbnails
    closed: bool = False

    @property
    def config(self) -> Any:
        return self.services.settings.web

    # ---- who is asking -------------------------------------------------------------------------
    def session(self, request: web.Request) -> Session | None:
        payload = self.signer.unsign("session", request.cookies.get(COOKIE, ""))
        if payload is None:
            return None
        try:
            session = Session.from_payload(payload)
        except (KeyError, TypeError, ValueError):
            return None
        return session if session.expires > time.time() else None

    def is_admin(self, session: Session) -> bool:
        return session.key in self.services.settings.bot_admins

    async def viewer(self, session: Session) -> Viewer:
        servers = await self.store.servers_of(session.platform, session.user_id)
        return Viewer(session.platform, session.user_id, self.is_admin(session), servers)

    def new_session(self, platform: str, user_id: str, name: str) -> Session:
        expires = time.time() + self.config.session_hours * 3600
        return Session(platform, user_id, name, secrets.token_urlsafe(12), expires)

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.signer.sign("session", session.payload()),
            max_age=self.config.session_hours * 3600,
            path="/gallery",
            httponly=True,
            samesite="Lax",
            secure=self.config.secure_cookies,
        )

    def csrf(self, session: Session) -> str:
        return self.signer.mac("csrf", session.sid)

    async def form(self, request: web.Request, session: Session) -> dict[str, str]:
        """The POSTed form, after its CSRF token is checked (403 otherwise)."""
        data = await request.post()
        if not hmac.compare_digest(str(data.get("csrf", "")), self.csrf(session)):
            raise self.refuse(request, session, 403, "csrf")
        return {key: str(value) for key, value in data.items()}

    async def require(self, request: web.Request, admin: bool = False) -> tuple[Session, Viewer]:
        session = self.session(request)
        if session is None:
            raise self.refuse(request, None, 401, "sign_in_needed")
        if admin and not self.is_admin(session):
            raise self.refuse(request, session, 403, "admins_only")
        return session, await self.viewer(session)

    # ---- pages ---------------------------------------------------------------------------------
    def lang(self, request: web.Request) -> str:
        chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
        if chosen in LANGUAGES:
            return str(chosen)
        return language(request.headers.get("Accept-Language", "").split(",")[0])

    def render(
        self, request: web.Request, template: str, session: Session | None, status: int = 200, **context: Any
    ) -> web.Response:
        lang = self.lang(request)
        html = _env.get_template(template).render(
            lang=lang,
            tr=lambda key, **params: t(lang, f"web.{key}", **params),
            session=session,
            admin=session is not None and self.is_admin(session),
            csrf=self.csrf(session) if session else "",
            path=request.path,
            **context,
        )
        response = web.Response(text=html, content_type="text/html", status=status, headers=SECURITY_HEADERS)
        if request.query.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, request.query["lang"], path="/gallery", samesite="Lax", httponly=True)
        return response

    def refuse(self, request: web.Request, session: Session | None, status: int, key: str) -> web.HTTPException:
        page = self.render(request, "message.html", session, status=status, message_key=key)
        kind = ERRORS.get(status, web.HTTPBadRequest)
        return kind(text=page.text, content_type="text/html", headers=SECURITY_HEADERS)


def render_fragment(template: str, lang: str, **context: Any) -> str:
    """A part of a page (the live queue), rendered the same way the whole page renders it."""
    template_ = _env.get_template(template)
    return template_.render(lang=lang, tr=lambda key, **params: t(lang, f"web.{key}", **params), **context)
