"""boto3 plumbing shared by the S3 source and output: URIs, clients, transfers, errors.

Endpoint, region and credentials come from the standard AWS environment
(``AWS_ENDPOINT_URL`` reaches MinIO or any S3-compatible store, ``AWS_REGION``,
``AWS_PROFILE`` or ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``); nothing here
or in the campaign config holds a secret.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from botocore import exceptions as bex
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
from s3transfer.manager import TransferManager
from s3transfer.subscribers import BaseSubscriber

from .base import StorageError, StoreUnavailable

if TYPE_CHECKING:
    from ..config import Storage

SCHEME = "s3://"
MIB = 1 << 20

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

#: Error codes S3 and S3-compatible stores use for "slow down" and "try again".
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown", "Throttling", "ThrottlingException", "ThrottledException",
        "RequestThrottled", "RequestLimitExceeded", "TooManyRequestsException",
        "BandwidthLimitExceeded", "RequestTimeout", "RequestTimeoutException",
        "InternalError", "ServiceUnavailable", "PriorRequestNotComplete",
    }
)  # fmt: skip
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AllAccessDisabled"}
)


@dataclass(frozen=True)
class S3Settings:
    """Retries, timeouts, transfer sizes and link lifetime (``[storage]`` in the config)."""

    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    multipart_bytes: int = 16 * MIB
    concurrency: int = 4
    presign_seconds: int = 604800

    @classmethod
    def from_config(cls, st: Storage) -> S3Settings:
        return cls(
            max_attempts=st.max_attempts,
            connect_timeout=st.connect_timeout_seconds,
            read_timeout=st.read_timeout_seconds,
            multipart_bytes=st.multipart_mb * MIB,
            concurrency=st.transfer_concurrency,
            presign_seconds=st.presign_seconds,
        )


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b/")``: the prefix is empty or ends in ``/``.

    Raises:
        StorageError: Not an ``s3://`` URI, or not a valid bucket name.
    """
    if not uri.startswith(SCHEME):
        raise StorageError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[len(SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise StorageError(
            f"{uri!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, dots "
            "and hyphens); write s3://BUCKET/PREFIX"
        )
    prefix = prefix.strip("/")
    if any(not c.isprintable() for c in prefix):
        raise StorageError(f"{uri!r}: the prefix contains control characters")
    return bucket, (prefix + "/" if prefix else "")


def overlaps(a: str, b: str) -> bool:
    """Whether two ``s3://`` locations share keys (same bucket, one prefix inside the other)."""
    (ba, pa), (bb, pb) = parse_uri(a), parse_uri(b)
    return ba == bb and (pa.startswith(pb) or pb.startswith(pa))


def endpoint() -> str | None:
    """The custom endpoint boto3 will use, if the environment names one."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def make_client(settings: S3Settings) -> Any:
    """An S3 client with bounded retries and timeouts, configured from the AWS environment."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        signature_version="s3v4",
        # MinIO and other self-hosted stores serve buckets as paths, not host names.
        s3={"addressing_style": "path" if endpoint() else "auto"},
        max_pool_connections=max(10, 2 * settings.concurrency + 2),
        tcp_keepalive=True,
    )
    # One session per client: boto3's default session is not safe to share across threads.
    return boto3.session.Session().client("s3", config=config)


class _Transfers(TransferManager):
    """boto3's managed transfer, also passing ``IfMatch`` on downloads.

    With the listed ETag as ``IfMatch`` on every GET (the whole object or each
    ranged part), an object replaced after it was listed fails with 412
    instead of arriving as a mix of two versions.
    """

    ALLOWED_DOWNLOAD_ARGS: ClassVar[list[str]] = [*TransferManager.ALLOWED_DOWNLOAD_ARGS, "IfMatch"]


class _Known(BaseSubscriber):
    """Tells the transfer the object's size and ETag so it does not ask again (HEAD)."""

    def __init__(self, size: int, etag: str | None):
        self.size, self.etag = size, etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)
        if self.etag:
            future.meta.provide_object_etag(self.etag)


def transfers(client: Any, settings: S3Settings) -> _Transfers:
    """A transfer manager: multipart above ``multipart_bytes``, ``concurrency`` parts at a time."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=settings.multipart_bytes,
        multipart_chunksize=settings.multipart_bytes,
        max_concurrency=settings.concurrency,
        use_threads=True,
    )
    return _Transfers(client, config)


def download(
    client: Any,
    settings: S3Settings,
    bucket: str,
    key: str,
    dst: Path,
    *,
    size: int,
    etag: str | None,
) -> None:
    """Download ``key`` to ``dst`` (managed transfer), only while it still has ``etag``."""
    extra = {"IfMatch": etag} if etag else {}
    with transfers(client, settings) as manager:
        future = manager.download(
            bucket, key, str(dst), extra_args=extra, subscribers=[_Known(size, etag)]
        )
        future.result()


def upload(
    client: Any, settings: S3Settings, src: Path, bucket: str, key: str, extra: dict[str, Any]
) -> None:
    """Upload ``src`` through the managed transfer (an unfinished multipart upload is aborted)."""
    with transfers(client, settings) as manager:
        manager.upload(str(src), bucket, key, extra_args=extra).result()


def error_code(exc: BaseException) -> tuple[str, int]:
    """The S3 error code and HTTP status of a ``ClientError`` (``("", 0)`` otherwise)."""
    if not isinstance(exc, bex.ClientError):
        return "", 0
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, status


def etag_mismatch(exc: BaseException) -> bool:
    """Whether ``exc`` says the object no longer has the ETag it was read with (``If-Match``)."""
    if isinstance(exc, S3DownloadFailedError):  # how the managed transfer reports a 412
        return "ETag" in str(exc)
    code, status = error_code(exc)
    return status == 412 or code == "PreconditionFailed"


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying later: throttling, 5xx, timeouts, dropped connections."""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, StorageError):
        return False
    if isinstance(exc, bex.ClientError):
        code, status = error_code(exc)
        return status >= 500 or status == 429 or code in _TRANSIENT_CODES
    return isinstance(
        exc,
        bex.ConnectionError | bex.HTTPClientError | bex.IncompleteReadError | RetriesExceededError,
    )


def shown(text: str) -> str:
    """``text`` safe to put in a message: control and formatting characters escaped."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


@contextlib.contextmanager
def translated(action: str, where: str) -> Iterator[None]:
    """Turn boto3's errors inside the block into :class:`StorageError` saying what to do.

    Args:
        action: What was being done (``"listing"``, ``"uploading"``) for the message.
        where: The ``s3://`` location concerned.
    """
    try:
        yield
    except bex.ClientError as exc:
        code, status = error_code(exc)
        if is_transient(exc):
            raise StoreUnavailable(_unavailable(action, where, f"{code or status}")) from exc
        if code == "NoSuchBucket":
            raise StorageError(
                f"{action} {where}: the bucket does not exist; create it or fix the s3:// URI"
            ) from exc
        if code in _DENIED_CODES or status == 403:
            raise StorageError(
                f"{action} {where}: the store refused access ({code or status}); check the "
                "credentials in the environment (AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY) and the bucket's policy"
            ) from exc
        message = exc.response.get("Error", {}).get("Message", "")
        raise StorageError(f"{action} {where} failed: {code or status} {message}".strip()) from exc
    except (bex.NoCredentialsError, bex.PartialCredentialsError) as exc:
        raise StorageError(
            f"{action} {where}: no AWS credentials; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, in the environment of every worker (never in the config)"
        ) from exc
    except S3DownloadFailedError as exc:
        if etag_mismatch(exc):  # rewritten while we read it: reading again gets one version
            raise StoreUnavailable(
                f"{where} was replaced while {action} it; run again to read the new version"
            ) from exc
        raise StorageError(f"{action} {where} failed: {exc}") from exc
    except (bex.BotoCoreError, RetriesExceededError) as exc:
        if is_transient(exc):
            raise StoreUnavailable(_unavailable(action, where, type(exc).__name__)) from exc
        raise StorageError(f"{action} {where} failed: {exc}") from exc


def _unavailable(action: str, where: str, reason: str) -> str:
    at = endpoint() or "AWS S3"
    return (
        f"the object store at {at} did not answer while {action} {where} ({reason}, after "
        "retries): check that it is up and that AWS_ENDPOINT_URL points at it, then run "
        "again; finished clips are kept in the bucket and not redone"
    )


class LazyClient:
    """A lazily made boto3 client that is dropped when pickled (Prefect, Dask)."""

    settings: S3Settings

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = make_client(self.settings)
            return self._client

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
