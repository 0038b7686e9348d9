"""``./dev publish-source``: zip a folder and upload it as one service's S3 source.

A service's pipeline with ``sourceProvider: s3`` reads the versioned object ``sourceKey``
(``source/<service>.zip`` by default) from the foundation's source bucket; S3 sends its "Object
Created" event to EventBridge, whose rule starts that service's pipeline. The bucket comes from
the deployed foundation's outputs (through the runner), the key from the pipeline layer's own
config reader over the files Pulumi reads (the layer's stack files and ``platform.yaml``'s
``services``).
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import PlatformError
from toolbox.automation import Runner
from toolbox.layer_config import read_pipeline_args

SKIPPED_DIRS = frozenset({".git", ".venv", "node_modules", "__pycache__"})
"""Folders never packed: VCS data, local environments and dependencies the build installs."""
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
"""Every entry's timestamp, so the same files always give the same zip (and ETag)."""


@dataclass(frozen=True)
class Published:
    """Where a source zip went."""

    bucket: str
    key: str
    version_id: str
    files: int
    size: int

    def line(self) -> str:
        """One line for the terminal."""
        return (
            f"published {self.files} file(s), {self.size} bytes, to s3://{self.bucket}/{self.key}"
            f" (version {self.version_id}); the pipeline starts on it"
        )


def require_folder(folder: Path) -> None:
    """PlatformError unless ``folder`` is a folder: checked before anything else is read."""
    if not folder.is_dir():
        raise PlatformError(f"{folder}: not a folder (allowed: the application's source folder)")


def zip_folder(folder: Path) -> tuple[bytes, int]:
    """The folder's files as a deterministic zip (sorted, fixed times), and how many."""
    require_folder(folder)
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(files):
                path = Path(root) / name
                entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = (path.stat().st_mode & 0o777) << 16
                archive.writestr(entry, path.read_bytes())
                count += 1
    if count == 0:
        raise PlatformError(f"{folder}: has no files to publish")
    return buffer.getvalue(), count


def source_key(env: str, service: str = "") -> str:
    """The ``sourceKey`` of ``service`` (the first service, the application, when '') in
    ``env``, as the pipeline layer's own reader resolves it; a service whose pipeline is not
    S3-sourced is a one-line error, since nothing would read what is uploaded."""
    layer = read_pipeline_args(env)
    args = layer.pipeline(service) if service else layer.pipelines[0]
    if args.source_provider != "s3":
        raise PlatformError(
            f"service {args.service} of {env} takes its source from {args.source_provider}, not"
            " s3: nothing would read the upload (set sourceProvider: s3 under"
            f" services.{args.service} in platform.yaml, or name another with --service)"
        )
    return args.source.source_key


def source_bucket(runner: Runner, env: str) -> str:
    """The source bucket the deployed foundation exports."""
    outputs = runner.outputs("foundation", env)
    bucket = outputs.get("sourceBucketName")
    if not bucket:
        raise PlatformError(
            f"the foundation stack of {env} exports no sourceBucketName; run"
            f" `./dev deploy --layer foundation --env {env}`"
        )
    return str(bucket)


def publish(
    session: Any, folder: Path, bucket: str, key: str, *, content: tuple[bytes, int] | None = None
) -> Published:
    """Upload ``folder`` zipped to ``s3://bucket/key``; the bucket's default KMS key encrypts it."""
    data, files = content or zip_folder(folder)
    try:
        response = session.client("s3").put_object(
            Bucket=bucket, Key=key, Body=data, ContentType="application/zip"
        )
    except (ClientError, BotoCoreError) as exc:
        raise PlatformError(f"cannot upload to s3://{bucket}/{key}: {exc}") from None
    version = response.get("VersionId") or "none: the bucket is not versioned"
    return Published(bucket=bucket, key=key, version_id=version, files=files, size=len(data))


def publish_source(
    runner: Runner, session: Any, env: str, folder: Path, service: str = ""
) -> Published:
    """Zip ``folder`` and upload it where the S3-sourced pipeline of ``service`` (the first
    service when '') in ``env`` reads its source."""
    content = zip_folder(folder)  # a bad folder fails before any AWS call
    key = source_key(env, service)  # so does a service without the S3 source
    return publish(session, folder, source_bucket(runner, env), key, content=content)
