"""What a contributor's consent allows: in the compilation, for review only, or nothing at all.

``"consent": true`` puts a rendered clip in the compilation; no consent
(missing, unreadable) keeps it out but rendered for the editors to review
(with ``compilation.require_consent``); ``"consent": false`` is a withdrawal:
nothing is rendered, and what an earlier run rendered of the submission (its
clip, audio master and record) is deleted here and from the output's store.
"""

from __future__ import annotations

from dataclasses import replace

from .clip.files import ClipFiles
from .clip.intake import Submission
from .config import Config
from .report import Entry
from .storage import Output

WITHDRAWN = "consent_withdrawn"


def apply_consent(entry: Entry, cfg: Config) -> Entry:
    """``entry``, excluded from the compilation when it has no ``consent: true`` and it must."""
    if cfg.compilation.require_consent and entry.consent is not True:
        return replace(
            entry,
            status="excluded",
            code="no_consent",
            reason='The sidecar does not say "consent": true, and compilation.require_consent '
            "is on: the clip is rendered for review but left out of the compilation.",
        )
    return entry


def withdrawn(sub: Submission) -> bool:
    """Whether the contributor said no (``"consent": false`` in any copy's sidecar)."""
    return sub.sidecar.consent is False


def withdraw(sub: Submission, files: ClipFiles, dest: Output) -> Entry:
    """The entry of a withdrawn submission, after deleting every render of it.

    Local files go first, then the store's copies (record first, so no worker
    reuses a clip that is being removed). Posters and the compilation follow
    when the review page is rebuilt (``sequences.review_page``).
    """
    files.discard()
    if dest.remote:
        dest.remove(files.withdrawn())
    return Entry(
        id=sub.id,
        source=sub.key,
        status="excluded",
        code=WITHDRAWN,
        reason='The contributor withdrew consent ("consent": false): nothing is rendered '
        "and earlier renders of this upload were deleted.",
        **sub.facts(),
        warnings=list(sub.warnings),
    )
