"""Buttons on a finished job: reroll, vary, upscale, edit, delete, info, and cancel on a queued one.

The job is read back from the store, so a button works after a restart and in any process.
"""

from __future__ import annotations

import logging

from bot import presenter
from bot.errors import InvalidRequest, NotFound, NotPermitted
from bot.i18n import t
from bot.models import Job, JobState, StoredImage
from bot.quota import request_cost
from bot.replies import Action, Button, Reply, parse_button_id
from commands.blocked import check_blocked
from commands.context import Invocation, Services, administers, is_bot_admin, language_for, require_not_banned
from commands.imagine import build_request, precheck_quota, random_seed, resolve_preset, submit
from commands.loras import lora_button
from commands.private import press_private
from commands.registry import CommandInput
from commands.settings import setting_button

log = logging.getLogger(__name__)


async def load_job(services: Services, invocation: Invocation, job_id: str) -> Job:
    """A job the invoker may see; any other answers as if it did not exist (ids are in every caption)."""
    job = services.jobs.active_job(job_id) or await services.store.get(job_id)
    if job is None or not visible(services, invocation, job):
        raise NotFound.of("error.no_job", job=job_id[:20])
    return job


def visible(services: Services, invocation: Invocation, job: Job) -> bool:
    """Its owner, the chat (channel) it was made in, and the bot's admins; nobody else, not even the admins of
    that server in another channel (a private channel's jobs stay in it)."""
    made, here = job.destination, invocation.destination
    if made.platform != here.platform:
        return False
    same_chat = made.server_id == here.server_id and made.channel_id == here.channel_id
    return made.user_id == here.user_id or same_chat or is_bot_admin(services, invocation)


def owns(services: Services, invocation: Invocation, job: Job) -> bool:
    # An admin of another server (anyone can make a group) has no say over this server's jobs.
    return job.destination.user_id == invocation.user_id or administers(services, invocation, job.queue_key)


async def pick_image(services: Services, job: Job, index: int | None) -> StoredImage:
    images = await services.store.images(job.id)
    if not images:
        raise NotFound.of("error.no_images", job=job.id)
    if index is None or not 0 <= index < len(images):
        raise InvalidRequest.of("error.image_range", job=job.id, count=len(images))
    return images[index]


async def sources_of(services: Services, job: Job) -> list[StoredImage]:
    """The stored images a job was given (an edit's references, an img2img source), for Info; none that are gone.
    None for a job made from another job's result: Info names that job."""
    request = job.request
    if request.parent_job_id:
        return []
    ids = request.reference_image_ids or ((request.source_image_id,) if request.source_image_id else ())
    found = [await services.store.image(image_id) for image_id in ids]
    return [image for image in found if image is not None]


async def press(services: Services, invocation: Invocation, button_id: str) -> Reply:
    """Handle a button press by its id `action:job[:index]`."""
    try:
        action, job_id, index = parse_button_id(button_id)
    except ValueError as exc:
        raise InvalidRequest.of("error.unknown_button") from exc
    await require_not_banned(services, invocation)
    if action is Action.LORA:  # not a job: the id holds a preset name and the LoRA's place in its list
        return await lora_button(services, invocation, job_id, index)
    if action is Action.SETTING:  # not a job: the id holds a /settings key and the choice's place
        return await setting_button(services, invocation, job_id, index)
    job = await load_job(services, invocation, job_id)
    invocation = await press_private(services, invocation, job, action)  # private jobs: only in the owner's DM
    if action is Action.CANCEL:
        return await cancel_job(services, invocation, job)
    if action is Action.INFO:
        images, sources = await services.store.images(job.id), await sources_of(services, job)
        return presenter.info(job, images, await language_for(services, invocation), sources)
    if action is Action.DELETE:
        return await delete(services, invocation, job)
    if action is Action.EDIT:
        return await ask_instruction(services, invocation, job, index)
    if job.state is not JobState.SUCCEEDED:
        raise InvalidRequest.of("error.not_finished", job=job.id, state=job.state.value)
    preset = await resolve_preset(services, invocation, job.request.preset)
    base = job.request
    if action is not Action.UPSCALE:  # a word blocked since the job ran blocks its rerolls and variations too
        await check_blocked(services, invocation, base.user_prompt, None)
    common = {"parent_job_id": job.id, "parent_index": index, "source_image_id": base.source_image_id}
    if action is Action.REROLL:
        request = base.model_copy(update={**common, "seed": random_seed(), "parent_index": None})
    elif action is Action.VARY:
        image = await pick_image(services, job, index)
        request = base.model_copy(
            update={
                **common,
                "seed": image.seed if image.seed is not None else base.seed,
                "subseed": random_seed(),
                "subseed_strength": preset.variation_strength,
            }
        )
    else:
        image = await pick_image(services, job, index)
        factor = preset.upscale_factor
        request = build_request(
            preset,
            "upscale",
            user_prompt=base.user_prompt,
            prompt=base.prompt,
            negative_prompt=base.negative_prompt,
            steps=base.steps,
            width=round(image.width * factor),
            height=round(image.height * factor),
            seed=image.seed or base.seed,
            count=1,
            source_image_id=image.id,
            parent_job_id=job.id,
            parent_index=index,
            upscale_factor=factor,
        )
    await precheck_quota(services, invocation, request_cost(preset, request))  # an edit's references count too
    return await submit(services, invocation, preset, request, priority=1)


async def cancel_job(services: Services, invocation: Invocation, job: Job) -> Reply:
    if not owns(services, invocation, job):
        raise NotPermitted.of("error.not_your_job")
    if job.state.is_final:
        raise InvalidRequest.of("error.already_final", job=job.id, state=job.state.value)
    updated = await services.jobs.cancel(job.id)
    lang = await language_for(services, invocation)
    if updated.state is JobState.CANCELLED:
        return Reply(text=t(lang, "cancel.done", job=job.id), private=True, job_id=job.id)
    return Reply(text=t(lang, "cancel.stopping", job=job.id), private=True, job_id=job.id)


async def delete(services: Services, invocation: Invocation, job: Job) -> Reply:
    if not owns(services, invocation, job):
        raise NotPermitted.of("error.not_your_images")
    removed = await services.store.delete_images(job.id)
    for image in removed:
        await services.files.delete(image.path)
    log.info("job %s images deleted by %s:%s", job.id, invocation.platform, invocation.user_id)
    lang = await language_for(services, invocation)
    return Reply(text=t(lang, "delete.done", job=job.id), private=True, job_id=job.id, remove_message=True)


async def ask_instruction(services: Services, invocation: Invocation, job: Job, index: int | None) -> Reply:
    """The Edit button: check the image is there for this user, then have the adapter ask what to change."""
    if job.state is not JobState.SUCCEEDED:
        raise InvalidRequest.of("error.not_finished", job=job.id, state=job.state.value)
    await pick_image(services, job, index)
    button = Button("", Action.EDIT, job.id, index).id
    lang, number = await language_for(services, invocation), (index or 0) + 1
    if invocation.platform == "console":  # no form and no replies in a terminal: the command to type instead
        return Reply(text=t(lang, "edit_prompt.console", index=number, job=job.id), private=True, job_id=job.id)
    text = t(lang, "edit_prompt.ask", index=number, job=job.id)
    return Reply(text=text, private=True, job_id=job.id, asks_instruction=button)


def edit_input(button_id: str, instruction: str) -> CommandInput:
    """The /edit an Edit button's instruction runs: that job's image, read from the store (access as /show)."""
    _, job_id, index = parse_button_id(button_id)
    return CommandInput("edit", {"instruction": instruction, "job": job_id, "image": (index or 0) + 1})
