"""Which files of an output the review app hands out, and how.

Only clips, the review page's pictures and the compilation's video, by a path
checked part by part (no ``..``, no hidden or odd names, a known folder and
suffix) and then resolved inside OUT, so a symlink cannot lead out either.
A local file is streamed with HTTP range requests (browsers seek in videos
that way); a bucket's file is a redirect to a short-lived presigned URL.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.responses import FileResponse, RedirectResponse, Response

from ..storage import Output

#: Top folder → suffixes served from it.
SERVED = {
    "clips": (".mp4",),
    "review": (".jpg",),
    "compilation": (".mp4",),
}
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg"}


def checked_key(rel: str) -> str | None:
    """``rel`` when it names a file the app may serve, else None."""
    parts = rel.split("/")
    if len(parts) < 2 or len(parts) > 4 or parts[0] not in SERVED:
        return None
    if not all(_PART.match(p) and ".." not in p for p in parts):
        return None
    return rel if rel.endswith(SERVED[parts[0]]) else None


def local_file(out: Path, rel: str) -> Path | None:
    """The file ``rel`` names inside ``out``, or None when it is not one (or leads outside)."""
    key = checked_key(rel)
    if key is None:
        return None
    root = out.resolve()
    path = (root / key).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def media_response(dest: Output, rel: str) -> Response | None:
    """The response serving ``rel`` of ``dest``; None when it may not be served or is missing."""
    if dest.remote and not rel.startswith("review/"):  # posters are made in the staging folder
        key = checked_key(rel)
        if key is None or not dest.exists(key):
            return None
        return RedirectResponse(dest.url_for(key), status_code=302)
    path = local_file(dest.root, rel)
    if path is None:
        return None
    # FileResponse answers Range requests with 206 and Content-Range.
    return FileResponse(
        path,
        media_type=_TYPES[path.suffix],
        headers={"cache-control": "private, max-age=300"},
    )
