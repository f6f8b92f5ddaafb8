"""/edit: change 1–3 images by an instruction, with the queue, progress, buttons and quotas of /imagine.

The images come from the platform (`Invocation.reference_images`, in order: the first is the one changed) or
from a finished job the invoker may see (`job` and `image`, what the Edit button sends). Every image is checked
like an img2img source and stored (kind "source", by its sha256) before the job is queued, so a Reroll re-runs
the edit from the store, after a restart too. Anything refused is refused before anything is stored or charged.
The user's /settings fill what the command leaves out, as for /imagine, where they fit an edit (commands/saved.py).
"""

from __future__ import annotations

import logging
import math

from bot.errors import InvalidRequest, UserError
from bot.i18n import t
from bot.imagecheck import check_source_image
from bot.models import JobState
from bot.presets import MAX_REFERENCES, Preset
from bot.replies import Reply
from commands.actions import load_job, pick_image
from commands.blocked import check_blocked
from commands.context import Invocation, Services, language_for, prefs_for, require_not_banned
from commands.imagine import (
    allowed_presets,
    build_request,
    check_prompt,
    precheck_quota,
    preset_size,
    random_seed,
    resolve_preset,
    server_preset,
    store_source,
    submit,
)
from commands.options import coerce
from commands.parser import clean_text, parse
from commands.registry import EDIT
from commands.saved import with_saved

log = logging.getLogger(__name__)


async def edit(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    await require_not_banned(services, invocation)
    instruction = clean_text(str(options.get("instruction", "")))
    if not instruction:
        raise InvalidRequest.of("edit.instruction_empty")
    instruction = check_prompt(services, instruction)
    images, parent = await reference_images(services, invocation, options)
    preset = await chosen_preset(services, invocation, options, len(images))
    options = with_saved(await prefs_for(services, invocation), options, preset, strict=False)  # its own options win
    check_count(preset, len(images))
    sizes = await check_images(services, invocation, images)
    aspect = _text(options, "aspect") or nearest_aspect(preset, *sizes[0])
    width, height = preset_size(preset, aspect)
    steps = _bounded(invocation, options, "steps", preset.steps, preset.max_steps, preset.name, "error.steps_range")
    count_key = "error.count_range" if preset.max_images > 1 else "error.count_one"  # not "from 1 to 1"
    count = _bounded(invocation, options, "count", 1, preset.max_images, preset.name, count_key)
    negative = _text(options, "negative")
    await check_blocked(services, invocation, instruction, negative)
    negative_text = _negative(services, preset, negative)
    services.jobs.check_runs(preset, "edit", count, instruction, references=len(images))
    seed = int(options["seed"]) if "seed" in options else random_seed()  # type: ignore[call-overload]
    await precheck_quota(services, invocation, preset.cost(steps, width, height, count, references=len(images)))
    stored = tuple([await store_source(services, data) for data in images])
    request = build_request(
        preset,
        "edit",
        user_prompt=instruction,
        prompt=preset.render_prompt(instruction),
        negative_prompt=negative_text,
        steps=steps,
        width=width,
        height=height,
        seed=seed,
        count=count,
        reference_image_ids=stored,
        parent_job_id=parent[0] if parent else None,
        parent_index=parent[1] if parent else None,
    )
    return await submit(services, invocation, preset, request)


async def reference_images(
    services: Services, invocation: Invocation, options: dict[str, object]
) -> tuple[list[bytes], tuple[str, int] | None]:
    """The images to edit, in order, and (job id, image index from 0) when they are a finished job's result."""
    job_id = _text(options, "job")
    if job_id is None:
        if "image" in options:
            raise InvalidRequest.of("edit.image_without_job")
        if not invocation.reference_images:
            raise InvalidRequest.of("edit.no_image", most=MAX_REFERENCES)
        if len(invocation.reference_images) > MAX_REFERENCES:
            count = len(invocation.reference_images)
            raise InvalidRequest.of("edit.too_many", count=count, most=MAX_REFERENCES, first_extra=MAX_REFERENCES + 1)
        return list(invocation.reference_images), None
    if invocation.reference_images:
        raise InvalidRequest.of("edit.job_and_images")
    job = await load_job(services, invocation, job_id)  # the same rule as /show: owner, same chat, bot admins
    if job.state is not JobState.SUCCEEDED:
        raise InvalidRequest.of("error.not_finished", job=job.id, state=job.state.value)
    index = int(options.get("image", 1)) - 1  # type: ignore[call-overload]
    image = await pick_image(services, job, index)
    return [await services.files.read(image.path)], (job.id, index)


async def chosen_preset(
    services: Services, invocation: Invocation, options: dict[str, object], references: int
) -> Preset:
    """The --preset; else the /settings preset when it can edit this many images here; else the server's edit
    default (a saved preset that cannot is passed over, not refused: it was chosen for /imagine or other edits)."""
    name = _text(options, "preset")
    if name is None:
        saved = (await prefs_for(services, invocation)).preset
        fits = [p.name for p in await allowed_presets(services, invocation) if p.max_references >= max(1, references)]
        name = saved if saved in fits else None
    return await edit_preset(services, invocation, name)


async def edit_preset(services: Services, invocation: Invocation, name: str | None) -> Preset:
    """The named preset if it can edit; else the server's default if it can, else the first one allowed here."""
    editing = [preset for preset in await allowed_presets(services, invocation) if preset.max_references > 0]
    if name is not None:
        preset = await resolve_preset(services, invocation, name)
        if preset.max_references == 0:
            allowed = ", ".join(p.name for p in editing) or t("en", "error.no_allowed")
            raise InvalidRequest.of("edit.preset_cannot_edit", name=preset.name, allowed=allowed)
        return preset
    default = services.settings.presets.get(await server_preset(services, invocation))
    if default is not None and default in editing:
        return default
    if not editing:
        raise InvalidRequest.of("edit.no_presets")
    return editing[0]


async def refusal_before_download(
    services: Services, invocation: Invocation, text: str, bot_username: str | None, count: int
) -> str | None:
    """What /edit would refuse about `count` images (too many for the preset, a preset that cannot edit), in the
    user's language, so an adapter downloads nothing that would be refused; None: go on (dispatch says the rest)."""
    try:
        command = parse(text, bot_username)
        if command is None or command.name != EDIT.name:
            return None
        options = coerce(EDIT, command.options, command.labels)
        check_count(await chosen_preset(services, invocation, options, count), count)
    except UserError as exc:
        return exc.localized(await language_for(services, invocation))
    return None


def check_count(preset: Preset, count: int) -> None:
    if count > preset.max_references:
        raise InvalidRequest.of("edit.preset_references", name=preset.name, count=preset.max_references, given=count)


async def check_images(services: Services, invocation: Invocation, images: list[bytes]) -> list[tuple[int, int]]:
    """Every image checked as an img2img source (type, size, pixel bombs); its size, or which one is bad and why."""
    limits = services.settings.limits
    sizes = []
    for number, data in enumerate(images, start=1):
        try:
            size = check_source_image(data, max_bytes=limits.max_source_bytes, max_pixels=limits.max_source_pixels)
            sizes.append(size)
        except UserError as exc:
            if len(images) == 1:
                raise
            reason = exc.localized(await language_for(services, invocation))
            raise InvalidRequest.of("edit.reference", number=number, count=len(images), reason=reason) from exc
    return sizes


def nearest_aspect(preset: Preset, width: int, height: int) -> str:
    """The preset's aspect ratio closest to the image's, so an edit keeps the picture's shape."""

    def distance(aspect: str) -> float:
        w, h = aspect.split(":")
        return abs(math.log(int(w) / int(h)) - math.log(width / height))

    return min(preset.aspect_ratios, key=distance)


def _bounded(
    invocation: Invocation, options: dict[str, object], name: str, default: int, maximum: int, preset: str, key: str
) -> int:
    value = int(str(options.get(name, default)))
    if not 1 <= value <= maximum:
        raise InvalidRequest.of(key, option=invocation.label(name), preset=preset, maximum=maximum, value=value)
    return value


def _negative(services: Services, preset: Preset, negative: str | None) -> str:
    text = preset.render_negative(clean_text(negative) if negative is not None else None)
    if len(text) > services.settings.limits.max_prompt_chars:
        raise InvalidRequest.of("error.negative_too_long", limit=services.settings.limits.max_prompt_chars)
    return text


def _text(options: dict[str, object], name: str) -> str | None:
    value = options.get(name)
    return None if value is None else str(value).strip() or None
