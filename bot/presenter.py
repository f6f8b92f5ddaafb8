"""What the user is shown about a job: queued, progress, result, failure. Platform-neutral."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.i18n import t
from bot.models import Job, JobState, Progress, StoredImage
from bot.privacy import hides
from bot.replies import Action, Button, ImageAttachment, Reply, Tone

BUTTONS_PER_ROW = 5


def short_prompt(text: str, limit: int = 180) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def shown_prompt(job: Job, limit: int = 180, lang: str | None = None) -> str:
    """The prompt as a shared channel may see it: a private job's stays out (bot.privacy)."""
    if hides(job):
        return t(lang or lang_of(job), "private.prompt")
    return short_prompt(job.request.user_prompt, limit)


def lang_of(job: Job) -> str:
    """The language of a job's messages, fixed when it was queued."""
    return job.destination.locale


def duration(seconds: float | None, lang: str = "en") -> str:
    if seconds is None:
        return t(lang, "duration.unknown")
    seconds = max(0, round(seconds))
    if seconds < 60:
        return t(lang, "duration.s", s=seconds)
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return t(lang, "duration.min_s", m=minutes, s=rest) if rest else t(lang, "duration.min", m=minutes)
    hours, minutes = divmod(minutes, 60)
    return t(lang, "duration.h_min", h=hours, m=minutes)


def cancel_row(job: Job) -> list[list[Button]]:
    return [[Button(t(lang_of(job), "button.cancel"), Action.CANCEL, job.id, danger=True)]]


def queued(job: Job, position: int | None, eta: float | None, paused: bool = False) -> Reply:
    request, lang = job.request, lang_of(job)
    where = t(lang, "queued.position", position=position) if position else t(lang, "queued.in_line")
    wait = t(lang, "queued.paused") if paused else t(lang, "queued.wait", eta=duration(eta, lang))
    images = t(lang, "queued.images", count=request.count)
    text = t(
        lang,
        "queued.text",
        where=where,
        wait=wait,
        prompt=shown_prompt(job),
        preset=request.preset,
        width=request.width,
        height=request.height,
        images=images,
        job=job.id,
    )
    return Reply(text=text, buttons=cancel_row(job), job_id=job.id)


def expanded(jobs: Sequence[Job], position: int | None, eta: float | None, paused: bool = False) -> Reply:
    """The answer to a prompt that became several jobs (wildcards): the list, then the first job's place."""
    first = queued(jobs[0], position, eta, paused)
    lines = [t(lang_of(jobs[0]), "queued.expanded", count=len(jobs))]
    lines += [f"· {job.id}: {shown_prompt(job)}" for job in jobs]
    return replace(first, text="\n".join([*lines, "", first.text]))


def progress_bar(fraction: float, width: int = 20) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def running(job: Job, progress: Progress) -> Reply:
    lang = lang_of(job)
    percent = round(max(0.0, min(1.0, progress.fraction)) * 100)
    parts = [t(lang, "running.generating", bar=progress_bar(progress.fraction), percent=percent)]
    if progress.step is not None and progress.steps:
        # At 100% A1111 has already reset its step counter to 0: the real final step is the last one.
        step = progress.steps if percent >= 100 else progress.step
        parts.append(t(lang, "running.step", step=step, steps=progress.steps))
    if progress.eta_seconds is not None:
        parts.append(t(lang, "running.left", eta=duration(progress.eta_seconds, lang)))
    if progress.note_key:
        parts.append(t(lang, progress.note_key, **progress.note_params))
    if progress.note:
        parts.append(progress.note)
    text = " · ".join(parts) + t(lang, "running.footer", prompt=shown_prompt(job), job=job.id)
    images = [ImageAttachment(filename=f"{job.id}-preview.jpg", data=progress.preview)] if progress.preview else []
    return Reply(text=text, images=images, buttons=cancel_row(job), job_id=job.id)


def on_backend(job: Job, backend: str) -> str:
    return t(lang_of(job), "running.on", backend=backend)


def moved_note(job: Job, backend: str, reason: str) -> str:
    return t(lang_of(job), "running.moved", backend=backend, reason=reason)


def moving(job: Job, reason: str) -> Reply:
    """A backend failed mid-job and another one will take it."""
    text = t(lang_of(job), "waiting.moving", reason=reason, job=job.id)
    return Reply(text=text, buttons=cancel_row(job), job_id=job.id)


def waiting_for_backend(job: Job, reason: str) -> Reply:
    return Reply(
        text=t(lang_of(job), "waiting.text", reason=reason, job=job.id),
        buttons=cancel_row(job),
        job_id=job.id,
    )


ALL_ACTIONS = frozenset(Action)


def result_buttons(job: Job, count: int, offered: frozenset[Action] = ALL_ACTIONS) -> list[list[Button]]:
    """Reroll / info / delete (and Edit for one image), then V1…, U1… and E1… rows; only the actions some backend
    can serve (`offered`). Discord shows 5 rows at most: for more than 5 images the E rows are Telegram's only."""
    lang = lang_of(job)
    first = [
        Button(t(lang, "button.reroll"), Action.REROLL, job.id),
        Button(t(lang, "button.info"), Action.INFO, job.id),
        Button(t(lang, "button.delete"), Action.DELETE, job.id, danger=True),
    ]
    if count == 1:  # one image: "Edit" beside Reroll; several: an E1… row after the V and U rows
        first.append(Button(t(lang, "button.edit"), Action.EDIT, job.id, 0))
    rows: list[list[Button]] = [[button for button in first if button.action in offered]]
    if job.request.kind == "upscale":
        return rows
    letters = ((Action.VARY, "V"), (Action.UPSCALE, "U"), *(((Action.EDIT, "E"),) if count > 1 else ()))
    for action, letter in letters:
        if action not in offered:
            continue
        buttons = [Button(f"{letter}{i + 1}", action, job.id, i) for i in range(count)]
        rows.extend(buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW))
    return rows


def result(job: Job, images: Sequence[StoredImage], offered: frozenset[Action] = ALL_ACTIONS) -> Reply:
    request, lang = job.request, lang_of(job)
    seeds = [str(image.seed) for image in images if image.seed is not None]
    took = None
    if job.started_at and job.finished_at:
        took = (job.finished_at - job.started_at).total_seconds()
    label = {
        "txt2img": "",
        "img2img": t(lang, "result.from_image"),
        "upscale": t(lang, "result.upscaled"),
        "edit": t(lang, "result.edited"),
    }
    text = t(
        lang,
        "result.text",
        prompt=short_prompt(request.user_prompt, 1500),
        label=label[request.kind],
        preset=request.preset,
        width=images[0].width,
        height=images[0].height,
        seeds=", ".join(seeds) or "?",
        took=duration(took, lang),
        job=job.id,
    )
    attachments = [ImageAttachment(filename=f"{job.id}-{image.index + 1}.png", path=image.path) for image in images]
    return Reply(
        text=text,
        images=attachments,
        buttons=result_buttons(job, len(images), offered),
        tone=Tone.SUCCESS,
        job_id=job.id,
    )


def failed(job: Job) -> Reply:
    lang = lang_of(job)
    reason = job.error or t(lang, "failed.reason")
    return Reply(
        text=t(lang, "failed.text", job=job.id, reason=reason),
        tone=Tone.ERROR,
        job_id=job.id,
    )


def cancelled(job: Job) -> Reply:
    return Reply(text=t(lang_of(job), "cancelled.text", job=job.id), job_id=job.id)


def final(job: Job, images: Sequence[StoredImage], offered: frozenset[Action] = ALL_ACTIONS) -> Reply:
    if job.state is JobState.SUCCEEDED and images:
        return result(job, images, offered)
    if job.state is JobState.CANCELLED:
        return cancelled(job)
    return failed(job)


def info(
    job: Job, images: Sequence[StoredImage], lang: str | None = None, sources: Sequence[StoredImage] = ()
) -> Reply:
    """The Info button's text: the job's parameters, seeds and what it started from (`sources`: the stored images
    it was given, for an edit or img2img of attached images)."""
    request = job.request
    lang = lang or lang_of(job)
    state = t(lang, f"state.{job.state.value}")
    lines = [
        t(lang, "info.header", job=job.id, state=state, kind=request.kind, preset=request.preset),
        t(lang, "info.prompt", prompt=request.prompt),
    ]
    if request.negative_prompt:
        lines.append(t(lang, "info.negative", negative=request.negative_prompt))
    scheduler = f" / {request.scheduler}" if request.scheduler else ""
    lines.append(
        t(
            lang,
            "info.size",
            width=request.width,
            height=request.height,
            steps=request.steps,
            cfg=request.cfg_scale,
            sampler=request.sampler,
            scheduler=scheduler,
        )
    )
    if request.expansion:
        lines.append(request.expansion)
    if images:
        lines.append(t(lang, "info.seeds", seeds=", ".join(str(image.seed) for image in images)))
    lines += started_from(job, sources, lang)
    return Reply(text="\n".join(lines), private=True, job_id=job.id)


def started_from(job: Job, sources: Sequence[StoredImage], lang: str) -> list[str]:
    """The job or the attached images a job was made from: an edit says which images it edited."""
    request = job.request
    edit = request.kind == "edit"
    if request.parent_job_id:
        index = request.parent_index
        if edit and index is not None:
            return [t(lang, "info.edited_job", job=request.parent_job_id, index=index + 1)]
        which = "" if index is None else t(lang, "info.parent_image", index=index + 1)
        return [t(lang, "info.parent", job=request.parent_job_id, which=which)]
    count = len(request.reference_image_ids) if edit else int(request.source_image_id is not None)
    if not count:
        return []
    sizes = ", ".join(f"{image.width}×{image.height}" for image in sources)
    key = "info.edited_attached" if edit else "info.source_attached"
    return [t(lang, key, count=count, sizes=f" ({sizes})" if sizes else "")]
