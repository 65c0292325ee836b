"""``reel serve``: the deployments staff run from the Prefect UI, and the schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import serve
from prefect.schedules import Cron

from processing.config import Config, load_config

from .campaign import process_submissions, remembrance_campaign


def deployments(cfg: Config, config_path: Path | None) -> list[Any]:
    """On-demand processing and campaign runs, nightly processing, the March 29 build."""
    s = cfg.schedules
    config = str(config_path.resolve()) if config_path else None
    batch = {"params": {"source": s.source, "out": s.out, "config": config}}
    campaign = {"params": {**batch["params"], "approve_all": False}}
    return [
        process_submissions.to_deployment(
            name="on-demand",
            description="Process a folder of uploads now: fill in the form and press Run.",
            tags=["supportreel"],
        ),
        remembrance_campaign.to_deployment(
            name="on-demand",
            description="Process, pause for the editors' decision, then compile.",
            tags=["supportreel"],
        ),
        process_submissions.to_deployment(
            name="nightly",
            description=f"Process new uploads in {s.source} every night.",
            schedules=[Cron(s.nightly_cron, timezone=s.timezone)],
            parameters=batch,
            tags=["supportreel", "scheduled"],
        ),
        remembrance_campaign.to_deployment(
            name="march-29",
            description="Build the remembrance compilation ahead of March 29 "
            "(pauses for the editors' approval).",
            schedules=[Cron(s.compilation_cron, timezone=s.timezone)],
            parameters=campaign,
            tags=["supportreel", "scheduled"],
        ),
    ]


def serve_deployments(config_path: Path | None) -> None:
    """Register the deployments with the Prefect server and run what it schedules."""
    cfg = load_config(config_path)
    serve(*deployments(cfg, config_path), limit=cfg.orchestration.max_parallel_encodes + 2)
