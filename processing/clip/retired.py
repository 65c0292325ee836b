"""A submission whose original retention deleted, when its render no longer fits."""

from __future__ import annotations

from .. import state
from ..report import Entry
from ..retention import GONE
from ..storage import Output
from .files import ClipFiles
from .intake import Submission


def unservable(sub: Submission, files: ClipFiles, dest: Output) -> Entry:
    """The entry of a retired submission whose existing render no longer fits: excluded.

    When the sidecar now asks for anonymity and the render is not anonymized,
    that render is deleted too (here and in the store): it shows what the
    contributor asked to hide.
    """
    record = state.read_record(files.out, sub.id) or {}
    if sub.sidecar.anonymize and not record.get("anonymize"):
        files.discard()
        if dest.remote:
            dest.remove(files.withdrawn())
        why = (
            "the contributor asked for anonymity after it was deleted, so its earlier "
            "render (not anonymized) was deleted too"
        )
    else:
        why = "the clip would have to be rendered again (the sidecar or the settings changed)"
    return Entry(
        id=sub.id,
        source=sub.key,
        status="excluded",
        code=GONE,
        reason=f"The original upload was deleted (upload.keep_originals_days) and {why}: "
        "it is left out. Ask the contributor to upload the video again.",
        **sub.facts(),
        warnings=list(sub.warnings),
    )
