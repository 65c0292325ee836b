"""What a contributor's consent allows: in the compilation, for review only, or nothing at all.

``"consent": true`` puts a rendered clip in the compilation; no consent
(missing, unreadable) keeps it out but rendered for the editors to review
(with ``compilation.require_consent``); ``"consent": false`` is a withdrawal:
nothing is rendered, and what an earlier run rendered of the submission (its
clip, audio master and record) is deleted here and from the output's store.
"""

from __future__ import annotations

from pathlib import Path

from . import publish
from .config import Config
from .normalize import master_path
from .report import Entry
from .storage import Output
from .submissions import Submission

WITHDRAWN = "consent_withdrawn"


def apply_consent(entry: Entry, cfg: Config) -> Entry:
    """Rendered clips without ``consent: true`` are kept out of the compilation."""
    if cfg.compilation.require_consent and entry.consent is not True:
        entry.status = "excluded"
        entry.code = "no_consent"
        entry.reason = (
            'The sidecar does not say "consent": true, and compilation.require_consent '
            "is on: the clip is rendered for review but left out of the compilation."
        )
    return entry


def withdrawn(sub: Submission) -> bool:
    """Whether the contributor said no (``"consent": false`` in any copy's sidecar)."""
    return sub.sidecar.consent is False


def withdraw(sub: Submission, out: Path, dest: Output, key: str) -> Entry:
    """The entry of a withdrawn submission, after deleting every render of it.

    Local files go first, then the store's copies (record first, so no worker
    reuses a clip that is being removed). Posters and the compilation follow
    when the review page is rebuilt (``publish.review_page``).
    """
    clip = out / "clips" / f"{sub.id}.mp4"
    for path in (clip.with_suffix(".json"), clip, master_path(clip)):
        path.unlink(missing_ok=True)
    if dest.remote:
        dest.remove([publish.record_of(sub.id), publish.clip_of(sub.id), publish.master_of(sub.id)])
    entry = Entry(
        id=sub.id,
        source=key,
        status="excluded",
        code=WITHDRAWN,
        reason='The contributor withdrew consent ("consent": false): nothing is rendered '
        "and earlier renders of this upload were deleted.",
    )
    entry.attach(sub)
    entry.warnings = list(sub.warnings)
    return entry
