"""What the user is shown about a job: queued, progress, result, failure. Platform-neutral."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Job, JobState, Progress, StoredImage
from bot.replies import Action, Button, ImageAttachment, Reply, Tone

BUTTONS_PER_ROW = 5


def short_prompt(text: str, limit: int = 180) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def cancel_row(job: Job) -> list[list[Button]]:
    return [[Button("Cancel", Action.CANCEL, job.id, danger=True)]]


def queued(job: Job, position: int | None, eta: float | None, paused: bool = False) -> Reply:
    request = job.request
    where = f"#{position} in line" if position else "in line"
    wait = " — the queue of this server is paused by an admin" if paused else f", about {duration(eta)}"
    text = (
        f"Queued {where}{wait}.\n"
        f"“{short_prompt(request.user_prompt)}” · {request.preset} · {request.width}×{request.height} · "
        f"{request.count} image{'s' if request.count > 1 else ''} · job {job.id}"
    )
    return Reply(text=text, buttons=cancel_row(job), job_id=job.id)


def progress_bar(fraction: float, width: int = 20) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def running(job: Job, progress: Progress) -> Reply:
    percent = round(max(0.0, min(1.0, progress.fraction)) * 100)
    parts = [f"Generating {progress_bar(progress.fraction)} {percent}%"]
    if progress.step is not None and progress.steps:
        parts.append(f"step {progress.step}/{progress.steps}")
    if progress.eta_seconds is not None:
        parts.append(f"about {duration(progress.eta_seconds)} left")
    if progress.note:
        parts.append(progress.note)
    text = " · ".join(parts) + f"\n“{short_prompt(job.request.user_prompt)}” · job {job.id}"
    images = [ImageAttachment(filename=f"{job.id}-preview.jpg", data=progress.preview)] if progress.preview else []
    return Reply(text=text, images=images, buttons=cancel_row(job), job_id=job.id)


def waiting_for_backend(job: Job, reason: str) -> Reply:
    return Reply(
        text=f"Waiting: {reason} Your job stays in the queue and will run when a backend is back. job {job.id}",
        buttons=cancel_row(job),
        job_id=job.id,
    )


def result_buttons(job: Job, count: int) -> list[list[Button]]:
    rows: list[list[Button]] = [
        [
            Button("Reroll", Action.REROLL, job.id),
            Button("Info", Action.INFO, job.id),
            Button("Delete", Action.DELETE, job.id, danger=True),
        ]
    ]
    if job.request.kind == "upscale":
        return rows
    for action, letter in ((Action.VARY, "V"), (Action.UPSCALE, "U")):
        buttons = [Button(f"{letter}{i + 1}", action, job.id, i) for i in range(count)]
        rows.extend(buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW))
    return rows


def result(job: Job, images: Sequence[StoredImage]) -> Reply:
    request = job.request
    seeds = [str(image.seed) for image in images if image.seed is not None]
    took = None
    if job.started_at and job.finished_at:
        took = (job.finished_at - job.started_at).total_seconds()
    label = {"txt2img": "", "img2img": " (from your image)", "upscale": " (upscaled)"}[request.kind]
    text = (
        f"“{short_prompt(request.user_prompt, 1500)}”{label}\n"
        f"{request.preset} · {images[0].width}×{images[0].height} · seed {', '.join(seeds) or '?'} · "
        f"{duration(took)} · job {job.id}"
    )
    attachments = [ImageAttachment(filename=f"{job.id}-{image.index + 1}.png", path=image.path) for image in images]
    return Reply(
        text=text, images=attachments, buttons=result_buttons(job, len(images)), tone=Tone.SUCCESS, job_id=job.id
    )


def failed(job: Job) -> Reply:
    reason = job.error or "something went wrong"
    return Reply(
        text=f"Job {job.id} failed: {reason}\nNothing was charged to your quota.",
        tone=Tone.ERROR,
        job_id=job.id,
    )


def cancelled(job: Job) -> Reply:
    return Reply(text=f"Job {job.id} was cancelled. Nothing was charged.", job_id=job.id)


def final(job: Job, images: Sequence[StoredImage]) -> Reply:
    if job.state is JobState.SUCCEEDED and images:
        return result(job, images)
    if job.state is JobState.CANCELLED:
        return cancelled(job)
    return failed(job)


def info(job: Job, images: Sequence[StoredImage]) -> Reply:
    request = job.request
    lines = [
        f"Job {job.id} · {job.state.value} · {request.kind} · preset {request.preset}",
        f"Prompt: {request.prompt}",
    ]
    if request.negative_prompt:
        lines.append(f"Negative: {request.negative_prompt}")
    lines.append(
        f"Size {request.width}×{request.height} · steps {request.steps} · CFG {request.cfg_scale} · "
        f"sampler {request.sampler}" + (f" / {request.scheduler}" if request.scheduler else "")
    )
    if images:
        lines.append("Seeds: " + ", ".join(str(image.seed) for image in images))
    if request.parent_job_id:
        which = "" if request.parent_index is None else f" image {request.parent_index + 1}"
        lines.append(f"From job {request.parent_job_id}{which}")
    return Reply(text="\n".join(lines), private=True, job_id=job.id)
