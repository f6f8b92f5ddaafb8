"""/imagine: validate against the preset, the limits and the quota, then queue the job."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import replace
from typing import Any

from bot import presenter
from bot.errors import InvalidRequest, PresetNotAllowed, QuotaExceeded, UserError
from bot.i18n import t
from bot.imagecheck import check_source_image, image_size, to_png
from bot.loras import parse_picks
from bot.models import Destination, GenerationRequest, Job, JobKind, StoredImage
from bot.ports import QuotaLimits
from bot.presets import Preset
from bot.quota import limits_for, request_cost
from bot.replies import Reply
from commands.blocked import check_blocked
from commands.context import Invocation, Services, is_bot_admin, language_for, prefs_for, require_not_banned
from commands.expand import check_queue_room, requests_for, submit_all, variants, with_loras
from commands.parser import clean_text
from commands.registry import MAX_SEED
from commands.saved import with_saved

log = logging.getLogger(__name__)


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


async def allowed_presets(services: Services, invocation: Invocation) -> list[Preset]:
    """Presets this user may use in this channel (NSFW and channel allowlists applied)."""
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    listed = server.channel_presets.get(invocation.destination.channel_id)
    return [
        preset
        for preset in services.settings.presets.values()
        if (listed is None or preset.name in listed) and (invocation.channel_nsfw or not preset.nsfw)
    ]


async def resolve_preset(services: Services, invocation: Invocation, name: str | None) -> Preset:
    presets = services.settings.presets
    if not presets:
        raise InvalidRequest.of("error.no_presets")
    if not name:
        name = await server_preset(services, invocation)
    # Preset names match case-insensitively, like option names (`--PRESET SD15` is `--preset sd15`).
    preset = presets.get(name) or next((p for key, p in presets.items() if key.lower() == name.lower()), None)
    allowed = await allowed_presets(services, invocation)
    allowed_names = ", ".join(p.name for p in allowed) or t("en", "error.no_allowed")
    if preset is None:
        raise InvalidRequest.of("error.unknown_preset", name=name, allowed=allowed_names)
    if preset.nsfw and not invocation.channel_nsfw:
        raise PresetNotAllowed.of("error.nsfw_preset", name=preset.name, allowed=allowed_names)
    if preset.name not in {p.name for p in allowed}:
        raise PresetNotAllowed.of("error.preset_not_allowed", name=preset.name, allowed=allowed_names)
    return preset


async def server_preset(services: Services, invocation: Invocation) -> str:
    """The server's default preset (/admin default), else the first configured."""
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    return server.default_preset or services.settings.first_preset


def check_prompt(services: Services, prompt: str) -> str:
    prompt = clean_text(prompt)
    limit = services.settings.limits.max_prompt_chars
    if not prompt:
        raise InvalidRequest.of("error.prompt_empty")
    if len(prompt) > limit:
        raise InvalidRequest.of("error.prompt_too_long", length=len(prompt), limit=limit)
    return prompt


async def store_source(services: Services, data: bytes) -> str:
    """Keep an uploaded source image (content-addressed, so the same upload is stored once)."""
    png = to_png(data)
    digest = hashlib.sha256(png).hexdigest()
    image_id = f"src-{digest[:24]}"
    if await services.store.image(image_id) is None:
        width, height = image_size(png)
        path = await services.files.write("sources", f"{digest[:24]}.png", png)
        await services.store.add_source_image(
            StoredImage(
                id=image_id, job_id=None, index=0, path=path, sha256=digest, width=width, height=height, kind="source"
            )
        )
    return image_id


async def submit(
    services: Services, invocation: Invocation, preset: Preset, request: GenerationRequest, *, priority: int = 0
) -> Reply:
    """Charge and queue a resolved request; shared by /imagine and the buttons."""
    if services.jobs.is_draining():
        raise InvalidRequest.of("error.restarting")
    queued = services.jobs.queued_count(invocation.platform, invocation.user_id)
    limit = services.settings.limits.max_queued_per_user
    if queued >= limit:  # an early answer; the binding check is in the store, atomic with the insert
        raise InvalidRequest.of("error.too_many_queued", count=queued, limit=limit)
    cost = request_cost(preset, request)  # an edit's references count (bot/quota.py)
    destination = await destination_for(services, invocation)
    job = Job(request=request, destination=destination, cost=cost, priority=priority)
    ticket = await services.jobs.submit(job, await quota_limits(services, invocation), max_queued=limit)
    log.info("job %s queued by %s:%s (%s, cost %g)", job.id, invocation.platform, invocation.user_id, preset.name, cost)
    return presenter.queued(job, ticket.position, ticket.eta_seconds, ticket.paused)


async def destination_for(services: Services, invocation: Invocation) -> Destination:
    """Where the job's messages go, in the user's chosen (or the server's, or the platform's) language, and
    whether its result goes to the user privately (the command's --private, else their /settings)."""
    private = invocation.private
    if private is None:
        private = (await prefs_for(services, invocation)).private
    locale = await language_for(services, invocation)
    return invocation.destination.model_copy(update={"locale": locale, "private": private})


def build_request(preset: Preset, kind: JobKind, **values: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "kind": kind,
        "preset": preset.name,
        "checkpoint": preset.checkpoint,
        "sampler": preset.sampler,
        "scheduler": preset.scheduler,
        "cfg_scale": preset.cfg_scale,
        "distilled_cfg_scale": preset.distilled_cfg_scale,
        "override_settings": dict(preset.override_settings),
        "upscaler": preset.upscaler,
        "upscale_factor": preset.upscale_factor,
        "hires": preset.hires if kind == "txt2img" else None,
    }
    fields.update(values)
    return GenerationRequest(**fields)


async def imagine(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    await require_not_banned(services, invocation)
    prompt = check_prompt(services, str(options.get("prompt", "")))
    options = await with_settings(services, invocation, options)  # the command's own options win
    preset = await resolve_preset(services, invocation, _opt_str(options, "preset"))
    width, height = preset_size(preset, _opt_str(options, "aspect"))
    steps = int(options.get("steps", preset.steps))  # type: ignore[call-overload]
    if not 1 <= steps <= preset.max_steps:
        label = invocation.label("steps")
        raise InvalidRequest.of(
            "error.steps_range", option=label, preset=preset.name, maximum=preset.max_steps, value=steps
        )
    count = int(options.get("count", 1))  # type: ignore[call-overload]
    if not 1 <= count <= preset.max_images:
        label = invocation.label("count")
        key = "error.count_range" if preset.max_images > 1 else "error.count_one"  # not "from 1 to 1"
        raise InvalidRequest.of(key, option=label, preset=preset.name, maximum=preset.max_images, value=count)
    negative = _opt_str(options, "negative")
    seed = int(options["seed"]) if "seed" in options else random_seed()  # type: ignore[call-overload]
    found = variants(services, prompt, seed)  # refused whole (too many, unknown list) before anything is stored
    picks = parse_picks(_opt_str(options, "lora") or "", preset.loras, preset.name)
    for variant in found:
        check_prompt(services, variant.prompt)  # a drawn list item can make it longer or empty
        await check_blocked(services, invocation, variant.prompt, negative)
    negative_text = preset.render_negative(clean_text(negative) if negative is not None else None)
    if len(negative_text) > services.settings.limits.max_prompt_chars:
        raise InvalidRequest.of("error.negative_too_long", limit=services.settings.limits.max_prompt_chars)
    rendered = with_loras(preset, found[0].prompt, picks)
    kind: JobKind = "txt2img"
    source_id = None
    strength = None
    if invocation.source_image is not None:
        check_source(services, invocation.source_image)
        kind = "img2img"
        strength = float(options.get("strength", preset.denoising_strength))  # type: ignore[arg-type]
    elif "strength" in options:
        raise InvalidRequest.of("error.strength_without_image")
    for variant in found:  # no backend can run one of them: refused, nothing stored
        services.jobs.check_runs(preset, kind, count, with_loras(preset, variant.prompt, picks))
    check_queue_room(services, invocation, len(found))
    cost = preset.cost(steps, width, height, count, hires=kind == "txt2img")
    await precheck_quota(services, invocation, cost * len(found))
    if invocation.source_image is not None:
        source_id = await store_source(services, invocation.source_image)
    request = build_request(
        preset,
        kind,
        user_prompt=prompt,
        prompt=rendered,
        negative_prompt=negative_text,
        steps=steps,
        width=width,
        height=height,
        seed=seed,
        count=count,
        source_image_id=source_id,
        denoising_strength=strength,
    )
    if len(found) == 1 and not found[0].picks:
        return await submit(services, invocation, preset, request)
    requests = await requests_for(services, invocation, request, found, picks)
    if len(requests) == 1:
        return await submit(services, invocation, preset, requests[0])
    return await submit_all(services, invocation, preset, requests)


async def with_settings(services: Services, invocation: Invocation, options: dict[str, object]) -> dict[str, object]:
    """The options with the user's /settings filled in where the command left them out. A saved preset, aspect or
    step count that cannot be used here is refused with a word about /settings."""
    prefs = await prefs_for(services, invocation)
    merged = dict(options)
    if prefs.preset and "preset" not in options:
        await check_saved_preset(services, invocation, prefs.preset)
        merged["preset"] = prefs.preset
    preset = await resolve_preset(services, invocation, _opt_str(merged, "preset"))
    return with_saved(prefs, merged, preset, strict=True)


async def check_saved_preset(services: Services, invocation: Invocation, name: str) -> None:
    """A saved preset that was removed or is not allowed in this channel: say that it comes from /settings."""
    try:
        await resolve_preset(services, invocation, name)
    except UserError as exc:
        allowed = ", ".join(p.name for p in await allowed_presets(services, invocation)) or "—"
        raise InvalidRequest.of("settings.saved_preset", name=name, allowed=allowed) from exc


async def quota_limits(services: Services, invocation: Invocation) -> QuotaLimits | None:
    """The limits a job is charged against: None when quotas are off. Bot admins are counted, not limited
    (unless a personal limit was set for them); a chat admin is charged like everyone else."""
    user = await services.accounts.user(invocation.platform, invocation.user_id)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    limits = limits_for(services.settings.quota, services.clock(), user, server, invocation.roles)
    if limits is not None and user.daily_limit is None and is_bot_admin(services, invocation):
        return replace(limits, user=None, server=None)
    return limits


async def precheck_quota(services: Services, invocation: Invocation, cost: float) -> None:
    """A read-only look before anything is written; the binding check is atomic in the store."""
    limits = await quota_limits(services, invocation)
    if limits is None or (limits.user is None and limits.server is None):
        return
    used_user, used_server = await services.store.usage(
        invocation.platform, invocation.destination.server_id, invocation.user_id, limits.day
    )
    for used, limit, key in (
        (used_user, limits.user, "error.quota_user"),
        (used_server, limits.server, "error.quota_server"),
    ):
        if limit is not None and used + cost > limit:
            raise QuotaExceeded.of(key, cost=cost, left=max(0.0, limit - used), limit=limit)


def preset_size(preset: Preset, aspect: str | None) -> tuple[int, int]:
    """The preset's size for an aspect ratio, refusing ratios it does not offer (in the user's language)."""
    if aspect and aspect not in preset.aspect_ratios:
        raise InvalidRequest.of(
            "error.aspect", aspect=aspect, name=preset.name, allowed=", ".join(preset.aspect_ratios)
        )
    return preset.size(aspect)


def check_source(services: Services, data: bytes) -> None:
    """Validate an uploaded img2img source; the common refusals come out in the user's language."""
    limits = services.settings.limits
    if len(data) > limits.max_source_bytes:
        raise InvalidRequest.of(
            "error.image_too_large", size=len(data) / 1_048_576, limit=limits.max_source_bytes / 1_048_576
        )
    try:
        check_source_image(data, max_bytes=limits.max_source_bytes, max_pixels=limits.max_source_pixels)
    except InvalidRequest as exc:
        if str(exc) == t("en", "error.not_image"):
            raise InvalidRequest.of("error.not_image") from exc
        raise


def _opt_str(options: dict[str, object], name: str) -> str | None:
    value = options.get(name)
    return None if value is None else str(value).strip() or None
