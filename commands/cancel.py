"""/cancel [job]: cancel a job by id, or your most recent queued or running one."""

from __future__ import annotations

from bot.errors import NotFound
from bot.replies import Reply
from commands.actions import cancel_job, load_job
from commands.context import Invocation, Services


async def cancel(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    job_id = str(options.get("job") or "").strip()
    if job_id:
        return await cancel_job(services, invocation, await load_job(services, invocation, job_id))
    mine = [
        job
        for job in [*services.jobs.running_jobs(), *(job for _, job in services.jobs.queued_jobs())]
        if job.destination.platform == invocation.platform and job.destination.user_id == invocation.user_id
    ]
    if not mine:
        raise NotFound.of("error.nothing_to_cancel")
    latest = max(mine, key=lambda job: job.created_at)
    return await cancel_job(services, invocation, latest)
