"""/history and /show: a user's recent jobs, and one finished job posted again with its buttons."""

from __future__ import annotations

from bot import presenter
from bot.errors import NotFound
from bot.i18n import t
from bot.models import Job, JobState
from bot.replies import Reply, fetched
from commands.actions import load_job
from commands.context import Invocation, Services, language_for
from commands.private import history_prompt, show_private

HISTORY_SIZE = 10


async def history(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    lang = await language_for(services, invocation)
    jobs = await services.store.history(invocation.platform, invocation.user_id, HISTORY_SIZE)
    if not jobs:
        return Reply(text=t(lang, "history.empty"), private=True)
    lines = [
        f"{job.id} · {job.created_at:%Y-%m-%d %H:%M} · {t(lang, f'state.{job.state.value}')} · {job.request.preset} · "
        f"{await _edit_mark(services, job, lang)}“{history_prompt(services, invocation, job, lang)}”"
        for job in jobs
    ]
    return Reply(text=t(lang, "history.title") + "\n" + "\n".join(lines), private=True)


async def show(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    job = await load_job(services, invocation, str(options.get("job", "")).strip())
    if job.destination.private and (private := await show_private(services, invocation, job)) is not None:
        return private  # a private job is shown only in its owner's private chat (commands/private.py)
    if job.state is not JobState.SUCCEEDED:
        position, eta = services.jobs.place(job.id)
        if job.state is JobState.QUEUED:
            return presenter.queued(job, position, eta)
        if job.state is JobState.RUNNING:
            lang = await language_for(services, invocation)
            return Reply(text=t(lang, "show.running", job=job.id), private=True)
        return presenter.final(job, [])
    images = await services.store.images(job.id)
    if not images:
        raise NotFound.of("error.images_deleted", job=job.id)
    reply = await fetched(presenter.result(job, images), services.files)
    if job.request.kind == "edit":
        reply.text += "\n" + await edit_line(services, job, await language_for(services, invocation))
    return reply


async def edit_line(services: Services, job: Job, lang: str) -> str:
    """An edit's instruction and its references' hashes (sha256, first 12 hex digits), in order."""
    hashes = await reference_hashes(services, job)
    instruction = presenter.short_prompt(job.request.user_prompt, 300)
    return t(lang, "edit.shown", count=len(hashes), hashes=", ".join(hashes), instruction=instruction)


async def reference_hashes(services: Services, job: Job) -> list[str]:
    """The sha256 (first 12 hex digits) of each reference, in order; a source id starts with its hash too."""
    hashes = []
    for image_id in job.request.reference_image_ids:
        image = await services.store.image(image_id)
        hashes.append(image.sha256[:12] if image is not None else image_id.removeprefix("src-")[:12])
    return hashes


async def _edit_mark(services: Services, job: Job, lang: str) -> str:
    if job.request.kind != "edit":
        return ""
    hashes = await reference_hashes(services, job)
    return t(lang, "edit.history_mark", count=len(hashes), hashes=", ".join(hashes)) + " · "
