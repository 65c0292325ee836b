"""Uploads from ``s3://bucket/prefix`` (AWS S3, MinIO, any S3 store).

:class:`S3Source` lists the uploads page by page, reads sidecars with a bounded
ranged GET and downloads through boto3's managed transfer into the work folder,
under a hash-based name: a key such as ``../../etc/passwd.mp4`` or one full of
control characters never becomes a path. Every read carries the ETag seen when
listing (``If-Match``), so an object replaced in between is detected, not mixed.
Results go out through :class:`~processing.storage.s3output.S3Output`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore import exceptions as bex
from s3transfer.exceptions import S3DownloadFailedError

from ..errors import Rejection
from .base import RETIRED_SUFFIX, Source, Upload
from .s3client import (
    LazyClient,
    S3Settings,
    download,
    error_code,
    etag_mismatch,
    parse_uri,
    shown,
    translated,
)

_PLAIN_EXT = re.compile(r"\.[A-Za-z0-9]{1,10}")
_CHUNK = 1 << 20


def local_name(key: str) -> str:
    """A file name for ``key`` that is safe in any folder: a hash, plus a plain extension.

    Nothing of the key but an ASCII extension (``.mp4``) survives: no ``/``,
    ``..``, control characters or bidirectional overrides, and a fixed length.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    ext = posixpath.splitext(key)[1]
    return digest + (ext.lower() if _PLAIN_EXT.fullmatch(ext) else "")


class S3Source(LazyClient, Source):
    """Every object under ``s3://bucket/prefix`` that is not ignored and not a sidecar.

    Originals are never changed; retention (:mod:`processing.retention`) deletes
    one whole, after writing its marker.
    """

    def __init__(
        self,
        uri: str,
        ignore: tuple[str, ...] = (),
        settings: S3Settings | None = None,
        max_bytes: int | None = None,
    ):
        super().__init__()
        self.bucket, self.prefix = parse_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self.ignore = ignore
        self.settings = settings or S3Settings()
        self.max_bytes = max_bytes
        #: Retirement markers seen by the last listing (None: not listed yet).
        self._markers: list[str] | None = None

    def where(self, rel: str) -> str:
        return shown(f"s3://{self.bucket}/{self.prefix}{rel}")

    def list_uploads(self) -> list[Upload]:
        objects: dict[str, dict[str, Any]] = {}
        with translated("listing", self.uri):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(self.prefix) :]
                    if not rel or rel.endswith("/") or _in_hidden_folder(rel):
                        continue
                    objects[rel] = obj
        # The markers come with the same pages: reading them needs no second listing.
        self._markers = [self.prefix + rel for rel in objects if rel.endswith(RETIRED_SUFFIX)]
        uploads = []
        for rel, obj in objects.items():
            name = rel.rsplit("/", 1)[-1]
            if rel.lower().endswith(".json") or any(
                fnmatch.fnmatch(name, pat) for pat in self.ignore
            ):
                continue
            sidecar = posixpath.splitext(rel)[0] + ".json"
            uploads.append(
                Upload(
                    key=rel,
                    size=int(obj["Size"]),
                    modified=obj["LastModified"],
                    sidecar_key=sidecar if sidecar in objects else None,
                    etag=obj.get("ETag"),
                )
            )
        uploads.sort(key=lambda u: (u.modified, u.key))
        return uploads

    def read_sidecar(self, upload: Upload, max_bytes: int) -> bytes | None:
        if upload.sidecar_key is None:
            return None
        with translated("reading the sidecar", self.where(upload.sidecar_key)):
            try:
                response = self.client.get_object(
                    Bucket=self.bucket,
                    Key=self.prefix + upload.sidecar_key,
                    Range=f"bytes=0-{max_bytes}",
                )
            except bex.ClientError as exc:
                code, status = error_code(exc)
                if code == "InvalidRange":  # an empty object has no byte 0
                    return b""
                if status == 404:  # deleted since the listing
                    return None
                raise
            data: bytes = response["Body"].read(max_bytes + 1)
            return data

    def digest(self, upload: Upload, workdir: Path) -> str:
        """SHA-256 of the object streamed from the store (nothing written to disk)."""
        self._check_size(upload)
        h, n = hashlib.sha256(), 0
        with self._reading(upload):
            response = self.client.get_object(**self._get_args(upload))
            for block in response["Body"].iter_chunks(_CHUNK):
                h.update(block)
                n += len(block)
        if n != upload.size:
            raise _changed(upload, f"{n} bytes read, {upload.size} listed")
        return h.hexdigest()

    @contextlib.contextmanager
    def local_copy(self, upload: Upload, workdir: Path) -> Iterator[Path]:
        self._check_size(upload)
        workdir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="s3-", dir=workdir))
        try:
            path = folder / local_name(upload.key)
            with self._reading(upload):
                download(
                    self.client,
                    self.settings,
                    self.bucket,
                    self.prefix + upload.key,
                    path,
                    size=upload.size,
                    etag=upload.etag,
                )
            if (got := path.stat().st_size) != upload.size:
                raise _changed(upload, f"{got} bytes downloaded, {upload.size} listed")
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def retired(self, max_bytes: int) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if self._markers is None:
            self.list_uploads()
        for key in self._markers or []:
            with translated("reading a retirement marker", shown(f"s3://{self.bucket}/{key}")):
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                found[key[len(self.prefix) : -len(RETIRED_SUFFIX)]] = body.read(max_bytes + 1)
        return found

    def retire(self, upload: Upload, marker: bytes) -> None:
        key = self.prefix + upload.key
        with translated("deleting the original", self.where(upload.key)):
            # A PUT is atomic: the marker is whole before the original goes.
            self.client.put_object(
                Bucket=self.bucket,
                Key=key + RETIRED_SUFFIX,
                Body=marker,
                ContentType="application/json",
            )
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _get_args(self, upload: Upload) -> dict[str, Any]:
        args = {"Bucket": self.bucket, "Key": self.prefix + upload.key}
        if upload.etag:
            args["IfMatch"] = upload.etag
        return args

    def _check_size(self, upload: Upload) -> None:
        """Refuse an object over ``limits.max_file_bytes`` before reading a byte of it."""
        if self.max_bytes is not None and upload.size > self.max_bytes:
            raise Rejection(
                "too_large",
                f"The file is {upload.size / 2**20:.0f} MiB, over the "
                f"{self.max_bytes / 2**20:.0f} MiB limit (limits.max_file_bytes).",
            )

    @contextlib.contextmanager
    def _reading(self, upload: Upload) -> Iterator[None]:
        """Storage errors translated; a replaced or deleted object becomes a rejection."""
        with translated("downloading", self.where(upload.key)):
            try:
                yield
            except (bex.ClientError, S3DownloadFailedError) as exc:
                if etag_mismatch(exc):
                    raise _changed(upload, "its ETag no longer matches the listing") from exc
                if error_code(exc)[1] == 404:
                    raise Rejection(
                        "upload_changed",
                        "The file was deleted while this run was reading it; nothing was "
                        "made of it.",
                    ) from exc
                raise


def _in_hidden_folder(rel: str) -> bool:
    """Whether ``rel`` lies under a ``.name`` folder (skipped, as a local source skips them).

    ``.`` and ``..`` are not folders in a bucket, just characters of a key: such
    a key is listed (and reported), never resolved.
    """
    return any(f.startswith(".") and f not in (".", "..") for f in rel.split("/")[:-1])


def _changed(upload: Upload, detail: str) -> Rejection:
    return Rejection(
        "upload_changed",
        f"The file was replaced while this run was reading it ({detail}); it is left for the "
        "next run, which will process the new version.",
    )
