"""Quota arithmetic: which day a moment belongs to, and which daily limits apply to a request."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.models import GenerationRequest
from bot.ports import QuotaLimits, ServerSettings, UserRecord
from bot.presets import Preset
from bot.settings import QuotaConfig

UPSCALE_STEPS = 10  # an upscale is charged like 10 steps at the upscaled size


def request_cost(preset: Preset, request: GenerationRequest) -> float:
    """What a request is charged: steps × megapixels × images × the preset's weight; the hires pass at its size;
    an upscale as 10 steps at the new size; an edit (1 + references) times the same generation (Preset.cost)."""
    if request.kind == "upscale":
        return preset.cost(UPSCALE_STEPS, request.width, request.height, 1)
    return preset.cost(
        request.steps,
        request.width,
        request.height,
        request.count,
        hires=request.hires is not None,
        references=len(request.reference_image_ids),
    )


def quota_day(now: datetime, config: QuotaConfig) -> date:
    """The quota day of a moment: days start at `reset_hour` in the configured time zone."""
    local = now.astimezone(ZoneInfo(config.timezone))
    return (local - timedelta(hours=config.reset_hour)).date()


def user_limit(config: QuotaConfig, user: UserRecord, server: ServerSettings, roles: list[str]) -> float | None:
    """A personal limit wins; otherwise the most generous role limit; otherwise the default."""
    if user.daily_limit is not None:  # set by a bot-wide admin
        return user.daily_limit
    if user.user_id in server.user_limits:  # set by this server's admin
        return server.user_limits[user.user_id]
    role_limits = {**config.roles, **server.role_limits}
    names = [*roles, *([user.role] if user.role else [])]
    matched = [role_limits[name] for name in names if name in role_limits]
    return max(matched) if matched else config.user_daily


def limits_for(
    config: QuotaConfig, now: datetime, user: UserRecord, server: ServerSettings, roles: list[str]
) -> QuotaLimits | None:
    if not config.enabled:
        return None
    server_limit = server.daily_limit if server.daily_limit is not None else config.server_daily
    return QuotaLimits(user=user_limit(config, user, server, roles), server=server_limit, day=quota_day(now, config))
