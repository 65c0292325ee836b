"""Parameter models: Prefect builds the UI forms staff fill in from these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from prefect.input import RunInput
from pydantic import BaseModel, Field, create_model


class CompileParams(BaseModel):
    """Where the processed clips are."""

    out: str = Field(
        description="Output folder on the worker (or s3://bucket/prefix): clips/, "
        "report.json, review/ and compilation/ are written there."
    )
    config: str | None = Field(
        default=None,
        description="Path of a campaign TOML file on the worker; leave empty for the "
        "defaults (see `reel config`).",
    )


class BatchParams(CompileParams):
    """Where a run reads uploads and writes its results."""

    source: str = Field(
        description="Folder of uploads on the worker (or s3://bucket/prefix), "
        "each with an optional <name>.json sidecar."
    )
    dask_address: str | None = Field(
        default=None,
        description="Scheduler of an existing Dask cluster (tcp://HOST:PORT) to render the "
        "clips on; leave empty to render them in threads on this worker.",
    )


class CampaignParams(BatchParams):
    """The end-to-end campaign run."""

    approve_all: bool = Field(
        default=False,
        description="Skip the editors' approval step and compile every accepted clip in "
        "submission order (for unattended runs).",
    )


#: Title of the default the paused run offers (the review app resumes with it).
USE_SAVED = "Use the decisions saved in the review app"


class EditorDecision(RunInput):
    """The form editors fill in to resume a paused campaign run.

    Every field has a default, so resuming with no input at all (``{}``, what the
    review app's "Send the cut" sends) means "use the decisions saved in the
    review app".
    """

    use_saved: bool = Field(
        default=True,
        title=USE_SAVED,
        description="Leave ticked to compile what editors approved and ordered in the review "
        "app. Untick it to choose the clips below instead.",
    )
    clips: list[str] = Field(
        default_factory=list,
        title="Clips, in running order (only when the box above is unticked)",
        description="Add one item per clip, in the order they should play, with its name as "
        'the table above shows it (e.g. "1. Ana").',
    )
    editor: str = Field(
        default="",
        title="Your name",
        description="Recorded with a choice made here (the review app records its own editors).",
    )


def decision_input(labels: Sequence[str], description: str) -> type[EditorDecision]:
    """The form for one pause: ``clips`` offers exactly ``labels`` (a picker, nothing to type).

    Args:
        labels: The clips' names as :func:`processing.approval.choices` numbers them.
        description: Markdown shown above the form (the clips, links, why it waits again).
    """
    fields: dict[str, Any] = {}
    if labels:
        name = Literal.__getitem__(tuple(labels))  # an enum in the schema: the UI shows a list
        base = EditorDecision.model_fields["clips"]
        fields["clips"] = (
            list[name],  # type: ignore[valid-type]
            Field(default_factory=list, title=base.title, description=base.description),
        )
    model = create_model("EditorDecision", __base__=EditorDecision, **fields)
    model._description = description  # as RunInput.with_initial_data does
    return model
