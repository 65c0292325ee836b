"""A photo upload made into the clip the stages read, and its EXIF searched for afterwards.

A submission whose upload is named like a photo (:func:`processing.photo.is_photo`)
is first made into a short zooming clip with its message
(:func:`processing.photo.photo_clip`, moviepy); the stages then inspect, plan
(the face mask included, when anonymity is asked), render, verify and measure
that clip like any video. The photo's EXIF never reaches the clip (only
pixels are composed), and the finished clip's bytes are searched for every
EXIF text value the photo carried, as the scrub check does for a video's tags.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .. import photo
from ..config import Config
from ..errors import Rejection
from ..probe import MediaInfo
from ..sidecar import Sidecar
from ..verify import scrub_check

#: The note on an accepted photo clip's entry.
NOTE = "made from a photo with a slow zoom (README: A photo instead of a video)"


def shown_message(sidecar: Sidecar) -> str | None:
    """The message drawn into a photo clip: none for an anonymous one, as on the compilation."""
    return None if sidecar.anonymize else sidecar.message


def key_part(sidecar: Sidecar) -> dict[str, object]:
    """What a photo clip's render depends on beyond the photo's bytes and the config."""
    return {"message": shown_message(sidecar), **photo.settings()}


@contextlib.contextmanager
def as_clip(
    upload: Path, sidecar: Sidecar, cfg: Config, workdir: Path, log_file: Path | None
) -> Iterator[tuple[Path, list[tuple[str, str]]]]:
    """The photo ``upload`` as a clip in a private folder of ``workdir`` (removed afterwards).

    Yields:
        The clip, and the photo's EXIF text values for :func:`check_scrubbed`.

    Raises:
        Rejection: The upload is not a readable JPEG, PNG or WebP.
    """
    exif = photo.exif_values(upload)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".photo-") as tmp:
        message = shown_message(sidecar)
        dst = Path(tmp) / "photo.mp4"
        yield photo.photo_clip(upload, dst, cfg, message=message, log_file=log_file), exif


def check_scrubbed(clip: Path, info: MediaInfo, exif: list[tuple[str, str]]) -> None:
    """Refuse a finished clip holding any of the photo's EXIF values (never expected).

    Raises:
        Rejection: A value was found; the tags are named, never their values.
    """
    if not exif:  # nothing the stages' own scrub check has not searched for already
        return
    problems = scrub_check(clip, info, exif)
    if problems:
        raise Rejection(
            "output_check_failed", "The rendered clip failed its checks: " + "; ".join(problems)
        )
