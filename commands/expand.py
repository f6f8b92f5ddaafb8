"""/imagine with wildcards and LoRAs: one prompt becomes the prompts to queue, then all are queued or none."""

from __future__ import annotations

import logging
import random

from bot import presenter
from bot.errors import InvalidRequest
from bot.i18n import t
from bot.loras import Pick, apply
from bot.models import GenerationRequest, Job
from bot.presets import Preset
from bot.replies import Reply
from bot.wildcards import Variant, expand
from commands.context import Invocation, Services, language_for

log = logging.getLogger(__name__)


def variants(services: Services, prompt: str, seed: int) -> list[Variant]:
    """The prompts a wildcard prompt makes (one, unchanged, when it has none); draws follow the seed."""
    config = services.settings.wildcards
    return expand(prompt, config.lists(), config.max_jobs, random.Random(seed))


def with_loras(preset: Preset, prompt: str, picks: list[Pick]) -> str:
    """The rendered prompt: the preset's template around the user's words, triggers and LoRA tags."""
    return preset.render_prompt(apply(prompt, picks))


def check_queue_room(services: Services, invocation: Invocation, jobs: int) -> None:
    """An early, clear answer when the expansion cannot fit the user's queue cap (the store checks it again)."""
    queued = services.jobs.queued_count(invocation.platform, invocation.user_id)
    limit = services.settings.limits.max_queued_per_user
    if jobs > 1 and queued + jobs > limit:
        raise InvalidRequest.of("error.wildcard_queue", count=jobs, limit=limit, queued=queued)


async def requests_for(
    services: Services, invocation: Invocation, base: GenerationRequest, found: list[Variant], picks: list[Pick]
) -> list[GenerationRequest]:
    """One request per prompt, each telling Info what was chosen."""
    preset = services.settings.presets[base.preset]
    lang = await language_for(services, invocation)
    requests = []
    for index, variant in enumerate(found, start=1):
        note = None
        if variant.picks:
            note = t(lang, "info.expansion", picks=", ".join(variant.picks), index=index, total=len(found))
        update = {"user_prompt": variant.prompt, "prompt": with_loras(preset, variant.prompt, picks), "expansion": note}
        requests.append(base.model_copy(update=update))
    return requests


async def submit_all(
    services: Services, invocation: Invocation, preset: Preset, requests: list[GenerationRequest]
) -> Reply:
    """Charge and queue every request in one transaction; the answer lists the jobs."""
    from commands.imagine import destination_for, quota_limits

    if services.jobs.is_draining():
        raise InvalidRequest.of("error.restarting")
    destination = await destination_for(services, invocation)
    jobs = [
        Job(request=r, destination=destination, cost=preset.cost(r.steps, r.width, r.height, r.count)) for r in requests
    ]
    limit = services.settings.limits.max_queued_per_user
    ticket = await services.jobs.submit_all(jobs, await quota_limits(services, invocation), max_queued=limit)
    who = f"{invocation.platform}:{invocation.user_id}"
    log.info("%d jobs queued by %s from one prompt (%s)", len(jobs), who, preset.name)
    return presenter.expanded(jobs, ticket.position, ticket.eta_seconds, ticket.paused)
