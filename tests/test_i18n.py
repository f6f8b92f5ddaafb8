"""Languages: the catalogs agree, and a Chinese chat or server gets Chinese messages end to end."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from adapters.backends.a1111_errors import explain
from bot.errors import BackendError, BackendUnavailable, InvalidRequest
from bot.i18n import LANGUAGES, catalog, language, t
from bot.models import JobState
from bot.replies import Tone
from commands.dispatch import dispatch_text
from commands.registry import COMMANDS
from simulators.discord import DiscordSimulator
from simulators.discord_harness import BotProcess
from tests.conftest import AppFactory, invocation
from tests.discord_support import discord_sim
from tests.fakes import FakeBackend, RecordingOutbound
from tests.test_discord_flow import bot
from tests.test_telegram_support import PRIVATE, Bench, bench

__all__ = ["bench", "bot", "discord_sim"]  # fixtures (discord_sim is `sim`)

ROOT = Path(__file__).resolve().parents[1]
ZH_JOB = re.compile(r"任务 ([0-9a-f]{12})")
KEY_LITERAL = re.compile(r"""["']([a-z_]+\.[a-z_]+)["']""")


def keys_used_in_code() -> set[str]:
    """Every string literal in the production code that looks like a key of a catalog section ("error.x")."""
    sections = {key.split(".")[0] for key in catalog("en")}
    used: set[str] = set()
    for folder in ("bot", "commands", "adapters", "storage"):
        for path in (ROOT / folder).rglob("*.py"):
            found = KEY_LITERAL.findall(path.read_text(encoding="utf-8"))
            used.update(key for key in found if key.split(".")[0] in sections)
    return used


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    english, chinese = catalog("en"), catalog("zh")
    assert set(english) == set(chinese)
    placeholder = re.compile(r"{(\w+)")
    for key, text in english.items():
        assert set(placeholder.findall(text)) == set(placeholder.findall(chinese[key])), key


def test_every_key_used_in_code_exists_in_every_catalog() -> None:
    used = keys_used_in_code()
    assert len(used) > 60  # the pattern still finds the calls
    for lang in LANGUAGES:
        assert used <= set(catalog(lang)), used - set(catalog(lang))
    for state in JobState:  # f"state.{...}"
        assert f"state.{state.value}" in catalog("en")
    for lang in LANGUAGES:  # f"language.{...}"
        assert f"language.{lang}" in catalog("en")
    for spec in COMMANDS:
        assert catalog("en")[f"command.{spec.name}"] == spec.description
        for option in spec.options:
            assert catalog("en")[f"option.{spec.name}.{option.name}"] == option.description


def test_language_codes_map_to_a_catalog() -> None:
    for code in ("zh", "zh-CN", "zh_Hans", "zh-hans", "zh-TW", "ZH"):
        assert language(code) == "zh"
    assert language(None) == "en"
    for other in ("", "en", "en-US", "de", "fr-CA"):
        assert language(other) == "en"


def test_errors_keep_english_and_translate() -> None:
    error = InvalidRequest.of("error.unknown_preset", name="nope", allowed="sd15")
    assert str(error) == "There is no preset 'nope'. Presets you can use here: sd15."
    assert error.localized("zh") == "没有名为 'nope' 的预设。你在这里可以使用的预设：sd15。"
    assert InvalidRequest("plain").localized("zh") == "plain"
    assert t("xx", "button.cancel") == "Cancel"


def test_backend_errors_keep_english_and_translate() -> None:
    error = BackendError.of("backend.timeout", retryable=True, detail="slow", seconds=90.4)
    assert error.user_message == "The backend took longer than 90 s." and error.retryable
    assert str(error) == "The backend took longer than 90 s. (slow)"  # logs keep the English text and the detail
    assert error.localized("zh") == "后端处理时间超过了 90 秒。" and error.localized(None) == error.user_message
    gone = BackendUnavailable.of("backend.unreachable", detail="ConnectError", name="gpu1")
    assert gone.retryable and gone.localized("zh") == "无法连接到后端 gpu1。"
    assert BackendError("plain", retryable=True).localized("zh") == "plain"


async def test_backend_failure_reason_is_in_the_language_of_the_chat(app_factory: AppFactory) -> None:
    """The backend's own words stay as they are; the sentence around them follows the chat that queued the job."""
    refusal = '{"detail": [{"loc": ["body", "steps"], "msg": "too many"}]}'
    backend = FakeBackend(failures=[explain(422, refusal), explain(422, refusal)])
    outbound = RecordingOutbound()
    app = await app_factory(backend=backend, outbound=outbound)
    errors: dict[str, str | None] = {}
    for locale in ("zh-CN", "en-US"):
        reply = await dispatch_text(app.services, invocation(locale=locale), "/imagine a cat")
        assert reply is not None and reply.job_id
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 5)
        job = await app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.FAILED
        errors[locale] = job.error
        final = next(r for job_id, r in outbound.deliveries if job_id == job.id)
        start = f"任务 {job.id} 失败：{job.error}\n" if locale == "zh-CN" else f"Job {job.id} failed: {job.error}\n"
        assert final.tone is Tone.ERROR and final.text.startswith(start), final.text
    assert errors["zh-CN"] == "后端拒绝了这个请求：steps: too many。"
    assert errors["en-US"] == "The backend rejected the request: steps: too many."


async def test_timeout_in_a_chinese_chat_is_explained_in_chinese(app_factory: AppFactory) -> None:
    app = await app_factory(
        backend=FakeBackend(hold=True), limits={"job_timeout_seconds": 1, "max_attempts": 1, "retry_backoff_seconds": 0}
    )
    reply = await dispatch_text(app.services, invocation(locale="zh-CN"), "/imagine a slow cat")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 10)
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.state is JobState.FAILED and job.error == "后端处理时间超过了 1 秒。"


async def test_admin_language_makes_a_server_chinese(app_factory: AppFactory) -> None:
    app = await app_factory()
    admin = invocation(is_admin=True)
    before = await dispatch_text(app.services, invocation(), "/queue")
    assert before is not None and "Nothing is queued here" in before.text
    reply = await dispatch_text(app.services, admin, "/admin language zh")
    assert reply is not None and reply.text == "此服务器的回复现在使用中文。"
    after = await dispatch_text(app.services, invocation(), "/queue")
    assert after is not None and after.text.startswith("这里没有排队的任务")
    other = await dispatch_text(app.services, invocation(server="s2"), "/queue")
    assert other is not None and "Nothing is queued here" in other.text
    wrong = await dispatch_text(app.services, admin, "/admin language fr")
    assert wrong is not None and wrong.tone is Tone.ERROR and "语言必须是 en, zh 之一" in wrong.text


async def test_unknown_preset_error_in_chinese(app_factory: AppFactory) -> None:
    app = await app_factory()
    reply = await dispatch_text(app.services, invocation(locale="zh-CN"), "/imagine a cat --preset nope")
    assert reply is not None and reply.tone is Tone.ERROR
    assert reply.text.startswith("没有名为 'nope' 的预设。")
    english = await dispatch_text(app.services, invocation(locale="en-US"), "/imagine a cat --preset nope")
    assert english is not None and english.text.startswith("There is no preset 'nope'.")


@pytest.mark.telegram
async def test_chinese_telegram_user_gets_chinese_queued_and_result(bench: Bench) -> None:
    await bench.open()
    bench.sim.language_codes[PRIVATE] = "zh-hans"
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a lighthouse at dusk")
    found: list[str] = []

    def queued() -> bool:
        for message in bench.sim.visible(PRIVATE):
            match = ZH_JOB.search(message.text or message.caption or "")
            if match and "已加入队列" in (message.text or ""):
                found.append(match.group(1))
                return True
        return False

    await bench.sim.wait_for(queued, 10.0)
    job_id = found[0]
    await bench.finished(job_id)
    result = next(m for m in bench.results(PRIVATE) if m.photo is not None)
    assert f"任务 {job_id}" in (result.caption or "") and "种子" in (result.caption or "")
    keyboard = next(m for m in bench.sim.visible(PRIVATE) if any(job_id in data for data in m.buttons))
    rows = (keyboard.reply_markup or {}).get("inline_keyboard", [])
    labels = [button["text"] for row in rows for button in row]
    assert "重新生成" in labels and "删除" in labels


@pytest.mark.discord
async def test_discord_commands_carry_chinese_descriptions(
    bot: tuple[BotProcess, FakeBackend], sim: DiscordSimulator
) -> None:
    imagine = next(c for c in sim.state.commands["500"] if c["name"] == "imagine")
    assert imagine["description"] == "Generate images from a prompt"
    assert imagine["description_localizations"]["zh-CN"] == "根据提示词生成图片"
    prompt = next(o for o in imagine["options"] if o["name"] == "prompt")
    assert prompt["description_localizations"]["zh-CN"] == "要画什么"
    assert imagine["name_localizations"]["zh-CN"] == "画图"
    assert prompt["name_localizations"]["zh-CN"] == "提示词"
    named = [c for c in sim.state.commands["500"] if "zh-CN" in (c.get("name_localizations") or {})]
    assert len(named) == len(sim.state.commands["500"])  # every command has a Chinese name


async def test_parser_and_option_errors_follow_the_chat_language(app_factory: AppFactory) -> None:
    app = await app_factory()
    cases = {
        "/imagine a cat --bogus 1": ("没有 --bogus 这个选项", "Unknown option --bogus"),
        '/imagine a cat --neg "open': ("缺少结尾", "missing its closing"),
        "/imagine a cat --steps many": ("--steps 必须是整数", "many"),
        "/imagine a cat --seed 1 --seed 2": ("给了两次", "was given twice"),
    }
    for text, (chinese, english) in cases.items():
        zh = await dispatch_text(app.services, invocation(locale="zh-CN"), text)
        en = await dispatch_text(app.services, invocation(locale="en-US"), text)
        assert zh is not None and chinese in zh.text, (text, zh)
        assert en is not None and english in en.text, (text, en)
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 0


async def test_admin_backends_follows_the_chat_language(app_factory: AppFactory) -> None:
    app = await app_factory(access={"bot_admins": ["console:u1"]})
    zh = await dispatch_text(app.services, invocation(locale="zh-CN", is_admin=True), "/admin backends")
    en = await dispatch_text(app.services, invocation(locale="en-US", is_admin=True), "/admin backends")
    assert zh is not None and "个任务在排队" in zh.text and "空闲" in zh.text, zh
    assert en is not None and "jobs queued." in en.text and "idle" in en.text, en


async def test_admin_backends_is_for_the_bots_admins_only(app_factory: AppFactory) -> None:
    """Health details can hold internal URLs: a chat admin who is not one of the bot's admins is refused."""
    app = await app_factory(access={"bot_admins": ["console:owner"]})
    chat_admin = await dispatch_text(app.services, invocation(is_admin=True), "/admin backends")
    assert chat_admin is not None and "bot's own admins" in chat_admin.text and "fake" not in chat_admin.text
    owner = await dispatch_text(app.services, invocation(user="owner"), "/admin backends")
    assert owner is not None and "idle" in owner.text
