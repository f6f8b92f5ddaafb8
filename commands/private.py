"""Private results in the commands: who may see a private job where, and /show sending it to the owner's DM.

A private job's images and prompt are shown only in its owner's private chat (or a bot admin's). Elsewhere
/show sends it there (its owner) or says it is private (anyone else); buttons on it work only there, except
Cancel on the channel's status message.
"""

from __future__ import annotations

import dataclasses

from bot.errors import NotPermitted
from bot.i18n import t
from bot.models import DeliveryState, Job, JobState
from bot.presenter import short_prompt
from bot.privacy import DirectClosed, in_private_chat, owner_here
from bot.replies import Action, Reply
from commands.context import Invocation, Services, is_bot_admin, language_for

NEW_JOB_ACTIONS = frozenset({Action.REROLL, Action.VARY, Action.UPSCALE})


def may_see(services: Services, invocation: Invocation, job: Job) -> bool:
    """Whether the job's prompt and images may be shown where the invoker is."""
    if not job.destination.private:
        return True
    here = invocation.destination
    return owner_here(job, here) or (in_private_chat(here) and is_bot_admin(services, invocation))


async def show_private(services: Services, invocation: Invocation, job: Job) -> Reply | None:
    """/show of a private job: None to show it here as usual; otherwise the answer that replaces it."""
    if may_see(services, invocation, job):
        if job.delivery is DeliveryState.HELD and owner_here(job, invocation.destination):
            await services.jobs.mark_shown(job)  # the result the user's closed DMs held is with them now
        return None
    lang = await language_for(services, invocation)
    if invocation.user_id != job.destination.user_id:
        return Reply(text=t(lang, "private.not_yours", job=job.id), private=True, job_id=job.id)
    if job.state is not JobState.SUCCEEDED:
        return None  # its status, without the prompt (bot.presenter.shown_prompt)
    try:
        sent = await services.jobs.send_privately(job)
    except DirectClosed as closed:
        return Reply(text=closed.instructions, private=True, job_id=job.id)
    key = "private.sent_again" if sent else "private.send_failed"
    return Reply(text=t(lang, key, job=job.id), private=True, job_id=job.id)


async def press_private(services: Services, invocation: Invocation, job: Job, action: Action) -> Invocation:
    """A button on a private job: only where it may be seen (Cancel also on the channel's status message, by its
    owner); a job it makes is private too. Returns the invocation to go on with."""
    if action is not Action.CANCEL and not may_see(services, invocation, job):
        raise NotPermitted.of("private.not_here", job=job.id)
    if action in NEW_JOB_ACTIONS and job.destination.private:
        return dataclasses.replace(invocation, private=True)
    return invocation


def history_prompt(services: Services, invocation: Invocation, job: Job, lang: str) -> str:
    """/history outside the user's private chat lists a private job without its prompt."""
    if may_see(services, invocation, job):
        return short_prompt(job.request.user_prompt, 60)
    return t(lang, "private.prompt")
