"""Images in an S3-compatible bucket ([storage.s3]): our SigV4 signer against the AWS docs' example, the strict
S3 simulator's answers, and the whole path: a job's result written to the bucket, delivered on Telegram, shown by
the web gallery, pruned; a wrong secret stops the start with one clear line that does not contain it."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from bot.errors import ConfigError
from simulators.s3 import S3Simulator
from storage.files import DiskImageFiles
from storage.s3 import S3Error, S3ImageFiles
from storage.sigv4 import EMPTY_SHA256, authorization
from storage.stores import prune
from tests.fakes import FakeBackend
from tests.test_ops_maintenance import age
from tests.test_telegram_support import PRIVATE, Bench, bench
from tests.web_support import Chat, gallery_app

__all__ = ["bench"]


@pytest.fixture
async def s3(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[S3Simulator]:
    sim = S3Simulator()
    await sim.start()
    monkeypatch.setenv("IMAGEBRIDGE_S3_ACCESS_KEY_ID", sim.access_key)
    monkeypatch.setenv("IMAGEBRIDGE_S3_SECRET_ACCESS_KEY", sim.secret_key)
    yield sim
    await sim.stop()


def bucket_settings(sim: S3Simulator) -> dict[str, Any]:
    return {"storage": {"s3": {"endpoint": sim.url, "bucket": "images", "prefix": "ib/"}}}


def client(sim: S3Simulator, tmp_path: Path, secret: str | None = None) -> S3ImageFiles:
    return S3ImageFiles(
        sim.url, sim.region, "images", "ib", SecretStr(sim.access_key), SecretStr(secret or sim.secret_key),
        DiskImageFiles(tmp_path),
    )  # fmt: skip


def test_the_signer_reproduces_the_aws_documentation_example() -> None:
    # "Example: GET Object" in the S3 SigV4 docs (Authenticating Requests: Using the Authorization Header).
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    signed = authorization(
        method="GET", path="/test.txt", headers=headers, payload_hash=EMPTY_SHA256,
        access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1", when=datetime(2013, 5, 24, tzinfo=UTC),
    )  # fmt: skip
    assert signed.endswith("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    assert "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date" in signed


async def test_put_get_head_delete_and_the_simulators_refusals(s3: S3Simulator, tmp_path: Path) -> None:
    files = client(s3, tmp_path)
    try:
        path = await files.write("job1", "1 (final).png", b"png bytes")
        assert path == "s3://images/ib/job1/1 (final).png" and await files.exists(path)
        assert await files.read(path) == b"png bytes"
        await files.delete(path)
        assert not await files.exists(path)
        with pytest.raises(S3Error, match="NoSuchKey"):
            await files.read(path)
        s3.clock_offset = timedelta(minutes=20)
        with pytest.raises(S3Error, match="RequestTimeTooSkewed"):
            await files.write("job1", "2.png", b"x")
        s3.clock_offset = timedelta(0)
    finally:
        await files.aclose()
    async with httpx.AsyncClient() as raw:  # a body that is not the one whose hash was signed
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        host = s3.url.removeprefix("http://")
        headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": stamp}
        headers["authorization"] = authorization(
            method="PUT", path="/images/x", headers=headers, payload_hash=EMPTY_SHA256, access_key=s3.access_key,
            secret_key=s3.secret_key, region=s3.region, when=datetime.now(UTC),
        )  # fmt: skip
        answer = await raw.put(f"{s3.url}/images/x", headers=headers, content=b"not empty")
        assert answer.status_code == 400 and "XAmzContentSHA256Mismatch" in answer.text
        unsigned = await raw.get(f"{s3.url}/images/x")
        assert unsigned.status_code == 403 and "AccessDenied" in unsigned.text


async def test_a_wrong_secret_stops_the_start_with_one_clear_line(
    s3: S3Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-right-secret-4711"
    monkeypatch.setenv("IMAGEBRIDGE_S3_SECRET_ACCESS_KEY", wrong)
    with pytest.raises(ConfigError) as refused:
        async with gallery_app(tmp_path / "data", FakeBackend(), **bucket_settings(s3)):
            pass
    said = str(refused.value)
    assert "SignatureDoesNotMatch" in said and "IMAGEBRIDGE_S3_SECRET_ACCESS_KEY" in said, said
    assert wrong not in said and wrong not in caplog.text
    assert s3.objects == {}


async def test_a_result_goes_to_the_bucket_and_reaches_telegram(bench: Bench, s3: S3Simulator) -> None:
    bench.overrides = bucket_settings(s3)
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine a lantern in the fog")
    (photo,) = bench.results(PRIVATE)
    assert photo.photo is not None
    assert bench.app is not None
    (image,) = await bench.app.services.store.images(job_id)
    assert image.path.startswith("s3://images/ib/") and ("images", image.path.split("/", 3)[3]) in s3.objects
    assert not (bench.data_dir / "images").exists(), "nothing written to the local folder"


async def test_the_gallery_shows_bucket_images_and_prune_deletes_them(s3: S3Simulator, tmp_path: Path) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **bucket_settings(s3)) as app:
        chat = Chat(app)
        job_id = await chat.imagine("alice", "a red fox")
        (image,) = await app.services.store.images(job_id)
        assert image.path.startswith("s3://")
        link = await chat.link("alice")
        async with httpx.AsyncClient(follow_redirects=True) as browser:
            page = await browser.get(link)
            token = re.search(r'name="token" value="([^"]+)"', page.text)
            assert token, page.text
            await browser.post(f"{app.ops.url}/gallery/login", data={"token": token.group(1)})  # type: ignore[union-attr]
            for kind in ("image", "thumb"):
                served = await browser.get(f"{app.ops.url}/gallery/{kind}/{image.id}")  # type: ignore[union-attr]
                assert served.status_code == 200, (kind, served.status_code)
                with Image.open(io.BytesIO(served.content)) as shown:
                    assert shown.size[0] > 0
            await age(app, job_id, days=40)
            assert await prune(app.db, app.services.files, older_than_days=30) == 1
            assert s3.objects == {}, "the job's image left the bucket"
            gone = await browser.get(f"{app.ops.url}/gallery/image/{image.id}")  # type: ignore[union-attr]
            assert gone.status_code == 404
