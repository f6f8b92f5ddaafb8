"""Bad input: hypothesis through the shared parser and dispatch; every case gets a Reply, errors cost nothing."""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.app import App, build_app
from bot.errors import UserError
from bot.replies import Reply, Tone
from commands.dispatch import dispatch_text
from commands.parser import parse
from tests.conftest import AppFactory, invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound, png

pytestmark = pytest.mark.reliability
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
NASTY = st.sampled_from(
    [
        "@everyone",
        "@here",
        "<b>x</b>",
        "**bold**",
        "`code`",
        "[a](javascript:x)",
        "\u202e",
        "\u2066",
        "\x00",
        "\x1b[31m",
    ]
)
FLAGS = st.sampled_from(
    ["--ar", "--steps", "--n", "--seed", "--preset", "--neg", "--cfg", "--size", "--w", "--h", "--"]
)
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "nan", "inf", "-1", "0", "1e309", "1:0", "0:0", "99999:1", "sdxl", "flux", "nope", '"']),
    st.text(max_size=12),
)
COUNTED = {"cases": 0}


async def fresh_app(app_factory: AppFactory) -> App:
    return await app_factory(backend=FakeBackend(hold=True), quota={"user_daily": 100000.0})


async def ledger(app: App) -> tuple[int, int]:
    jobs = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    rows = await app.db.fetchone("SELECT COUNT(*) FROM quota_ledger")
    assert jobs is not None and rows is not None
    return int(jobs[0]), int(rows[0])


async def check(app: App, text: str, **kwargs: object) -> Reply | None:
    COUNTED["cases"] += 1
    before = await ledger(app)
    reply = await dispatch_text(app.services, invocation(**kwargs), text)  # type: ignore[arg-type]
    after = await ledger(app)
    if reply is not None and reply.tone is Tone.ERROR:
        assert after == before, f"an error reply still queued or charged: {text!r}"
        assert "Something went wrong" not in reply.text, f"unexpected exception for {text!r}: {reply.text}"
    if text.startswith("/imagine") and reply is not None and reply.job_id and reply.tone is not Tone.ERROR:
        assert after[0] == before[0] + 1
    return reply


@given(text=st.text(max_size=400))
@settings(max_examples=1500, deadline=None)
def test_the_parser_never_raises_anything_but_user_errors(text: str) -> None:
    COUNTED["cases"] += 1
    for candidate in (text, "/imagine " + text, "/imagine@test_bot " + text):
        with contextlib.suppress(UserError):
            parse(candidate, "test_bot")


def options() -> st.SearchStrategy[str]:
    pair = st.tuples(FLAGS, VALUES).map(lambda p: f"{p[0]} {p[1]}")
    words = st.lists(st.one_of(st.text(max_size=20), NASTY), max_size=6).map(" ".join)
    return st.tuples(words, st.lists(pair, max_size=4)).map(lambda p: " ".join([p[0], *p[1]]))


def test_imagine_with_fuzzed_options_answers_and_charges_only_accepted_jobs(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    settings_ = make_settings(tmp_path / "data", quota={"user_daily": 100000.0}, limits={"max_queued_per_user": 5000})
    app = loop.run_until_complete(build_app(settings_, [RecordingOutbound()], backends=[FakeBackend(hold=True)]))

    @FUZZ
    @given(body=options(), command=st.sampled_from(["/imagine", "/imagine@test_bot", "/queue", "/cancel", "/show"]))
    def run(body: str, command: str) -> None:
        loop.run_until_complete(check(app, f"{command} {body}"))

    try:
        loop.run_until_complete(app.start())
        run()
    finally:
        loop.run_until_complete(app.stop())
        loop.close()


async def test_out_of_range_and_unknown_values_are_refused_for_free(app_factory: AppFactory) -> None:
    app = await fresh_app(app_factory)
    cases = [
        "/imagine",
        "/imagine    ",
        "/imagine " + "x" * 2001,
        "/imagine \u202e\u2066\x00",
        "/imagine a --steps 0",
        "/imagine a --steps 100000",
        "/imagine a --n 0",
        "/imagine a --n 99",
        "/imagine a --seed -5",
        f"/imagine a --seed {2**80}",
        "/imagine a --ar 1:0",
        "/imagine a --ar 100:1",
        "/imagine a --preset nope",
        "/imagine a --preset flux <lora:evil:1>",
        "/imagine a --neg",
        "/bogus command",
    ]
    for text in cases:
        reply = await check(app, text)
        assert reply is not None and reply.tone is Tone.ERROR, text
        assert reply.text.strip(), text
    mention = await check(app, "/imagine @everyone <b>hi</b> **x**")
    assert mention is not None  # accepted or refused, never raised; mentions are the adapter's to neutralise


def bomb() -> bytes:
    """A PNG header claiming 30000×30000 pixels with hardly any data."""
    raw = b"\x89PNG\r\n\x1a\n"
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    raw += struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 1000)
    raw += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return raw + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    "source",
    [
        b"",
        b"not an image",
        b"%PDF-1.7 ...",
        png()[:40],
        jpeg()[:100],
        bomb(),
        b"\x89PNG" + b"\x00" * (21 * 1024 * 1024),
    ],
    ids=["empty", "text", "pdf", "truncated-png", "truncated-jpeg", "bomb", "huge"],
)
async def test_bad_attachments_are_refused_for_free(app_factory: AppFactory, source: bytes) -> None:
    app = await fresh_app(app_factory)
    reply = await check(app, "/imagine from this picture", source_image=source)
    assert reply is not None and reply.tone is Tone.ERROR and reply.text.strip()


@given(data=st.binary(max_size=2048))
@settings(max_examples=400, deadline=None)
def test_random_bytes_as_attachment_never_raise(data: bytes) -> None:
    from bot.imagecheck import check_source_image

    COUNTED["cases"] += 1
    with contextlib.suppress(UserError):
        check_source_image(data, max_bytes=1024 * 1024, max_pixels=4096 * 4096)
