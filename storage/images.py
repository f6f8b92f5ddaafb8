"""Where image files go: a folder (`[storage] images_dir`, default data_dir/images) or an S3-compatible bucket
(`[storage.s3]`). Everything that reads, writes or deletes image files gets its ImageFiles here."""

from __future__ import annotations

from bot.errors import ConfigError
from bot.secret_source import SecretSource
from bot.settings import Settings
from storage.files import DiskImageFiles
from storage.s3 import S3ImageFiles
from storage.stores import images_root

ImageStore = DiskImageFiles | S3ImageFiles


def image_files(settings: Settings, secrets: SecretSource | None = None) -> ImageStore:
    """The configured image store (no network yet: `check()` tries the bucket)."""
    disk = DiskImageFiles(images_root(settings))
    s3 = settings.storage.s3
    if not s3.enabled:
        return disk
    secrets = secrets or SecretSource()
    access, secret = secrets.get("IMAGEBRIDGE_S3_ACCESS_KEY_ID"), secrets.get("IMAGEBRIDGE_S3_SECRET_ACCESS_KEY")
    if access is None or secret is None:
        raise ConfigError(
            "storage.s3.bucket is set but IMAGEBRIDGE_S3_ACCESS_KEY_ID and IMAGEBRIDGE_S3_SECRET_ACCESS_KEY are not "
            "(environment or secrets folder)"
        )
    return S3ImageFiles(s3.endpoint, s3.region, s3.bucket, s3.prefix, access, secret, disk)
