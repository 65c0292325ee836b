"""The per-submission pipeline's entry points; its stages are in :mod:`processing.clip`.

Each stage takes the previous stage's immutable value. One bad upload becomes
a rejected entry with its reason; it never stops the batch.
"""

from __future__ import annotations

from .clip.driver import (
    Progress,
    encodes_nothing,
    process_batch,
    process_safely,
    process_submission,
)
from .clip.intake import (
    ANONYMOUS,
    Copy,
    Submission,
    caption_spec,
    identify,
    merge,
    published_key,
    render_key,
    submission_id,
)
from .sequences import finish_batch

__all__ = [
    "ANONYMOUS", "Copy", "Progress", "Submission", "caption_spec", "encodes_nothing",
    "finish_batch", "identify",
    "merge", "process_batch", "process_safely", "process_submission", "published_key",
    "render_key", "submission_id",
]  # fmt: skip
