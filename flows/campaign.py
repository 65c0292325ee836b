"""The Prefect flows: process submissions, build the compilation, run the campaign.

Flows are thin: each task wraps one ``processing`` call and adds what
orchestration needs (caching keys, retries for storage, a concurrency slot,
artifacts, log summaries).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Flow, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture

from processing import quality, runner, state
from processing.clip.files import ClipFiles
from processing.config import Config, load_config
from processing.pipeline import (
    Submission,
    encodes_nothing,
    finish_batch,
    identify,
    process_safely,
    published_key,
)
from processing.report import Entry
from processing.sequences import compile_campaign
from processing.storage import (
    Output,
    Source,
    check_separate,
    display_key,
    open_output,
    open_source,
)
from processing.timeline import Compilation

from . import artifacts, scale
from .approval import await_decision, sync_decisions_task
from .params import BatchParams, CampaignParams, CompileParams
from .retries import transient as _transient  # the name the tasks below have always used

P = ParamSpec("P")
R = TypeVar("R")

#: Global concurrency limit bounding simultaneous encodes on every worker.
ENCODE_LIMIT = "supportreel-encodes"


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
    signature = state.file_signature(ClipFiles(dest.root, sub.id).clip)
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
    out = dest.root
    slot = scale.encode_slot(cfg, ENCODE_LIMIT)  # taken only when a clip is rendered
    entry = process_safely(sub, source, out, cfg, out / ".work", dest=dest, slot=slot)
    _log_clip(get_run_logger(), entry)
    return entry


def _clip_line(e: Entry) -> str:
    """What happened to one submission, for the run's log (no anonymous contributor's name)."""
    upload = f"(anonymous upload) {e.id}" if e.anonymize else f"{display_key(e.source)} ({e.id})"
    if e.status != "accepted":
        return f"{e.status} {upload}: {e.reason}"
    done = (
        "reused from an earlier run (not rendered again)"
        if e.cached
        else f"rendered in {e.seconds or 0:.1f} s"
    )
    up = quality.raised(e.flags)  # the flags raised, not every one measured
    flags = f"; flags: {', '.join(up)}" if up else ""
    log = ClipFiles(Path("."), e.id).log_key
    return f"accepted {upload}: {done} ({e.output_i} LUFS){flags}; ffmpeg log: {log}"


def _log_clip(logger: Any, e: Entry) -> None:
    (logger.warning if e.status == "rejected" else logger.info)("%s", _clip_line(e))


@task(name="write-report", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def finish_task(dest: Output, source: Source, cfg: Config, entries: list[Entry]) -> list[Entry]:
    """Write the report; returns the finished entries (duplicate flags, retention)."""
    finish_batch(dest.root, source.uri, cfg, entries, dest=dest, source=source)
    return entries


@task(name="compile", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def compile_task(
    dest: Output, cfg: Config, order: list[str] | None, approve_all: bool
) -> Compilation:
    """``reel compile``'s steps: fetch, settle the order (decisions stand), build, publish."""
    logger = get_run_logger()
    return compile_campaign(dest, cfg, order=order, approve_all=approve_all, note=logger.warning)


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
        identify_task, process_task, finish_task, compile_task, sync_decisions_task,
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
    futures = _submit_in_window(
        subs, lambda sub: task.submit(sub, src, dest, cfg), scale.in_flight(cfg, _on_dask()),
        progress.advance, lambda sub: encodes_nothing(sub, out_dir, cfg),
    )  # fmt: skip
    entries += [f.result() for f in futures]
    entries = finish_task(dest, src, cfg, entries)
    artifacts.submissions_table(entries)
    artifacts.run_summary(entries, dest, src.uri, cfg)
    artifacts.links(dest, cfg=cfg)
    return entries


def _on_dask() -> bool:
    """Whether this flow run's tasks go to a Dask cluster."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    kinds = type(ctx.task_runner).__mro__ if ctx else ()
    return any(k.__module__.startswith("prefect_dask") for k in kinds)


def _submit_in_window(
    subs: list[Submission],
    submit: Callable[[Submission], PrefectFuture[Entry]],
    window: int | None,
    done: Callable[[], None],
    light: Callable[[Submission], bool],
) -> list[PrefectFuture[Entry]]:
    """Every submission's future, in order, with at most ``window`` clips to encode unfinished.

    A clip to encode is submitted as soon as another one finishes, so the next
    ones are being prepared while the encode slots work, but never the whole
    batch at once. A ``light`` clip (reused, withdrawn: nothing to encode) is
    submitted at once, outside the window: a re-run with nothing new decides
    every clip together instead of a window's worth per task round trip.
    """
    finished: queue.Queue[int] = queue.Queue()
    futures: dict[int, PrefectFuture[Entry]] = {}
    heavy = [i for i, sub in enumerate(subs) if not light(sub)]

    def start(i: int) -> None:
        futures[i] = submit(subs[i])
        futures[i].add_done_callback(functools.partial(_put, finished, i))

    pending = iter(heavy)
    for i in itertools.islice(pending, window):  # the encodes first: they take longest
        start(i)
    for i in sorted(set(range(len(subs))) - set(heavy)):
        start(i)
    encoding = set(heavy)
    for _ in subs:
        if finished.get() in encoding:  # a clip to encode finished: the next one's turn
            for i in itertools.islice(pending, 1):
                start(i)
        done()
    return [futures[i] for i in range(len(subs))]


def _put(finished: queue.Queue[int], i: int, _: object) -> None:
    """A future's done callback: which submission finished."""
    finished.put(i)


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
    comp = compile_task(dest, cfg, order, approve_all)
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
    artifacts.links(dest, published, cfg)
    return dest.location(published)


def with_task_runner(f: Flow[P, R], dask_address: str | None) -> Flow[P, R]:
    """``f`` running its tasks on the Dask cluster at ``dask_address`` (threads if None)."""
    if not dask_address:
        return f
    return f.with_options(task_runner=scale.task_runner(dask_address))


def _public_links(dest: Output, cfg: Config, compilation: str) -> str:
    """Where the compilation is, and the http link to it when one is configured."""
    url = artifacts.web_link(dest, compilation, cfg.links.files_url)
    where = dest.location(compilation)
    return f"{where} ({url})" if url else f"{where} (no http link: set [links] files_url)"


@flow(name="remembrance-campaign", log_prints=True)
def remembrance_campaign(params: CampaignParams) -> str:
    """Process every upload, wait for the editors' decision, compile, publish."""
    logger = get_run_logger()
    out, config = params.out, params.config
    batch = BatchParams(
        source=params.source, out=out, config=config, dask_address=params.dask_address
    )
    entries = with_task_runner(process_submissions, batch.dask_address)(batch)
    for entry in entries:  # the run staff launched names every clip, not only its subflow
        _log_clip(logger, entry)
    cfg = load_config(Path(config) if config else None)
    _configured(cfg)
    dest = open_output(out, cfg)
    order = None if params.approve_all else await_decision(entries, dest, cfg)
    result = build_compilation(CompileParams(out=out, config=config), order, params.approve_all)
    published = result.removeprefix(dest.uri).lstrip("/")
    logger.info("compilation: %s", _public_links(dest, cfg, published))
    return result
