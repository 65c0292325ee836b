"""The ``s3://`` uploads target: bytes go from the phone straight to the bucket.

The browser (Uppy's ``@uppy/aws-s3``) sends the video as an S3 multipart
upload, each request presigned here for a few minutes and only for this
upload's own staging key; the app never handles the video's bytes. Layout
under the uploads prefix (``upload.target``)::

    web/<id>/<id>.<ext>           the video, extension from its bytes (:mod:`.sniff`)
    web/<id>/<id>.json            its sidecar (:mod:`processing.sidecar` reads it)
    .reel-upload/tickets/<h>.json a started upload's form and part plan
    .reel-upload/staging/<h>      the multipart upload while its bytes arrive
    .reel-upload/links/<h>.json   private links: SHA-256 of the token -> upload id

``reel process`` never lists a ``.name/`` folder (:class:`~processing.storage.s3source.S3Source`),
so nothing in staging is ever processed. On completion the staging object's
size (HEAD) and first bytes (a ranged GET) are checked; only then is the
sidecar written and the video copied beside it, in that order. The pipeline
skips a ``.json`` without a video (a lone sidecar is never an upload), and the
two keys are adjacent in listing order with the sidecar written first, so a
listing that shows the video also shows its sidecar, across pages too.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore import exceptions as bex

from ..storage.s3client import MIB, S3Settings, error_code, make_client, parse_uri
from .sniff import NEEDED, container
from .store import WEB, WORK, Stats, UnknownLink, _digest, _now, changed

#: S3's smallest part (all but the last) and its largest part count.
MIN_PART = 5 * MIB
MAX_PARTS = 10000
_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "3gp": "video/3gpp",
          "webm": "video/webm", "mkv": "video/x-matroska", "avi": "video/x-msvideo",
          "ts": "video/mp2t"}  # fmt: skip


class Refused(Exception):
    """A request the store will not carry out: ``status`` and a page message ``code``."""

    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status, self.code = status, code


def part_size(size: int, wanted: int) -> int:
    """The part size for ``size`` bytes: ``wanted``, at least S3's minimum, at most 10,000 parts.

    The page's Uppy makes the same choice (``getChunkSize``, then its own
    minimum and part-count rules), so part N has the length signed for it.
    """
    chunk = max(wanted, MIN_PART)
    return max(chunk, math.ceil(size / MAX_PARTS))


class S3Store:
    """Uploads into ``s3://bucket/prefix`` through presigned multipart requests."""

    def __init__(self, uri: str, settings: S3Settings, *, max_bytes: int, presign_seconds: int):
        self.bucket, self.prefix = parse_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self.client = make_client(settings)
        self.settings = settings
        self.max_bytes = max_bytes
        self.presign_seconds = presign_seconds
        self.work = f"{self.prefix}{WORK}/"
        self._lock = threading.Lock()
        self._finishing = threading.Lock()

    def origin(self) -> str:
        """``scheme://host[:port]`` the browser sends the bytes to (for the CSP's connect-src)."""
        url: str = self.client.generate_presigned_url(
            "head_object", Params={"Bucket": self.bucket, "Key": self.work + "x"}, ExpiresIn=60
        )
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"

    # ---------------------------------------------------------------- tickets

    def start(self, sidecar: dict[str, Any], size: int, wanted_part: int) -> tuple[str, str, int]:
        """Record a started upload's form and part plan; returns ticket, link token, part size."""
        ticket, link = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        part = part_size(size, wanted_part)
        body = {
            "sidecar": sidecar,
            "link": _digest(link),
            "started": _now(),
            "size": size,
            "part": part,
            "staging": f"{self.work}staging/{_digest(ticket)[:40]}",
            "upload_id": None,
        }
        self._put_json(self._ticket_key(ticket), body)
        return ticket, link, part

    def forget(self, ticket: str) -> None:
        """Drop a refused upload: its staging bytes, open multipart uploads and its ticket."""
        try:
            body = self._ticket(ticket)
        except UnknownLink:
            return
        self._discard(body["staging"])
        self.client.delete_object(Bucket=self.bucket, Key=self._ticket_key(ticket))

    def _ticket_key(self, ticket: str) -> str:
        return f"{self.work}tickets/{_digest(ticket)}.json"

    def _ticket(self, ticket: str) -> dict[str, Any]:
        body = self._get_json(self._ticket_key(ticket)) if ticket else None
        if not isinstance(body, dict):
            raise UnknownLink("unknown ticket")
        return body

    # ---------------------------------------------------------------- signing

    def sign(self, ticket: str, method: str, upload_id: str | None, part: int | None) -> str:
        """A presigned URL for one S3 request of this ticket's multipart upload.

        Only this upload's staging key, only the five requests a multipart
        upload needs, part numbers within the plan, and each part's exact
        length signed as its ``Content-Length``.

        Raises:
            UnknownLink: The ticket is unknown.
            Refused: Any other request.
        """
        body = self._ticket(ticket)
        key: str = body["staging"]
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if method == "POST" and not upload_id:
            if body.get("upload_id"):
                raise Refused(403, "bad_token")  # one multipart upload per ticket
            return self._presign("create_multipart_upload", params)
        if not upload_id or upload_id != self._upload_id(ticket, body, upload_id):
            raise Refused(403, "bad_token")
        params["UploadId"] = upload_id
        if method == "PUT":
            count = math.ceil(body["size"] / body["part"])
            if not isinstance(part, int) or not 1 <= part <= count:
                raise Refused(413, "too_large")
            length = min(body["part"], body["size"] - (part - 1) * body["part"])
            params.update(PartNumber=part, ContentLength=length)
            return self._presign("upload_part", params)
        # No ListParts: the app lists the parts itself (:meth:`parts`).
        operation = {"POST": "complete_multipart_upload", "DELETE": "abort_multipart_upload"}.get(
            method
        )
        if operation is None:
            raise Refused(405, "failed")
        return self._presign(operation, params)

    def parts(self, ticket: str) -> list[dict[str, Any]]:
        """The parts the bucket holds for this ticket's upload that have their planned length.

        The page resumes from this list (``ListParts`` answered by the app, not
        presigned: the app's own client reads any S3 store's answer, and a part
        of the wrong length is left out, so it is sent again).

        Raises:
            UnknownLink: The ticket is unknown.
        """
        body = self._ticket(ticket)
        if not body.get("upload_id"):
            return []
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=body["staging"], UploadId=body["upload_id"]
        )
        size, part = body["size"], body["part"]
        return [
            p
            for page in pages
            for p in page.get("Parts", [])
            if p["Size"] == min(part, size - (p["PartNumber"] - 1) * part)
        ]

    def _upload_id(self, ticket: str, body: dict[str, Any], asked: str) -> str | None:
        """The multipart upload of this ticket: the first one seen on its staging key, kept."""
        if body.get("upload_id"):
            return str(body["upload_id"])
        open_ids = {u["UploadId"] for u in self._open_uploads(body["staging"])}
        if asked not in open_ids:
            return None
        with self._lock:
            body["upload_id"] = asked
            self._put_json(self._ticket_key(ticket), body)
        return asked

    def _presign(self, operation: str, params: dict[str, Any]) -> str:
        url: str = self.client.generate_presigned_url(
            operation, Params=params, ExpiresIn=self.presign_seconds
        )
        return url

    # ---------------------------------------------------------------- finishing

    def finish(self, ticket: str) -> str:
        """Check a completed upload and publish it with its sidecar; returns its id.

        Raises:
            UnknownLink: The ticket is unknown (used already, or never issued).
            Refused: Not complete (409), too large or not the declared size
                (413), not a video (415); a refused object is deleted.
        """
        with self._finishing:  # one ticket is never published twice
            return self._finish(ticket, self._ticket(ticket))

    def _finish(self, ticket: str, body: dict[str, Any]) -> str:
        staging: str = body["staging"]
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=staging)
        except bex.ClientError as exc:
            if error_code(exc)[1] == 404:
                raise Refused(409, "failed") from None
            raise
        size = int(head["ContentLength"])
        if size > self.max_bytes or size != body["size"]:
            self.forget(ticket)
            raise Refused(413, "too_large")
        first = self.client.get_object(
            Bucket=self.bucket, Key=staging, Range=f"bytes=0-{NEEDED - 1}", IfMatch=head["ETag"]
        )["Body"].read(NEEDED)
        ext = container(first)
        if ext is None:
            self.forget(ticket)
            raise Refused(415, "not_video")
        uid = secrets.token_hex(8)
        base = f"{self.prefix}{WEB}/{uid}/{uid}"
        # Sidecar first: alone it is never an upload; the video never appears without it.
        self._put_json(base + ".json", body["sidecar"])
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": staging},
                self.bucket,
                f"{base}.{ext}",
                ExtraArgs={
                    "ContentType": _TYPES[ext],
                    "MetadataDirective": "REPLACE",
                    "CopySourceIfMatch": head["ETag"],
                },
                Config=TransferConfig(
                    multipart_threshold=self.settings.multipart_bytes,
                    multipart_chunksize=self.settings.multipart_bytes,
                    max_concurrency=self.settings.concurrency,
                ),
            )
        except Exception:
            self.client.delete_object(Bucket=self.bucket, Key=base + ".json")
            raise
        self._put_json(f"{self.work}links/{body['link']}.json", {"id": uid})
        self.forget(ticket)
        return uid

    def _discard(self, staging: str) -> int:
        """Abort the multipart uploads on ``staging`` and delete it; returns how many were open."""
        uploads = self._open_uploads(staging)
        for upload in uploads:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        self.client.delete_object(Bucket=self.bucket, Key=staging)
        return len(uploads)

    def _open_uploads(self, prefix: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [u for page in pages for u in page.get("Uploads", [])]

    # ---------------------------------------------------------------- private links

    def upload_of(self, token: str) -> str:
        """The id of the finished upload a private link token belongs to.

        Raises:
            UnknownLink: No finished upload has this token.
        """
        link = self._get_json(f"{self.work}links/{_digest(token)}.json")
        if not isinstance(link, dict) or not isinstance(link.get("id"), str):
            raise UnknownLink("unknown link")
        return link["id"]

    def sidecar(self, token: str) -> dict[str, Any]:
        uid = self.upload_of(token)
        data = self._get_json(f"{self.prefix}{WEB}/{uid}/{uid}.json")
        if not isinstance(data, dict):
            raise UnknownLink("upload no longer here")
        return data

    def change(self, token: str, what: str) -> dict[str, Any]:
        """Apply ``withdraw`` or ``hide`` to the sidecar (one PUT replaces it whole)."""
        uid = self.upload_of(token)
        with self._lock:
            data = self.sidecar(token)
            changed(data, what)
            self._put_json(f"{self.prefix}{WEB}/{uid}/{uid}.json", data)
        return data

    # ---------------------------------------------------------------- housekeeping

    def sweep(self, max_age_seconds: float) -> int:
        """Delete forms started longer ago than this, with their parts; abort orphans.

        An abandoned upload's parts are stored (and billed) until aborted and
        hold the phone's location tags; its ticket holds what was typed. Age
        is taken from the ticket (some stores, moto among them, report no real
        ``Initiated`` time); a multipart upload or staging object whose ticket
        is gone can never be finished and is removed whatever its age.

        Returns:
            How many tickets, multipart uploads and staging objects were removed.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=max_age_seconds)
        removed, live = 0, set()
        for obj in self._objects(self.work + "tickets/"):
            body = self._get_json(obj["Key"])
            started = _started(body) or obj["LastModified"]
            if isinstance(body, dict) and started >= cutoff:
                live.add(body.get("staging"))
                continue
            if isinstance(body, dict) and isinstance(body.get("staging"), str):
                removed += self._discard(body["staging"])
            self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
            removed += 1
        for upload in self._open_uploads(self.work + "staging/"):
            if upload["Key"] not in live:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        for obj in self._objects(self.work + "staging/"):
            if obj["Key"] not in live:
                self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
                removed += 1
        return removed

    def stats(self) -> Stats:
        """How many uploads arrived through the page, and when the last one did."""
        videos = [
            o for o in self._objects(f"{self.prefix}{WEB}/") if not o["Key"].endswith(".json")
        ]
        last = max((o["LastModified"] for o in videos), default=None)
        return Stats(len(videos), last)

    # ---------------------------------------------------------------- helpers

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [o for page in pages for o in page.get("Contents", [])]

    def _get_json(self, key: str) -> Any:
        try:
            raw = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read(1 << 20)
        except bex.ClientError as exc:
            if error_code(exc)[1] == 404:
                return None
            raise
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _put_json(self, key: str, data: Any) -> None:
        # One PUT: S3 shows the old object or the new one, never a part of either.
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"),
            ContentType="application/json",
            CacheControl="no-cache",
        )


def _started(body: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(body["started"])
    except (TypeError, KeyError, ValueError):
        return None
