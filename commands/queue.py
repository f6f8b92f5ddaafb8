"""/queue: what runs now and what waits on this server, in the order it will run."""

from __future__ import annotations

from bot.i18n import t
from bot.presenter import duration, shown_prompt
from bot.replies import Reply
from commands.context import Invocation, Services, language_for

SHOWN = 15


async def queue(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    jobs = services.jobs
    lang = await language_for(services, invocation)
    server = invocation.destination.queue_key
    lines = []
    for job in jobs.running_jobs():
        mark = "▶"
        here = job.queue_key == server
        lines.append(
            f"{mark} {job.id} · {job.request.preset} · "
            + (f"“{shown_prompt(job, 60, lang)}”" if here else t(lang, "queue.another_server"))
        )
    waiting = jobs.queued_jobs(server)
    etas = {job_id: eta for job_id, (_, eta) in jobs.places([job.id for _, job in waiting[:SHOWN]]).items()}
    for position, job in waiting[:SHOWN]:
        lines.append(
            t(
                lang,
                "queue.waiting",
                position=position,
                job=job.id,
                preset=job.request.preset,
                prompt=shown_prompt(job, 60, lang),
                eta=duration(etas.get(job.id), lang),
            )
        )
    if len(waiting) > SHOWN:
        lines.append(t(lang, "queue.more", count=len(waiting) - SHOWN))
    total = jobs.queue_length()
    paused = t(lang, "queue.paused") if jobs.is_paused(server) else ""
    if not lines:
        return Reply(text=t(lang, "queue.empty", count=total, paused=paused), private=True)
    header = t(lang, "queue.header", waiting=len(waiting), total=total, paused=paused)
    return Reply(text=header + "\n" + "\n".join(lines), private=True)
