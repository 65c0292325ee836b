"""Parameter models: Prefect builds the UI forms staff fill in from these."""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import BaseModel, Field


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


class EditorDecision(RunInput):
    """The form editors fill in to resume a paused campaign run."""

    editor: str = Field(description="Your name; recorded with the decision.")
    include: list[str] = Field(
        description="Submission ids to put in the compilation, in order. Start from the "
        "list below and remove or reorder ids; the review page shows each clip."
    )
