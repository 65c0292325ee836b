"""One writer at a time per bucket output: a lease object taken with S3 conditional writes.

``<prefix>.reel-lease.json`` is created with ``If-None-Match: *`` (only one
creator wins), renewed and released with ``If-Match`` on the ETag the holder
last wrote (a holder that lost it learns so instead of overwriting the new
holder's lease). A lease not renewed for ``lease_seconds`` (its holder
crashed) is taken over, again with ``If-Match`` on the stale lease's ETag, so
two runs cannot both take over one stale lease. Expiry is judged on the
store's own clock (``Last-Modified`` against the answer's ``Date``): the
machines' clocks never need to agree.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore import exceptions as bex

from ..storage.s3client import error_code, shown, translated
from ..storage.s3output import S3Output
from .lock import POLL_SECONDS, StateLocked, describe, holder_info

log = logging.getLogger(__name__)

LEASE_NAME = ".reel-lease.json"


class BucketLease:
    """The lease on one bucket output while this process holds it."""

    def __init__(self, dest: S3Output, command: str, lease_seconds: float):
        self.dest = dest
        self.client = dest.client
        self.key = dest.prefix + LEASE_NAME
        self.where = shown(f"s3://{dest.bucket}/{self.key}")
        self.command = command
        self.lease_seconds = lease_seconds
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, wait_seconds: float) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for its holder to let go.

        Raises:
            StateLocked: Another run held it for all of ``wait_seconds``.
        """
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        told = False
        while True:
            if self._put(if_none_match=True):
                break
            current = self._read()
            if current is None:
                continue  # released between our two requests: try to create again
            info, etag, age = current
            if age > _declared(info, self.lease_seconds) and self._put(if_match=etag):
                log.warning(
                    "took over the lease of %s: not renewed for %.0f s", describe(info), age
                )
                break
            if time.monotonic() >= deadline:
                raise StateLocked(
                    f"{self.dest.uri} is in use by {describe(info)}; waited {wait_seconds:g} s "
                    "(orchestration.lock_wait_seconds): run again when it has finished"
                )
            if not told:
                log.warning("%s is in use by %s: waiting", self.dest.uri, describe(info))
                told = True
            time.sleep(POLL_SECONDS)
        self._renewer = threading.Thread(target=self._renew, name="reel-lease", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.etag is None or self.lost:
            return
        with translated("releasing", self.where):
            try:
                self.client.delete_object(Bucket=self.dest.bucket, Key=self.key, IfMatch=self.etag)
            except bex.ClientError as exc:
                if error_code(exc)[1] not in (404, 409, 412):  # gone or taken over: not ours
                    raise

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                if not self._put(if_match=self.etag):
                    self.lost = True
                    log.error("lost the lease on %s: another run took it over", self.dest.uri)
                    return
            except Exception as exc:  # a blip: the next renewal may get through
                log.warning("could not renew the lease on %s: %s", self.dest.uri, exc)

    def _put(self, *, if_none_match: bool = False, if_match: str | None = None) -> bool:
        """Write our lease conditionally; False when the condition failed (412 or 409)."""
        body = {
            **holder_info(self.command),
            "lease_seconds": self.lease_seconds,  # how long others wait before taking over
            "token": uuid.uuid4().hex,
        }
        args: dict[str, Any] = {
            "Bucket": self.dest.bucket,
            "Key": self.key,
            "Body": json.dumps(body).encode(),
            "ContentType": "application/json",
            "CacheControl": "no-cache",
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        with translated("taking the lease", self.where):
            try:
                response = self.client.put_object(**args)
            except bex.ClientError as exc:
                # 412: the condition failed; 409: a concurrent conditional write won.
                if error_code(exc)[1] in (409, 412):
                    return False
                raise
        self.etag = str(response["ETag"])
        return True

    def _read(self) -> tuple[dict[str, Any], str, float] | None:
        """The current lease, its ETag and its age on the store's clock; None if gone."""
        with translated("reading the lease", self.where):
            try:
                response = self.client.get_object(Bucket=self.dest.bucket, Key=self.key)
            except bex.ClientError as exc:
                if error_code(exc)[1] == 404:
                    return None
                raise
            raw = response["Body"].read(4096)
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        modified: datetime = response["LastModified"]
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else datetime.now(modified.tzinfo)
        age = (now - modified).total_seconds()
        return (info if isinstance(info, dict) else {}), str(response["ETag"]), age


def _declared(info: dict[str, Any], default: float) -> float:
    """The lease length its holder declared (it renews at a third of it)."""
    value = info.get("lease_seconds")
    return float(value) if isinstance(value, int | float) and value > 0 else default


@contextlib.contextmanager
def bucket_lease(
    dest: S3Output, command: str, wait_seconds: float, lease_seconds: float
) -> Iterator[BucketLease]:
    """Hold the lease on ``dest`` while the block runs.

    Raises:
        StateLocked: Another run holds it (on entry), or took it over from a
            run that stopped renewing (on exit: what this run wrote may have
            raced the other run; run again).
    """
    lease = BucketLease(dest, command, lease_seconds)
    lease.acquire(wait_seconds)
    try:
        yield lease
    finally:
        lease.release()
    if lease.lost:
        raise StateLocked(
            f"{dest.uri}: this run lost its lease to another run (it was not renewed for "
            f"{lease_seconds:g} s, orchestration.lease_seconds); run again"
        )
