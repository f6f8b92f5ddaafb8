"""/history and /show: a user's recent jobs, and one finished job posted again with its buttons."""

from __future__ import annotations

from bot import presenter
from bot.errors import NotFound
from bot.i18n import t
from bot.models import JobState
from bot.replies import Reply
from commands.actions import load_job
from commands.context import Invocation, Services, language_for

HISTORY_SIZE = 10


async def history(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    lang = await language_for(services, invocation)
    jobs = await services.store.history(invocation.platform, invocation.user_id, HISTORY_SIZE)
    if not jobs:
        return Reply(text=t(lang, "history.empty"), private=True)
    lines = [
        f"{job.id} · {job.created_at:%Y-%m-%d %H:%M} · {t(lang, f'state.{job.state.value}')} · {job.request.preset} · "
        f"“{presenter.short_prompt(job.request.user_prompt, 60)}”"
        for job in jobs
    ]
    return Reply(text=t(lang, "history.title") + "\n" + "\n".join(lines), private=True)


async def show(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    job = await load_job(services, invocation, str(options.get("job", "")).strip())
    if job.state is not JobState.SUCCEEDED:
        position, eta = services.engine.place(job.id)
        if job.state is JobState.QUEUED:
            return presenter.queued(job, position, eta)
        if job.state is JobState.RUNNING:
            lang = await language_for(services, invocation)
            return Reply(text=t(lang, "show.running", job=job.id), private=True)
        return presenter.final(job, [])
    images = await services.store.images(job.id)
    if not images:
        raise NotFound.of("error.images_deleted", job=job.id)
    return presenter.result(job, images)
