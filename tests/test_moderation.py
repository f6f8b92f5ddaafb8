"""Blocked words: refused before anything is queued or charged; server admins keep their own list."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import InvalidRequest
from bot.moderation import blocked_term
from bot.replies import Tone
from commands.actions import press
from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend


@pytest.mark.parametrize(
    ("text", "words", "found"),
    [
        ("a bad dog", ["bad"], "bad"),
        ("a BAD dog", ["bad"], "bad"),
        ("a ＢＡＤ dog", ["bad"], "bad"),  # full-width letters fold to ASCII
        ("a badge on a dog", ["bad"], None),  # whole words only
        ("a class photo", ["ass"], None),
        ("very   bad   word here", ["bad word"], "bad word"),  # any spacing between a phrase's words
        ("一只可爱的坏猫", ["坏猫"], "坏猫"),  # no spaces in Chinese: matched anywhere
        ("<lora:evil:0.8> cat", ["<lora:evil"], "<lora:evil"),
        ("a cat", [], None),
    ],
)
def test_blocked_terms(text: str, words: list[str], found: str | None) -> None:
    hit = blocked_term(text, words)
    assert (hit[1] if hit else None) == found


def test_blocked_patterns_match_case_insensitively() -> None:
    assert blocked_term("Photo of Jane Doe", [], [r"jane\s+doe"]) == ("pattern", r"jane\s+doe")
    assert blocked_term("photo of a deer", [], [r"jane\s+doe"]) is None


async def _jobs(app: object) -> int:
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")  # type: ignore[attr-defined]
    return int(row[0]) if row else -1


async def test_a_blocked_word_is_refused_and_costs_nothing(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend, moderation={"blocked_words": ["gore"]})
    reply = await dispatch_text(app.services, invocation(), "/imagine a castle, GORE, night")
    assert reply is not None and reply.tone is Tone.ERROR
    assert "“gore”" in reply.text and "not allowed" in reply.text
    assert await _jobs(app) == 0
    ledger = await app.db.fetchone("SELECT COUNT(*) FROM quota_ledger")
    assert ledger is not None and ledger[0] == 0
    fine = await dispatch_text(app.services, invocation(), "/imagine a gorge at night")
    assert fine is not None and fine.tone is not Tone.ERROR and await _jobs(app) == 1
    backend.release.set()


async def test_negative_prompts_are_checked_only_when_configured(app_factory: AppFactory) -> None:
    relaxed = await app_factory(backend=FakeBackend(hold=True), moderation={"blocked_words": ["nsfw"]})
    reply = await dispatch_text(relaxed.services, invocation(), '/imagine a cat --neg "nsfw, blurry"')
    assert reply is not None and reply.tone is not Tone.ERROR


async def test_negative_prompts_checked_when_asked(app_factory: AppFactory) -> None:
    strict = await app_factory(
        backend=FakeBackend(hold=True), moderation={"blocked_words": ["nsfw"], "check_negative": True}
    )
    reply = await dispatch_text(strict.services, invocation(), '/imagine a cat --neg "nsfw, blurry"')
    assert reply is not None and reply.tone is Tone.ERROR and await _jobs(strict) == 0


async def test_server_admins_block_and_unblock_words_for_their_server(app_factory: AppFactory) -> None:
    app = await app_factory(backend=FakeBackend(hold=True))
    refused = await dispatch_text(app.services, invocation(), '/admin block "red panda"')
    assert refused is not None and refused.tone is Tone.ERROR  # not an admin
    done = await dispatch_text(app.services, invocation(is_admin=True), '/admin block "red panda"')
    assert done is not None and done.tone is not Tone.ERROR
    listed = await dispatch_text(app.services, invocation(is_admin=True), "/admin block")
    assert listed is not None and "red panda" in listed.text
    blocked = await dispatch_text(app.services, invocation(), "/imagine a Red  Panda eating")
    assert blocked is not None and blocked.tone is Tone.ERROR and "red panda" in blocked.text
    elsewhere = await dispatch_text(app.services, invocation(server="s2"), "/imagine a red panda eating")
    assert elsewhere is not None and elsewhere.tone is not Tone.ERROR  # another server's list is its own
    await dispatch_text(app.services, invocation(is_admin=True), '/admin unblock "RED PANDA"')
    allowed = await dispatch_text(app.services, invocation(), "/imagine a red panda eating")
    assert allowed is not None and allowed.tone is not Tone.ERROR


async def test_a_word_blocked_later_blocks_rerolls_of_older_jobs(app_factory: AppFactory) -> None:
    app = await app_factory()
    reply = await dispatch_text(app.services, invocation(), "/imagine a red panda eating")
    assert reply is not None and reply.job_id
    async with asyncio.timeout(10):
        await app.engine.finished_event(reply.job_id).wait()
    await dispatch_text(app.services, invocation(is_admin=True), "/admin block panda")
    with pytest.raises(InvalidRequest, match="panda"):
        await press(app.services, invocation(), f"reroll:{reply.job_id}")
    assert await _jobs(app) == 1
