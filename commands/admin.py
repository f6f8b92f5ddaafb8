"""/admin: quotas, bans, blocked words, per-channel presets, default preset, pause/resume, backend status and drain."""

from __future__ import annotations

import logging

from bot.errors import InvalidRequest, NotPermitted
from bot.i18n import LANGUAGES, t
from bot.jobs import BackendState
from bot.replies import Reply
from bot.settings import MAX_DAILY
from commands.blocked import block_words
from commands.context import Invocation, Services, is_admin, is_bot_admin, language_for
from commands.registry import ADMIN

log = logging.getLogger(__name__)


def _amount(value: object, cap: float | None = None) -> float:
    """A daily quota: a finite number from 0 to MAX_DAILY, and for a chat admin at most `cap`."""
    try:
        amount = float(str(value).replace(",", "").replace("_", ""))
    except ValueError as exc:
        raise InvalidRequest.of("error.admin_amount", value=str(value)[:20]) from exc
    if not 0 <= amount <= MAX_DAILY:  # also refuses nan and inf
        raise InvalidRequest.of("error.admin_range", maximum=MAX_DAILY)
    if cap is not None and amount > cap:
        raise InvalidRequest.of("error.admin_cap", amount=amount, cap=cap)
    return amount


def quota_caps(services: Services, invocation: Invocation) -> tuple[float | None, float | None]:
    """(user or role cap, server cap): a chat admin may lower the bot's limits in their chat, never raise them."""
    if is_bot_admin(services, invocation):
        return None, None
    config = services.settings.quota
    return max([config.user_daily, *config.roles.values()]), config.server_daily


def _role(platform: str, text: str) -> str:
    """Role limits are keyed by role id; a Discord mention `<@&id>` is that id. Telegram has no roles."""
    role = text[3:-1] if text.startswith("<@&") and text.endswith(">") else text
    if platform == "telegram":
        raise InvalidRequest.of("error.admin_no_roles")
    if platform == "discord" and not role.isdigit():  # a name would never match: members carry role ids
        raise InvalidRequest.of("error.admin_role_id", role=text[:40])
    return role


def _need(value: object | None, what: str, lang: str) -> str:
    """The argument's text, or an error naming what is missing (`what` is a key of the admin_what section)."""
    text = str(value or "").strip()
    if not text:
        raise InvalidRequest.of("error.admin_need", what=t(lang, f"admin_what.{what}"), usage=ADMIN.usage)
    return text


async def admin(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    if not is_admin(services, invocation):
        raise NotPermitted.of("error.admin_only")
    action = str(options.get("action"))
    target, value, extra = options.get("target"), options.get("value"), options.get("extra")
    platform, server_id = invocation.platform, invocation.destination.server_id
    accounts = services.accounts
    server = (await accounts.server(platform, server_id)).copy()  # admin actions change it, then save it
    log.info("admin %s:%s runs %s %s %s", platform, invocation.user_id, action, target, value)
    if action == "language":
        return await set_language(services, invocation, str(target or "").strip().lower())
    lang = await language_for(services, invocation)
    if action in ("block", "unblock"):
        return await block_words(services, server, action, target, lang)
    if action == "backends":
        if not is_bot_admin(services, invocation):  # health details can name internal URLs and hosts
            raise NotPermitted.of("restricted.backends")
        return Reply(text=backend_status(services, lang), private=True)
    if action in ("drain", "undrain"):
        if not is_bot_admin(services, invocation):  # a backend serves every server, not just this one
            raise NotPermitted.of("restricted.drain")
        return await drain(services, action == "drain", str(target or ""), lang)
    if action in ("pause", "resume"):
        key = invocation.destination.queue_key
        if action == "pause":
            await services.jobs.pause(key)  # kept across restarts by the port itself
        else:
            await services.jobs.resume(key)
        return Reply(text=t(lang, "admin.paused" if action == "pause" else "admin.resumed"))
    if action in ("ban", "unban"):
        # A server admin bans from this server only; the user record (bot-wide) is for the config's admins.
        user_id = _need(target, "user_id", lang)
        banned = action == "ban"
        if is_bot_admin(services, invocation):
            user = (await accounts.user(platform, user_id)).copy()
            user.banned = banned
            await accounts.save_user(user)
        server.banned = sorted({*server.banned, user_id} if banned else set(server.banned) - {user_id})
        await accounts.save_server(server)
        return Reply(text=t(lang, "admin.banned" if banned else "admin.unbanned", user=user_id), private=True)
    if action in ("allow", "deny", "default"):
        typed = _need(target, "preset", lang)
        # Preset names ignore case, as in /imagine --preset.
        preset = next((name for name in services.settings.presets if name.lower() == typed.lower()), typed)
        if preset not in services.settings.presets:
            raise InvalidRequest.of(
                "error.admin_unknown_preset", name=preset, allowed=", ".join(services.settings.presets)
            )
        if action == "default":
            server.default_preset = preset
        else:
            channel = str(value or invocation.destination.channel_id)
            current = server.channel_presets.get(channel, list(services.settings.presets))
            wanted = [*current, preset] if action == "allow" else [name for name in current if name != preset]
            server.channel_presets[channel] = list(dict.fromkeys(wanted))
        await accounts.save_server(server)
        return Reply(text=t(lang, "admin.done", action=action, preset=preset), private=True)
    if action == "quota":
        scope = _need(target, "scope", lang)
        user_cap, server_cap = quota_caps(services, invocation)
        if scope == "server":
            server.daily_limit = _amount(_need(value, "amount", lang), server_cap)
            await accounts.save_server(server)
            return Reply(text=t(lang, "admin.quota_server", amount=server.daily_limit), private=True)
        if scope == "role":
            role, amount = _role(platform, _need(value, "role", lang)), _amount(_need(extra, "amount", lang), user_cap)
            server.role_limits[role] = amount
            await accounts.save_server(server)
            return Reply(text=t(lang, "admin.quota_role", role=role, amount=amount), private=True)
        if scope == "user":
            user_id, amount = _need(value, "user_id", lang), _amount(_need(extra, "amount", lang), user_cap)
            server.user_limits[user_id] = amount  # this server only, even for its own admins
            await accounts.save_server(server)
            return Reply(text=t(lang, "admin.quota_user", user=user_id, amount=amount), private=True)
        raise InvalidRequest.of("error.admin_scope", usage=ADMIN.usage)
    raise InvalidRequest.of("error.admin_unknown", usage=ADMIN.usage)


async def set_language(services: Services, invocation: Invocation, code: str) -> Reply:
    """`/admin language en|zh`: the language of this server's or chat's replies and job messages."""
    if code not in LANGUAGES:
        raise InvalidRequest.of("error.admin_language", languages=", ".join(LANGUAGES), usage=ADMIN.usage)
    server = (await services.accounts.server(invocation.platform, invocation.destination.server_id)).copy()
    server.language = code
    await services.accounts.save_server(server)
    return Reply(text=t(code, "admin.language", name=t(code, f"language.{code}")))


async def drain(services: Services, drained: bool, name: str, lang: str) -> Reply:
    """`/admin drain|undrain <backend>`: a drained backend finishes its running job and takes no new ones."""
    backend = await services.jobs.set_drained(name, drained)
    if backend is None:
        names = ", ".join(dict.fromkeys(known.name for known in services.jobs.backends()))
        raise InvalidRequest.of("error.admin_unknown_backend", name=name.strip()[:40] or "-", names=names)
    key = "admin.undrained" if not drained else "admin.draining" if backend.current else "admin.drained"
    lines = [t(lang, key, name=backend.name)]
    for same in services.jobs.backends():  # on a shared queue: the backends of that name in every process
        if same.process is not None and same.name.lower() == backend.name.lower():
            lines.append(t(lang, "admin.drain_where", process=same.process, busy=_busy(same, lang)))
    return Reply(text="\n".join(lines), private=True)


def _busy(backend: BackendState, lang: str | None) -> str:
    if backend.current is None:
        return t(lang, "admin.backend_idle")
    return t(lang, "admin.backend_running", job=backend.current.id)


def backend_status(services: Services, lang: str | None = None) -> str:
    """Health, current job, loaded model and work done per backend (health details stay in English)."""
    lines = []
    for backend in services.jobs.backends():
        state = (
            t(lang, "admin.backend_healthy")
            if backend.healthy
            else t(lang, "admin.backend_down", detail=backend.detail)
        )
        if backend.drained:
            state += t(lang, "admin.backend_draining" if backend.current else "admin.backend_drained")
        lines.append(
            t(
                lang,
                "admin.backend_line",
                name=backend.label,
                kind=backend.kind,
                state=state,
                busy=_busy(backend, lang),
                model=backend.loaded or t(lang, "admin.backend_unknown"),
                done=backend.completed,
            )
        )
    lines.append(t(lang, "admin.backends_total", count=services.jobs.queue_length()))
    return "\n".join(lines)
