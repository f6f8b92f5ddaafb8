"""/queue: what runs now and what waits on this server, in the order it will run."""

from __future__ import annotations

from bot.presenter import duration, short_prompt
from bot.replies import Reply
from commands.context import Invocation, Services

SHOWN = 15


async def queue(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    engine = services.engine
    server = invocation.destination.queue_key
    lines = []
    for job in engine.running_jobs():
        mark = "▶"
        here = job.queue_key == server
        lines.append(
            f"{mark} {job.id} · {job.request.preset} · "
            + (f"“{short_prompt(job.request.user_prompt, 60)}”" if here else "another server")
        )
    waiting = engine.queued_jobs(server)
    for position, job in waiting[:SHOWN]:
        lines.append(
            f"#{position} {job.id} · {job.request.preset} · “{short_prompt(job.request.user_prompt, 60)}” · "
            f"about {duration(engine.eta(job.id))}"
        )
    if len(waiting) > SHOWN:
        lines.append(f"… and {len(waiting) - SHOWN} more")
    total = len(engine.scheduler)
    paused = " The queue of this server is paused." if engine.scheduler.is_paused(server) else ""
    if not lines:
        return Reply(text=f"Nothing is queued here ({total} jobs wait on other servers).{paused}", private=True)
    header = f"{len(waiting)} waiting here, {total} in all.{paused}"
    return Reply(text=header + "\n" + "\n".join(lines), private=True)
