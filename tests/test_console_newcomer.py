"""The console adapter and the messages a newcomer meets (issue 15), through ConsoleSession and the catalogs."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.i18n import catalog, plurals, t
from bot.models import Destination, GenerationRequest, Job
from bot.ports import Progress
from bot.presenter import running
from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation

ROOT = Path(__file__).resolve().parents[1]


async def console(app_factory: AppFactory) -> tuple[ConsoleSession, io.StringIO]:
    stream = io.StringIO()
    outbound = ConsoleOutbound(stream=stream, interval=0)
    app = await app_factory(outbound=outbound, quota={"enabled": True, "user_daily": 200.0})  # type: ignore[arg-type]
    return ConsoleSession(app.services, outbound), stream


async def test_a_console_user_is_charged_and_presses_buttons_counting_from_1(app_factory: AppFactory) -> None:
    session, stream = await console(app_factory)
    queued = await session.handle("/imagine a red fox --PRESET SD15 --N 2")
    assert queued is not None and queued.job_id is not None, stream.getvalue()
    await session.finish_jobs()
    job = queued.job_id
    out = stream.getvalue()
    assert f"[V1: vary:{job}:1]" in out and f"[V2: vary:{job}:2]" in out and f"[U1: upscale:{job}:1]" in out
    quota = await session.handle("/quota")
    assert quota is not None and "You: 0 of" not in quota.text and " of 200 used" in quota.text, quota.text
    varied = await session.handle(f"vary:{job}:2")
    assert varied is not None and varied.job_id is not None, varied
    wrong = await session.handle(f"vary:{job}:3")
    assert wrong is not None and "images 1 to 2" in wrong.text
    zero = await session.handle(f"vary:{job}:0")
    assert zero is not None and zero.job_id is None
    await session.finish_jobs()


async def test_stats_and_queue_use_plural_forms(app_factory: AppFactory) -> None:
    session, _ = await console(app_factory)
    queued = await session.handle("/imagine a lighthouse")
    assert queued is not None and "1 image ·" in queued.text and "1 images" not in queued.text
    await session.finish_jobs()
    stats = await session.handle("/stats")
    assert stats is not None and "1 image, " in stats.text and "1 user" in stats.text, stats.text
    assert "1 images" not in stats.text and "1 users" not in stats.text


def test_plural_tables_follow_cldr_rules() -> None:
    assert t("en", "cli.days", count=1) == "1 day" and t("en", "cli.days", count=0) == "0 days"
    assert t("en", "cli.days", count=2) == "2 days" and t("zh", "cli.days", count=1) == "1 天"
    assert t("en", "error.image_range", job="j", count=1) == "Job j has only image 1."
    for lang in ("en", "zh"):
        for key, forms in plurals(lang).items():
            assert "other" in forms and key in catalog(lang)
    assert set(plurals("en")) == set(plurals("zh"))
    assert all(set(forms) == {"other"} for forms in plurals("zh").values())  # Chinese has no plural forms


def test_grammar_of_the_messages_a_newcomer_met() -> None:
    assert "needs a value for prompt" in t("en", "error.option_required", command="imagine", name="prompt", usage="")
    assert t("en", "error.already_final", job="j", state="succeeded") == "Job j has already finished (succeeded)."


def test_the_final_progress_line_shows_the_last_step() -> None:
    request = GenerationRequest(
        kind="txt2img",
        preset="sd15",
        checkpoint="c",
        prompt="p",
        user_prompt="p",
        steps=25,
        sampler="Euler",
        cfg_scale=7,
        width=512,
        height=512,
        seed=1,
    )
    job = Job(request=request, destination=Destination(platform="console", server_id="s", channel_id="c", user_id="u"))
    text = running(job, Progress(fraction=1.0, step=0, steps=25)).text
    assert "100%" in text and "step 25/25" in text
    assert "step 12/25" in running(job, Progress(fraction=0.5, step=12, steps=25)).text


# ---- user-facing strings outside the catalogs ------------------------------------------------------------

WORDS = re.compile(r"[A-Za-z]{2,}[,.:;!?]?\s+[A-Za-z]{2,}")
LOG_NAMES = {"log", "logger", "logging"}
INTERNAL_ERRORS = {
    "ValueError",
    "RuntimeError",
    "TypeError",
    "ConfigError",
    "AssertionError",
    "KeyError",
    "NetworkError",
    "Undeliverable",
}
# Strings that are not shown to chat users, by file: matched against a service's own answers, sent to the
# service, operator-facing (metrics, health details for the bot's admins, command registry mirrored in the
# catalogs and checked by test_i18n), and health details (for the bot's admins and `imagebridge check`).
ALLOWED = {
    "commands/registry.py": None,  # every description is checked equal to its catalog entry in test_i18n
    "adapters/ops/metrics.py": None,  # Prometheus help texts
    "adapters/backends/a1111.py": {"load model"},  # A1111's own job name
    "adapters/backends/a1111_errors.py": {"out of memory", "not found"},
    "adapters/backends/openai_images.py": {"safety system", "cannot be reached ({})"},
    "adapters/backends/comfyui.py": {"ComfyUI answered HTTP {}.", "ComfyUI answered /object_info with HTTP {}."},
    # What a server lacks, from its own node list (for `imagebridge check` and the fit reasons).
    "adapters/backends/comfyui_inventory.py": {"workflow {} needs node types the server lacks: {}"},
    "adapters/backends/comfyui_graph.py": {
        "dpm++ 2m sde karras",
        "sgm uniform",
        "align your steps",
        "node {} ({}) is invalid",
        "an input",
        "the {} {} is not available on the server",
        "node {} ({}) lacks its input {}",
        "{} is out of range ({})",
    },
    "adapters/backends/horde.py": {
        "AI Horde worker {}, model {}",  # image metadata (infotext), not a message
        "the AI Horde cannot be reached ({})",
        "DPM fast",  # sampler and model names
        "DPM adaptive",
        "AlbedoBase XL (SDXL)",
        "the AI Horde",  # the download source named in logs and backend errors
    },
    "adapters/telegram/outbound.py": {"not modified"},  # Telegram's own error text
    "adapters/telegram/calls.py": {"not modified", "chat not found"},
    "adapters/backends/swarmui.py": {
        "Something went wrong",  # matched against SwarmUI's answers
        "No images were generated",
        "No backends available",
        "Invalid or unauthorized",
        "Invalid model value",
        "SwarmUI is loading the model",  # progress notes: still to move to progress_note.* (issue 15)
        "waiting for a free SwarmUI backend",
    },
    "adapters/web/charts.py": {  # SVG markup
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
    },
    "adapters/web/pages_gallery.py": {"private, max-age=86400"},  # an HTTP header value
    "adapters/web/pages_dashboard.py": {"cost per day"},  # a dashboard chart label: still to move (issue 15)
    # ComfyUI's own validation errors, described in the backend's words inside backend.comfy_rejected.
    "adapters/backends/comfyui_errors.py": {
        "node (.+?) does not exist",
        "{} is invalid",
        "{}: {} = {} is not one of the values this server offers",
        "{} lacks its input {}",
        "{}: input {} is linked to an output of type {}",
        "an input",
        "the model {} is not available on the server ({})",
        "out of memory",
        "allocation on device",
    },
    "adapters/backends/openwebui.py": {
        "Not authenticated",
        "cannot be reached ({})",
        "Open WebUI's engine chose the seed, sampler and CFG scale (its API takes none of them)",  # infotext
        "You do not have permission",  # matched against Open WebUI's answer
        "failed to connect",
        "cannot connect",
        "connection refused",
        "connect call failed",
        "timed out",
        "internal server error",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
        "too many requests",
        "(the engine's default)",  # a value inside backend.owui_model_mismatch, for admins
        "Open WebUI ({})",  # the download source named in logs and backend errors
    },
    "adapters/telegram/inbound.py": {"unknown type"},  # a MIME type placeholder inside telegram.not_an_image
}


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    return None


def _not_shown(tree: ast.AST) -> set[int]:
    """Nodes whose strings never reach a user: docstrings, log calls, internal exceptions, f-string parts."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
        inner: ast.AST | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in LOG_NAMES:
                inner = node
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            name = getattr(node.exc.func, "id", None) or getattr(node.exc.func, "attr", None)
            inner = node if name in INTERNAL_ERRORS else None
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
        if inner is not None:
            skip.update(id(part) for part in ast.walk(inner))
    return skip


def hard_coded_strings() -> list[str]:
    found = []
    for folder in ("adapters", "commands"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            allowed = ALLOWED.get(name, set())
            if allowed is None:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip = _not_shown(tree)
            for node in ast.walk(tree):
                text = _text(node)
                if id(node) not in skip and text and WORDS.search(text) and text not in allowed:
                    found.append(f"{name}:{getattr(node, 'lineno', '?')}: {text!r}")
    return found


def test_no_user_facing_strings_outside_the_catalogs() -> None:
    assert hard_coded_strings() == []


def test_the_scan_finds_a_hard_coded_reply(tmp_path: Path) -> None:
    source = 'def f():\n    return Reply.error("Type a command such as /help.")\n'
    tree = ast.parse(source)
    skip = _not_shown(tree)
    texts = [_text(node) for node in ast.walk(tree) if id(node) not in skip and _text(node)]
    assert texts == ["Type a command such as /help."]


async def test_presets_and_block_list_counts_use_plural_forms(app_factory: AppFactory) -> None:
    app = await app_factory(
        presets={"one": {"checkpoint": "x", "max_images": 1}, "two": {"checkpoint": "y", "max_images": 2}},
        moderation={"blocked_words": ["spam"]},
    )
    listing = await dispatch_text(app.services, invocation(), "/presets")
    assert listing is not None and "up to 1 image ·" in listing.text and "up to 2 images ·" in listing.text
    blocked = await dispatch_text(app.services, invocation(is_admin=True), "/admin block")
    assert blocked is not None and blocked.text.endswith("(from the config): 1 term."), blocked.text
