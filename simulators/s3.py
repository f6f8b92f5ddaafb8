"""An S3-compatible object store that checks requests as AWS S3 does (path-style, as MinIO and R2 accept).

Every request must carry a SigV4 Authorization header. The simulator rebuilds the canonical request from what
arrived (method, the path decoded and URI-encoded again, sorted query, the signed headers' trimmed values,
x-amz-content-sha256), the string to sign and the signature with the account's secret, independently of the
client's code, and answers as S3: 403 SignatureDoesNotMatch (with the StringToSign and CanonicalRequest it
computed, never the secret), 403 InvalidAccessKeyId, 403 RequestTimeTooSkewed beyond 15 minutes, 403
AccessDenied for unsigned x-amz-* headers, 400 for a missing or wrong x-amz-content-sha256, 404 NoSuchBucket /
NoSuchKey. HEAD errors have no body. PutObject, GetObject, DeleteObject (204, also for a missing key), HeadObject.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

SKEW = timedelta(minutes=15)


@dataclass
class S3Simulator:
    """One account (access key → secret) and its buckets; `objects[(bucket, key)]` holds the bytes."""

    access_key: str = "AKIDIMAGEBRIDGETEST"
    secret_key: str = "imagebridge/test+secret/key"
    region: str = "us-east-1"
    buckets: set[str] = field(default_factory=lambda: {"images"})
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    clock_offset: timedelta = timedelta(0)  # the server's clock minus ours
    calls: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        response = self._answer(request, body)
        self.calls.append((request.method, request.rel_url.raw_path, response.status))
        return response

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        refused = self._authenticate(request, body)
        if refused is not None:
            return refused
        bucket, _, key = unquote(request.rel_url.raw_path.lstrip("/")).partition("/")
        if bucket not in self.buckets:
            return error(request, 404, "NoSuchBucket", "The specified bucket does not exist")
        if not key:
            return error(request, 400, "InvalidRequest", "this simulator serves object calls only")
        if request.method == "PUT":
            self.objects[(bucket, key)] = body
            return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if request.method == "DELETE":
            self.objects.pop((bucket, key), None)
            return web.Response(status=204)
        data = self.objects.get((bucket, key))
        if data is None:
            return error(request, 404, "NoSuchKey", "The specified key does not exist.")
        if request.method == "HEAD":
            return web.Response(status=200, headers={"Content-Length": str(len(data))})
        if request.method == "GET":
            return web.Response(status=200, body=data, content_type="application/octet-stream")
        return error(request, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    def _authenticate(self, request: web.Request, body: bytes) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("AWS4-HMAC-SHA256 "):
            return error(request, 403, "AccessDenied", "Access Denied")
        fields = dict(part.strip().split("=", 1) for part in header[len("AWS4-HMAC-SHA256 ") :].split(","))
        access, day, region, service, terminal = fields.get("Credential", "/////").split("/")[:5]
        if access != self.access_key:
            return error(request, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist.")
        if (region, service, terminal) != (self.region, "s3", "aws4_request"):
            return error(request, 400, "AuthorizationHeaderMalformed", f"the region '{region}' is wrong")
        stamp = request.headers.get("x-amz-date", "")
        try:
            sent = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return error(request, 403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        if abs(datetime.now(UTC) + self.clock_offset - sent) > SKEW or not stamp.startswith(day):
            return error(request, 403, "RequestTimeTooSkewed", "The difference between the request time and the "
                         "current time is too large.")  # fmt: skip
        payload = request.headers.get("x-amz-content-sha256")
        if payload is None:
            missing = "Missing required header for this request: x-amz-content-sha256"
            return error(request, 400, "InvalidRequest", missing)
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            return error(request, 400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header "
                         "does not match what was computed.")  # fmt: skip
        signed = fields.get("SignedHeaders", "").split(";")
        unsigned = [h for h in request.headers if h.lower().startswith("x-amz-") and h.lower() not in signed]
        if "host" not in signed or unsigned:
            unsigned_said = "There were headers present in the request which were not signed"
            return error(request, 403, "AccessDenied", unsigned_said)
        canonical, to_sign, signature = self._signature(request, signed, payload, stamp, day)
        if not hmac.compare_digest(signature, fields.get("Signature", "")):
            return error(request, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                         "the signature you provided. Check your key and signing method.",
                         StringToSign=to_sign, CanonicalRequest=canonical)  # fmt: skip
        return None

    def _signature(
        self, request: web.Request, signed: list[str], payload: str, stamp: str, day: str
    ) -> tuple[str, str, str]:
        query = sorted(
            (quote(unquote(k), safe="~"), quote(unquote(v), safe="~"))
            for k, _, v in (p.partition("=") for p in request.rel_url.raw_query_string.split("&") if p)
        )
        headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in signed)
        path = quote(unquote(request.rel_url.raw_path), safe="/~")  # S3 decodes the path and encodes it again
        canonical_query = "&".join(f"{k}={v}" for k, v in query)
        canonical = "\n".join([request.method, path, canonical_query, headers, ";".join(signed), payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = ("AWS4" + self.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return canonical, to_sign, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def error(request: web.Request, status: int, code: str, message: str, **more: Any) -> web.Response:
    """S3's XML error document (no body for HEAD, as S3 answers)."""
    if request.method == "HEAD":
        return web.Response(status=status)
    extra = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in more.items())
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
        f"{extra}<RequestId>SIM0000000000000</RequestId></Error>"
    )
    return web.Response(status=status, text=xml, content_type="application/xml")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
