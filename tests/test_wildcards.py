"""Wildcards: the expansion itself, and through the console adapter one job per prompt, all charged or none."""

from __future__ import annotations

import asyncio
import io
import random
from pathlib import Path

import pytest

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import App, build_app
from bot.errors import InvalidRequest
from bot.models import JobState
from bot.wildcards import WildcardsConfig, expand
from tests.conftest import make_settings
from tests.fakes import FakeBackend

LISTS = {"color": ["red", "blue"], "animal": ["cat"]}


def prompts(text: str, limit: int = 8) -> list[str]:
    return [variant.prompt for variant in expand(text, LISTS, limit, random.Random(1))]


def test_one_prompt_per_choice_and_groups_multiply() -> None:
    assert prompts("{red|blue|green} car") == ["red car", "blue car", "green car"]
    assert prompts("{a|b} {x|y}") == ["a x", "a y", "b x", "b y"]
    assert prompts("a {big|small {x|y}} dog") == ["a big dog", "a small x dog", "a small y dog"]


def test_plain_prompts_loras_and_weights_are_untouched() -> None:
    text = "a (red fox:1.2) <lora:add_detail:0.8> | under_score, [a:b:0.5]"
    assert prompts(text) == [text]
    found = expand("{x|y} <lora:add_detail:0.8>", LISTS, 8, random.Random(1))
    assert [v.prompt for v in found] == ["x <lora:add_detail:0.8>", "y <lora:add_detail:0.8>"]


def test_escapes_give_literal_braces_and_bars() -> None:
    assert prompts(r"\{not a group\|really\} \\ ok") == [r"{not a group|really} \ ok"]


def test_lists_draw_one_item_and_say_which() -> None:
    found = expand("a __color__ __animal__", LISTS, 8, random.Random(3))
    assert len(found) == 1 and found[0].prompt in ("a red cat", "a blue cat")
    assert found[0].picks[-1] == "__animal__=cat"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{a|b", "unmatched “{”"),
        ("a}", "unmatched “}”"),
        ("a __nope__", "__nope__"),
        ("{a|b}{a|b}{a|b}{a|b}", "16 prompts; at most 8"),
    ],
)
def test_refusals_name_the_problem(text: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        expand(text, LISTS, 8, random.Random(1))
    assert words in str(caught.value)


def test_a_huge_expansion_is_refused_without_building_it() -> None:
    with pytest.raises(InvalidRequest, match="at most 8"):
        expand("{a|b|c|d}" * 60, LISTS, 8, random.Random(1))  # 4**60 prompts: counted, never built


def test_lists_come_from_the_config_and_a_folder(tmp_path: Path) -> None:
    (tmp_path / "Season.txt").write_text("# seasons\nspring\n\nwinter\n", encoding="utf-8")
    config = WildcardsConfig.model_validate({"folder": str(tmp_path), "color": ["red"]})
    assert config.lists() == {"season": ["spring", "winter"], "color": ["red"]}
    with pytest.raises(ValueError, match=r"wildcards\.bad"):
        WildcardsConfig.model_validate({"bad": "not a list"})


class Console:
    """The console adapter over a real App with a fake backend."""

    def __init__(self, app: App, outbound: ConsoleOutbound, stream: io.StringIO) -> None:
        self.app, self.outbound, self.stream = app, outbound, stream
        assert app.services is not None
        self.session = ConsoleSession(app.services, outbound)

    async def say(self, line: str) -> str:
        start = len(self.stream.getvalue())
        await self.session.handle(line)
        return self.stream.getvalue()[start:]


async def console(tmp_path: Path, backend: FakeBackend | None = None, **overrides: object) -> Console:
    stream = io.StringIO()
    outbound = ConsoleOutbound(stream=stream, interval=0)
    settings = make_settings(tmp_path / "data", **overrides)
    app = await build_app(settings, [outbound], backends=[backend or FakeBackend()])
    await app.start()
    return Console(app, outbound, stream)


async def test_console_queues_one_job_per_choice_and_info_shows_the_expansion(tmp_path: Path) -> None:
    backend = FakeBackend()
    bench = await console(tmp_path, backend, wildcards={"color": ["teal"]})
    try:
        text = await bench.say("/imagine a {red|blue|green} car, __color__ sky --preset sd15 --seed 5")
        assert "3 jobs" in text, text
        jobs = [job for _, job in bench.app.engine.queued_jobs()] + bench.app.engine.running_jobs()
        for job_id in {job.id for job in jobs}:
            async with asyncio.timeout(10):
                await bench.app.engine.finished_event(job_id).wait()
        prompts = sorted(request.user_prompt for _, request in backend.calls)
        assert prompts == ["a blue car, teal sky", "a green car, teal sky", "a red car, teal sky"]
        assert {request.seed for _, request in backend.calls} == {5}
        job_id = next(job_id for job_id, request in backend.calls if request.user_prompt.startswith("a green"))
        info = await bench.say(f"info:{job_id}")
        assert "Wildcards: green, __color__=teal (prompt 3 of 3)" in info, info
    finally:
        await bench.app.stop()


async def test_console_refuses_the_whole_expansion_over_the_quota(tmp_path: Path) -> None:
    quota = {"enabled": True, "user_daily": 20.0}
    bench = await console(tmp_path, quota=quota, access={"bot_admins": []})
    try:
        # sd15: 25 steps × 0.262 MP ≈ 6.55 each; three fit (19.7), four (26.2) do not
        text = await bench.say("/imagine a {red|blue|green|pink} car --preset sd15")
        assert "quota" in text.lower() and "jobs" not in text, text
        assert bench.app.engine.queued_jobs() == [] and bench.app.engine.running_jobs() == []
        assert await bench.app.engine.store.in_states([JobState.QUEUED, JobState.RUNNING]) == []
        text = await bench.say("/imagine a {red|blue|green} car --preset sd15")
        assert "3 jobs" in text, text
    finally:
        await bench.app.stop()


async def test_console_refuses_an_expansion_over_the_queue_cap_before_anything_is_queued(tmp_path: Path) -> None:
    bench = await console(tmp_path, limits={"max_queued_per_user": 2, "retry_backoff_seconds": 0})
    try:
        text = await bench.say("/imagine {a|b|c} car --preset sd15")
        assert "3 jobs" in text and "only 2 waiting" in text, text
        assert await bench.app.engine.store.in_states([JobState.QUEUED, JobState.RUNNING]) == []
        text = await bench.say("/imagine {a|b|c|d|e|f|g|h|i} car")
        assert "9 prompts; at most 8" in text
        text = await bench.say("/imagine a __nope__ car")
        assert "__nope__" in text and "__color__" in text
    finally:
        await bench.app.stop()


def test_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a folder"):
        WildcardsConfig.model_validate({"folder": str(tmp_path / "nope")})
