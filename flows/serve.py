"""``reel serve``: the deployments staff run from the Prefect UI, and the schedules."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import serve
from prefect.schedules import Cron

from processing.config import Config, load_config
from processing.errors import ReelError

from .campaign import process_submissions, remembrance_campaign


def deployments(cfg: Config, config_path: Path | None) -> list[Any]:
    """On-demand processing and campaign runs; nightly processing and the March 29 build
    when ``[schedules] source`` and ``out`` are set."""
    found = [
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
    ]
    return found + (_scheduled(cfg, config_path) if scheduled(cfg) else [])


def scheduled(cfg: Config) -> bool:
    """Whether the schedules have somewhere to read and write (config validation made
    both absolute or s3://)."""
    return bool(cfg.schedules.source and cfg.schedules.out)


def _scheduled(cfg: Config, config_path: Path | None) -> list[Any]:
    s = cfg.schedules
    config = str(config_path.resolve()) if config_path else None
    batch = {"params": {"source": s.source, "out": s.out, "config": config}}
    campaign = {"params": {**batch["params"], "approve_all": False}}
    return [
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


def next_run(cron: str, timezone: str, after: datetime | None = None) -> datetime:
    """When ``cron`` next fires at or after ``after`` (now if None), in ``timezone``.

    Computed by the same schedule code the Prefect server's scheduler uses, so
    what ``reel serve`` prints is what the server will create.
    """
    from prefect.server.schemas.schedules import CronSchedule

    schedule = CronSchedule(cron=cron, timezone=timezone)
    dates = asyncio.run(schedule.get_dates(n=1, start=after))
    return dates[0]


def schedule_lines(cfg: Config, after: datetime | None = None) -> list[str]:
    """One line per scheduled deployment: its cron, timezone and next run (or why none)."""
    s = cfg.schedules
    if not scheduled(cfg):
        return [
            "schedules off: set [schedules] source and out (absolute folders or s3://) in "
            "the --config file to process nightly and build the March 29 compilation"
        ]
    lines = []
    for name, cron in (
        ("process-submissions/nightly", s.nightly_cron),
        ("remembrance-campaign/march-29", s.compilation_cron),
    ):
        when = next_run(cron, s.timezone, after)
        lines.append(f"{name}: next run {when:%Y-%m-%d %H:%M %Z} ({s.timezone}; cron {cron!r})")
    return lines


def wait_for_server(wait_seconds: float) -> str:
    """The Prefect API URL, once its server answers (waiting while it starts).

    Raises:
        ReelError: No API URL is set, or the server did not answer in time.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ReelError(
            "no Prefect server to serve to: start one with `make ui`, then run `make serve` "
            "(or set PREFECT_API_URL=http://127.0.0.1:4200/api)"
        )
    deadline = time.monotonic() + wait_seconds
    said = False
    while True:
        try:
            if httpx.get(f"{url.rstrip('/')}/health", timeout=5).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise ReelError(
                f"the Prefect server at {url} does not answer: start it with `make ui` "
                "(or point PREFECT_API_URL at its /api address) and run `reel serve` again"
            )
        if not said:
            print(f"waiting for the Prefect server at {url} ...", flush=True)
            said = True
        time.sleep(1)


def serve_deployments(config_path: Path | None, wait_seconds: float = 60) -> None:
    """Register the deployments with the Prefect server and run what it schedules."""
    cfg = load_config(config_path)
    wait_for_server(wait_seconds)
    for line in schedule_lines(cfg):
        print(line, flush=True)
    serve(*deployments(cfg, config_path), limit=cfg.orchestration.max_parallel_encodes + 2)
