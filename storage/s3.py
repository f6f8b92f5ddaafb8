"""Image files in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2…): four REST calls over httpx.

PutObject, GetObject, DeleteObject and HeadObject, path-style (`endpoint/bucket/key`, which MinIO and R2
accept and AWS still serves), signed with SigV4 (storage/sigv4.py). Our own ~150 lines rather than
aiobotocore: that pulls in botocore's whole service model for four calls. Rows keep `s3://bucket/key`;
a path without that scheme is a file on disk (images written before the switch), read and deleted there.
The keys come from IMAGEBRIDGE_S3_ACCESS_KEY_ID / IMAGEBRIDGE_S3_SECRET_ACCESS_KEY and appear in no message.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from storage.files import DiskImageFiles
from storage.sigv4 import authorization, uri_encode

SCHEME = "s3://"
CODE = re.compile(r"<Code>([^<]*)</Code>")
MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


class S3Error(OSError):
    """An S3 call failed; the message names the bucket, the call and S3's error code, never a key's secret."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class S3ImageFiles:
    """ImageFiles in a bucket; `write` returns `s3://bucket/prefix/folder/name`."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        bucket: str,
        prefix: str,
        access_key: SecretStr,
        secret_key: SecretStr,
        disk: DiskImageFiles,
        timeout: float = 60.0,
    ) -> None:
        self.endpoint, self.region, self.bucket = endpoint.rstrip("/"), region, bucket
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.endpoint))
        self.prefix = prefix.strip("/")
        self._access, self._secret = access_key, secret_key
        self.disk = disk  # images written before the bucket was configured
        self._client = httpx.AsyncClient(timeout=timeout)

    def key(self, folder: str, name: str) -> str:
        return "/".join(part for part in (self.prefix, folder, name) if part)

    async def write(self, folder: str, name: str, data: bytes) -> str:
        key = self.key(folder, name)
        await self._call("PUT", key, data)
        return f"{SCHEME}{self.bucket}/{key}"

    async def read(self, path: str) -> bytes:
        if not path.startswith(SCHEME):
            return await self.disk.read(path)
        response = await self._call("GET", self._key_of(path))
        return response.content

    async def delete(self, path: str) -> None:
        if not path.startswith(SCHEME):
            await self.disk.delete(path)
            return
        await self._call("DELETE", self._key_of(path))  # S3 answers 204 for a key that is not there too

    async def exists(self, path: str) -> bool:
        """HeadObject: whether the object is there (False for 404)."""
        if not path.startswith(SCHEME):
            return await self.disk.exists(path)
        try:
            await self._call("HEAD", self._key_of(path))
        except S3Error as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def check(self) -> None:
        """At start: the bucket answers and accepts our keys. A GET of a key that need not exist: unlike HEAD's,
        its error has a body naming the cause (SignatureDoesNotMatch, InvalidAccessKeyId…)."""
        try:
            await self._call("GET", self.key(".imagebridge", "check"))
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise

    def _key_of(self, path: str) -> str:
        bucket, _, key = path[len(SCHEME) :].partition("/")
        if bucket != self.bucket:
            raise S3Error(f"image {path} is in bucket {bucket}, not the configured {self.bucket}", 400, "OtherBucket")
        return key

    async def _call(self, method: str, key: str, body: bytes = b"") -> httpx.Response:
        path = f"{urlsplit(self.endpoint).path.rstrip('/')}/{self.bucket}/{key}"
        url = f"{self._origin}{uri_encode(path, slash=True)}"  # sent as signed: no other encoding between
        when = datetime.now(UTC)
        payload = hashlib.sha256(body).hexdigest()
        headers = {
            "host": urlsplit(self.endpoint).netloc,
            "x-amz-content-sha256": payload,
            "x-amz-date": when.strftime("%Y%m%dT%H%M%SZ"),
        }
        headers["authorization"] = authorization(
            method=method,
            path=path,
            headers=headers,
            payload_hash=payload,
            access_key=self._access.get_secret_value(),
            secret_key=self._secret.get_secret_value(),
            region=self.region,
            when=when,
        )
        try:
            response = await self._client.request(method, url, headers=headers, content=body or None)
        except httpx.HTTPError as exc:
            said = f"S3 bucket {self.bucket} at {self.endpoint}: {type(exc).__name__}"
            raise S3Error(said, 0, "Unreachable") from exc
        if response.status_code >= 300:
            raise self._error(method, key, response)
        return response

    def _error(self, method: str, key: str, response: httpx.Response) -> S3Error:
        text = response.text if method != "HEAD" else ""
        found = CODE.search(text)
        code = found.group(1) if found else {403: "Forbidden", 404: "NoSuchKey"}.get(response.status_code, "Error")
        said = MESSAGE.search(text)
        hint = {
            "SignatureDoesNotMatch": " (check IMAGEBRIDGE_S3_SECRET_ACCESS_KEY)",
            "InvalidAccessKeyId": " (check IMAGEBRIDGE_S3_ACCESS_KEY_ID)",
            "RequestTimeTooSkewed": " (this host's clock is off)",
        }.get(code, "")
        detail = f": {said.group(1)}" if said else ""
        message = f"S3 {method} {key} in bucket {self.bucket} at {self.endpoint}: {response.status_code} {code}{detail}"
        return S3Error(message + hint, response.status_code, code)

    async def aclose(self) -> None:
        await self._client.aclose()
