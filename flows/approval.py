"""The editors' approval step of ``remembrance-campaign``: wait, read, wait again if wrong.

The paused run's Resume form offers "use the decisions saved in the review app"
by default (what the review app's "Send the cut" sends), or the accepted clips
by name. An answer that cannot be compiled never fails the run: the run waits
again, its form saying why, under a fresh pause key (a fixed key would make a
later Retry of the run fail with 409 Conflict on the stored form).
"""

from __future__ import annotations

import time
from uuid import uuid4

from prefect import get_run_logger, pause_flow_run, task
from prefect.cache_policies import NO_CACHE

from processing import approval, publish, state
from processing.config import Config
from processing.report import Entry
from processing.storage import Output

from .artifacts import review_app_line
from .params import USE_SAVED, EditorDecision, decision_input
from .retries import transient

#: The shortest wait a pause gets, even when the approval time is nearly used up.
MIN_PAUSE_SECONDS = 60


@task(name="publish-decision", retry_condition_fn=transient, cache_policy=NO_CACHE)
def sync_decisions_task(dest: Output, upload: bool) -> None:
    """Publish the decisions (``upload``), or fetch what the review app saved."""
    if upload:
        dest.publish([publish.DECISIONS])
    else:
        dest.fetch([publish.DECISIONS], mirror=True)


def _md(text: str) -> str:
    """``text`` shown literally in the form's markdown (names are contributors' text)."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]<>()#+-.!|~" else c for c in text)


def decision_form(
    offered: list[approval.Choice], entries: list[Entry], cfg: Config, reason: str | None
) -> type[EditorDecision]:
    """The Resume form: the default, the clips by name, and why the run waits again."""
    by_id = {e.id: e for e in entries}
    rows = []
    for c in offered:
        e = by_id[c.id]
        flags = ", ".join(sorted(e.flags or {})) or "—"
        rows.append(f"| {_md(c.label)} | {e.duration or 0:.1f} s | {_md(flags)} |")
    lines = ["## Editors: choose the clips for the March 29 compilation", ""]
    if reason:
        lines += [f"**Your last answer was not used: {_md(reason)}.** The run waits again.", ""]
    lines += [
        f"Approve, reject and order the clips in the review app. {review_app_line(cfg)}",
        "",
        f"Then press **Submit** with **{USE_SAVED}** ticked. Or untick it and pick the "
        "clips below by name, in running order.",
        "",
        "| clip | duration | flags |",
        "|---|---|---|",
        *rows,
    ]
    return decision_input([c.label for c in offered], "\n".join(lines))


def await_decision(entries: list[Entry], dest: Output, cfg: Config) -> list[str]:
    """Pause until the editors send a usable decision; return the compilation's order.

    Raises:
        prefect.exceptions.FlowPauseTimeout: Nobody answered within
            ``orchestration.approval_timeout_hours`` (nothing is compiled).
    """
    logger = get_run_logger()
    offered = approval.choices(entries)
    deadline = time.monotonic() + cfg.orchestration.approval_timeout_hours * 3600
    reason: str | None = None
    while True:
        logger.info(
            "waiting for the editors' decision: resume this run from the review app's "
            "'Send the cut' or the Prefect UI (%d clips to choose from)",
            len(offered),
        )
        answer = pause_flow_run(
            wait_for_input=decision_form(offered, entries, cfg, reason),
            timeout=max(MIN_PAUSE_SECONDS, int(deadline - time.monotonic())),
            key=f"editor-approval-{uuid4().hex[:12]}",  # unique per pause, and per retry
        )
        try:
            with state.campaign_lock(dest, "editors' decision", cfg):
                sync_decisions_task(dest, upload=False)  # what the review app saved
                order = approval.settle(
                    dest.root,
                    offered,
                    use_saved=answer.use_saved,
                    clips=list(answer.clips),
                    editor=answer.editor,
                )
                if not answer.use_saved:
                    sync_decisions_task(dest, upload=True)
        except approval.ApprovalRefused as exc:
            reason = str(exc)
            logger.warning("the editors' answer was not used, waiting again: %s", reason)
            continue
        how = "the decisions saved in the review app" if answer.use_saved else "the Resume form"
        logger.info("compiling %d clips in the order from %s", len(order), how)
        return order
