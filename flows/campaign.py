"""The Prefect flows: process submissions, build the compilation, run the campaign.

Flows are thin: each task wraps one ``processing`` call and adds what
orchestration needs (caching keys, retries for storage, a concurrency slot,
artifacts, log summaries).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Flow, flow, get_run_logger, pause_flow_run, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.futures import as_completed
from prefect.states import State
from prefect.tasks import Task

from processing import publish, runner, state
from processing.assemble import compile_remembrance
from processing.config import Config, load_config
from processing.decisions import compile_order
from processing.pipeline import Submission, finish_batch, identify, process_safely, published_key
from processing.report import Entry
from processing.storage import (
    Output,
    Source,
    check_separate,
    display_key,
    open_output,
    open_source,
)
from processing.storage.s3client import is_transient
from processing.timeline import Compilation

from . import artifacts, scale
from .params import BatchParams, CampaignParams, CompileParams, EditorDecision

P = ParamSpec("P")
R = TypeVar("R")

#: Global concurrency limit bounding simultaneous encodes on every worker.
ENCODE_LIMIT = "supportreel-encodes"


def _transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry storage and network failures only; a bad upload is never retried.

    S3 throttling, 5xx answers, timeouts and dropped connections count (boto3's
    own errors too, should one escape translation); a refused request (no such
    bucket, access denied) does not.
    """
    try:
        state.result()
    except (OSError, ConnectionError, TimeoutError):
        return True
    except Exception as exc:
        return is_transient(exc)
    return False


def _submission_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Everything the entry depends on, while the rendered clip is the same file.

    :func:`published_key` covers the content, every copy's sidecar (consent,
    anonymity, name, message, language) and every setting (``require_consent``
    too); the decisions in force and the clip file's ``[size, mtime_ns]`` are
    added, so a withdrawn consent, a new decision or a clip replaced on disk
    never returns an old result (the clip itself is still reused from its
    record when only consent changed).

    Not for a bucket: there its clip records are the cache every worker shares,
    and a task result kept on one machine would not know a clip went missing.
    """
    sub: Submission = parameters["sub"]
    dest: Output = parameters["dest"]
    signature = state.file_signature(dest.root / "clips" / f"{sub.id}.mp4")
    if dest.remote or signature is None:
        return None
    try:
        decisions = (dest.root / state.DECISIONS).read_bytes()
    except FileNotFoundError:
        decisions = b""
    local = hashlib.sha256(json.dumps(signature).encode() + decisions).hexdigest()[:16]
    return f"submission-{sub.id}-{published_key(sub, parameters['cfg'])}-{local}"


@task(name="list-and-identify", retry_condition_fn=_transient)
def identify_task(
    source: Source, cfg: Config, workdir: Path
) -> tuple[list[Submission], list[Entry]]:
    return identify(source, source.list_uploads(), cfg, workdir)


@task(
    name="process-submission",
    task_run_name="process {sub.id}",
    cache_key_fn=_submission_cache_key,
    persist_result=True,
    retry_condition_fn=_transient,
)
def process_task(sub: Submission, source: Source, dest: Output, cfg: Config) -> Entry:
    """Render one submission and publish it (the same machine has the files)."""
    logger = get_run_logger()
    out = dest.root
    slot = scale.encode_slot(cfg, ENCODE_LIMIT)  # taken only when a clip is rendered
    entry = process_safely(sub, source, out, cfg, out / ".work", dest=dest, slot=slot)
    key = display_key(sub.upload.key)
    if entry.status == "rejected":
        logger.warning("rejected %s: %s", key, entry.reason)
    else:
        logger.info(
            "%s %s in %.1f s (%s LUFS); full ffmpeg log: logs/%s.log",
            entry.status, key, entry.seconds or 0, entry.output_i, entry.id,
        )  # fmt: skip
    return entry


@task(name="write-report", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def finish_task(dest: Output, source_uri: str, cfg: Config, entries: list[Entry]) -> Path:
    return finish_batch(dest.root, source_uri, cfg, entries, dest=dest)


@task(name="fetch-for-compilation", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def stage_compile_task(
    dest: Output, cfg: Config, order: list[str] | None, approve_all: bool
) -> tuple[list[str] | None, list[str]]:
    """Fetch the report and decisions, settle the order (editors' decisions stand), fetch clips."""
    publish.stage_report(dest)
    notes: list[str] = []
    if order is None:
        order, notes = compile_order(dest.root, approve_all=approve_all)
    publish.stage_for_compile(dest, cfg, order)
    return order, notes


@task(name="publish-compilation", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def publish_compile_task(dest: Output, comp: Compilation) -> None:
    publish.publish_compilation(dest, comp)


@task(name="publish-decision", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def sync_decisions_task(dest: Output, upload: bool) -> None:
    if upload:
        dest.publish([publish.DECISIONS])
    else:
        dest.fetch([publish.DECISIONS], mirror=True)


def ensure_encode_limit(cfg: Config) -> None:
    """Create or update the global concurrency limit from the config."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            ENCODE_LIMIT, cfg.orchestration.max_parallel_encodes
        )


def _configured(cfg: Config) -> None:
    retries = cfg.orchestration.storage_retries
    delay = cfg.orchestration.storage_retry_delay_seconds
    storage_tasks = (
        identify_task, process_task, finish_task, stage_compile_task, publish_compile_task,
        sync_decisions_task,
    )  # fmt: skip
    for t in storage_tasks:
        t.retries = retries
        t.retry_delay_seconds = delay  # type: ignore[assignment]


@flow(name="process-submissions", log_prints=True)
def process_submissions(params: BatchParams) -> list[Entry]:
    """Health-check, normalize and caption every upload into the output folder."""
    source, out = params.source, params.out
    runner.require_tools()
    cfg = load_config(Path(params.config) if params.config else None)
    _configured(cfg)
    ensure_encode_limit(cfg)
    src = open_source(source, ignore=cfg.ingest.ignore, cfg=cfg)
    dest = open_output(out, cfg)
    check_separate(src, dest)
    with state.campaign_lock(dest, "process-submissions flow", cfg):
        return _process_all(src, dest, cfg)


def _process_all(src: Source, dest: Output, cfg: Config) -> list[Entry]:
    """The body of :func:`process_submissions`, run while it holds the output."""
    out_dir = dest.root
    work = out_dir / ".work"
    work.mkdir(parents=True, exist_ok=True)
    subs, entries = identify_task(src, cfg, work)
    progress = artifacts.ProgressArtifact(len(subs), f"Rendering {len(subs)} submissions")
    task = process_task.with_options(result_storage=out_dir / ".prefect" / "results")
    futures = [task.submit(sub, src, dest, cfg) for sub in subs]
    for _ in as_completed(futures):
        progress.advance()
    entries += [f.result() for f in futures]
    finish_task(dest, src.uri, cfg, entries)
    artifacts.submissions_table(entries)
    artifacts.run_summary(entries, dest, src.uri)
    artifacts.links(dest)
    return entries


@flow(name="build-compilation", log_prints=True)
def build_compilation(
    params: CompileParams, order: list[str] | None = None, approve_all: bool = False
) -> str:
    """Assemble the remembrance compilation from the accepted clips (stream copy).

    Args:
        params: Where the processed clips are, and the campaign settings.
        order: Submission ids in the editors' order; empty for the decisions
            recorded (``reel review apply``), or every accepted clip if none were.
        approve_all: With no ``order``, also take every accepted clip nobody
            decided on; a recorded rejection still stands.
    """
    out, config = params.out, params.config
    cfg = load_config(Path(config) if config else None)
    _configured(cfg)
    dest = open_output(out, cfg)
    with state.campaign_lock(dest, "build-compilation flow", cfg):
        return _compile(dest, cfg, order, approve_all)


def _compile(dest: Output, cfg: Config, order: list[str] | None, approve_all: bool) -> str:
    """The body of :func:`build_compilation`, run while it holds the output."""
    order, notes = stage_compile_task(dest, cfg, order, approve_all)
    for note in notes:
        get_run_logger().warning(note)
    comp = compile_remembrance(dest.root, cfg, order=order)
    publish.review_page(dest)
    publish_compile_task(dest, comp)
    clips = sum(s.kind == "clip" for s in comp.segments)
    get_run_logger().info(
        "%s: %d clips, %.1f s, %d left out", comp.output, clips, comp.duration, len(comp.left_out)
    )
    chapters = "\n".join(f"- `{s.start:7.2f} s` {s.label}" for s in comp.segments)
    artifacts.create_markdown_artifact(
        markdown=f"# {comp.output.name}\n\n{clips} clips, {comp.duration:.1f} s\n\n{chapters}",
        key="compilation-summary",
    )
    published = comp.output.relative_to(dest.root).as_posix()
    artifacts.links(dest, published)
    return dest.location(published)


def with_task_runner(f: Flow[P, R], dask_address: str | None) -> Flow[P, R]:
    """``f`` running its tasks on the Dask cluster at ``dask_address`` (threads if None)."""
    if not dask_address:
        return f
    return f.with_options(task_runner=scale.task_runner(dask_address))


def decision_form(entries: list[Entry], page: str) -> type[EditorDecision]:
    """The approval form, prefilled with every accepted clip in submission order.

    Args:
        entries: The processed submissions.
        page: Link to the review page (a presigned URL on S3).
    """
    accepted = sorted(
        (e for e in entries if e.status == "accepted"), key=lambda e: (e.submitted_at or "", e.id)
    )
    rows = "\n".join(f"| `{e.id}` | {e.name or '—'} | {e.source} |" for e in accepted)
    description = (
        "## Editors: choose the clips for the March 29 compilation\n\n"
        f"Watch every clip on the [review page]({page}), then keep, remove or reorder "
        "the ids below and press **Submit**.\n\n| id | name | upload |\n|---|---|---|\n"
        f"{rows}"
    )
    return EditorDecision.with_initial_data(
        description=description, editor="", include=[e.id for e in accepted]
    )


def record_decision(out: Path, decision: EditorDecision, entries: list[Entry]) -> list[str]:
    """Record the form's decision as ``reel review apply`` does; return the order.

    Accepted clips the editors left out of the list are recorded as rejected.

    Raises:
        DecisionsError: The form named ids that are not clips of this batch.
    """
    from processing.decisions import VERSION, apply_decisions

    order = list(dict.fromkeys(decision.include))
    accepted = [e.id for e in entries if e.status == "accepted"]
    choices = {sid: "rejected" for sid in accepted} | {sid: "approved" for sid in order}
    applied = apply_decisions(
        {
            "version": VERSION,
            "editor": decision.editor,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "order": order,
            "decisions": choices,
        },
        out,
    )
    return list(applied.order)


@flow(name="remembrance-campaign", log_prints=True)
def remembrance_campaign(params: CampaignParams) -> str:
    """Process every upload, wait for the editors' decision, compile, publish."""
    logger = get_run_logger()
    out, config = params.out, params.config
    batch = BatchParams(
        source=params.source, out=out, config=config, dask_address=params.dask_address
    )
    entries = with_task_runner(process_submissions, batch.dask_address)(batch)
    order = None
    if not params.approve_all:
        cfg = load_config(Path(config) if config else None)
        _configured(cfg)
        dest = open_output(out, cfg)
        logger.info("waiting for the editors' decision (resume this run in the Prefect UI)")
        decision = pause_flow_run(
            wait_for_input=decision_form(entries, dest.url_for(publish.PAGE)),
            timeout=int(cfg.orchestration.approval_timeout_hours * 3600),
            key="editor-approval",
        )
        with state.campaign_lock(dest, "editors' decision", cfg):
            sync_decisions_task(dest, upload=False)  # keep the history another machine wrote
            order = record_decision(dest.root, decision, entries)
            sync_decisions_task(dest, upload=True)
        logger.info("%s approved %d clips", decision.editor or "an editor", len(order))
    return build_compilation(CompileParams(out=out, config=config), order, params.approve_all)
