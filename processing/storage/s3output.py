"""Results out to ``s3://bucket/prefix`` (AWS S3, MinIO, any S3 store).

:class:`S3Output` stages results in a local folder and publishes them, each
object complete or not at all, with its content type and its SHA-256 in the
object's metadata (an unchanged file is not sent twice). Editors get presigned
links that expire; nothing is made public. Uploads come in through
:class:`~processing.storage.s3source.S3Source`.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botocore import exceptions as bex

from ..fsutil import atomic_output, sha256_file
from .base import Output
from .s3client import (
    LazyClient,
    S3Settings,
    download,
    error_code,
    parse_uri,
    shown,
    translated,
)
from .s3client import upload as upload_file

#: Published files by extension, with the type a browser needs to play or show them.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".flac": "audio/flac",
    ".json": "application/json",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".jpg": "image/jpeg",
}
#: Files rewritten in place that a reader must never get stale from a cache.
_NO_CACHE = (".json", ".html")


class S3Output(LazyClient, Output):
    """Results published under ``s3://bucket/prefix``, staged in a local folder first."""

    remote = True

    def __init__(self, uri: str, staging: Path, settings: S3Settings | None = None):
        super().__init__()
        self.bucket, self.prefix = parse_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self.settings = settings or S3Settings()
        # One staging folder per output on this machine; the prefix may hold any character.
        tag = hashlib.sha256(self.uri.encode()).hexdigest()[:12]
        self.root = Path(staging) / f"{self.bucket}-{tag}"

    def location(self, rel: str) -> str:
        return shown(f"s3://{self.bucket}/{self._key(rel)}")

    def exists(self, rel: str) -> bool:
        return self._head(rel) is not None

    def fetch(self, rels: Iterable[str], *, mirror: bool = False) -> None:
        for rel in rels:
            head = self._head(rel)
            local = self.root / rel
            if head is None:
                if mirror:
                    local.unlink(missing_ok=True)
                continue
            if _same(local, head):
                continue
            with (
                translated("downloading", self.location(rel)),
                atomic_output(local) as part,
            ):
                download(
                    self.client,
                    self.settings,
                    self.bucket,
                    self._key(rel),
                    part,
                    size=int(head["ContentLength"]),
                    etag=head.get("ETag"),
                )

    def publish(self, rels: Iterable[str]) -> None:
        for rel in rels:
            local = self.root / rel
            if not local.is_file():
                continue
            digest = sha256_file(local)
            head = self._head(rel)
            if head is not None and head.get("Metadata", {}).get("sha256") == digest:
                continue
            ext = posixpath.splitext(rel)[1].lower()
            extra: dict[str, Any] = {
                "ContentType": CONTENT_TYPES.get(ext, "application/octet-stream"),
                "Metadata": {"sha256": digest},
            }
            if ext in _NO_CACHE:
                extra["CacheControl"] = "no-cache"
            with translated("uploading", self.location(rel)):
                upload_file(self.client, self.settings, local, self.bucket, self._key(rel), extra)

    def listing(self, prefix: str) -> list[str]:
        found = []
        with translated("listing", shown(self.uri + prefix)):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found += [obj["Key"][len(self.prefix) :] for obj in page.get("Contents", [])]
        return sorted(rel for rel in found if rel and not rel.endswith("/"))

    def remove(self, rels: Iterable[str]) -> None:
        for rel in rels:
            with translated("deleting", self.location(rel)):
                # DeleteObject succeeds on a missing key: removal is idempotent.
                self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
            (self.root / rel).unlink(missing_ok=True)

    def url_for(self, rel: str) -> str:
        """A presigned GET link valid for ``storage.presign_seconds`` (signed locally)."""
        with translated("signing a link to", self.location(rel)):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(rel)},
                ExpiresIn=self.settings.presign_seconds,
            )
        return url

    def _key(self, rel: str) -> str:
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a path inside the output: {rel!r}")
        return self.prefix + rel

    def _head(self, rel: str) -> dict[str, Any] | None:
        with translated("checking", self.location(rel)):
            try:
                head: dict[str, Any] = self.client.head_object(
                    Bucket=self.bucket, Key=self._key(rel)
                )
            except bex.ClientError as exc:
                if error_code(exc)[1] == 404:
                    return None
                raise
            return head


def _same(local: Path, head: dict[str, Any]) -> bool:
    """Whether the local file already holds the published object (size, then SHA-256)."""
    try:
        if local.stat().st_size != int(head["ContentLength"]):
            return False
    except FileNotFoundError:
        return False
    return head.get("Metadata", {}).get("sha256") == sha256_file(local)
