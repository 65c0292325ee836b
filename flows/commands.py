"""What each ``reel`` command does, once its arguments are parsed (see ``flows.cli_parser``).

``reel process`` needs no Prefect server and imports no Prefect; the commands
that orchestrate (``run``, ``serve``) import it when they are used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from processing.config import default_toml, load_config
from processing.errors import ReelError
from processing.pipeline import process_batch
from processing.storage import Output, check_separate, open_output, open_source

from .terminal import BarProgress, terminal_safe


def cmd_process(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    source = open_source(args.source, ignore=cfg.ingest.ignore, cfg=cfg)
    dest = open_output(args.out, cfg)
    check_separate(source, dest)
    bar = BarProgress() if not args.quiet else None
    try:
        entries = process_batch(source, dest, cfg, progress=bar)
    finally:
        if bar:
            bar.close()
    counts = Counter(e.status for e in entries)
    cached = sum(e.cached for e in entries)
    print(
        f"{counts['accepted']} accepted ({cached} already rendered), "
        f"{counts['rejected']} rejected, {counts['excluded']} excluded; "
        f"report: {terminal_safe(dest.location('report.json'))}"
    )
    _print_links(dest, cfg.storage.presign_seconds)
    return 0


def _print_links(dest: Output, seconds: int, compilation: str | None = None) -> None:
    """Presigned links for editors when the output is a bucket (a folder needs none)."""
    if not dest.remote:
        return
    from processing.review import PAGE

    days = seconds / 86400
    print(f"review page (link valid {days:g} days): {dest.url_for(PAGE)}")
    if compilation is not None:
        print(f"compilation (link valid {days:g} days): {dest.url_for(compilation)}")


def cmd_compile(args: argparse.Namespace) -> int:
    from processing import state
    from processing.sequences import compile_campaign

    cfg = load_config(args.config)
    dest = open_output(args.out, cfg)
    with state.campaign_lock(dest, "reel compile", cfg):
        comp = compile_campaign(dest, cfg, note=lambda n: print(f"note: {n}", file=sys.stderr))
    clips = sum(s.kind == "clip" for s in comp.segments)
    published = comp.output.relative_to(dest.root).as_posix()
    print(
        f"{dest.location(published)}: {clips} clips, {comp.duration:.1f} s; "
        f"{len(comp.left_out)} left out (see report.json)"
    )
    _print_links(dest, cfg.storage.presign_seconds, published)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import os

    cfg = load_config(args.config)
    dest = open_output(args.out, cfg)
    # Refused before Prefect starts a server; the flow checks again wherever it runs.
    check_separate(open_source(args.source, ignore=cfg.ingest.ignore, cfg=cfg), dest)
    if not args.approve_all and not os.environ.get("PREFECT_API_URL"):
        raise ReelError(
            "the editors' approval step needs a Prefect server to resume the run from: "
            "start one with `make ui` and `export PREFECT_API_URL=http://127.0.0.1:4200/api`, "
            "or pass --approve-all to compile every accepted clip"
        )
    from flows.campaign import remembrance_campaign

    if args.task_runner == "dask" and not args.dask_address:
        raise ReelError("--task-runner dask needs --dask-address tcp://HOST:PORT")
    from flows.params import CampaignParams

    result = remembrance_campaign(
        CampaignParams(
            source=args.source,
            out=args.out,
            config=str(args.config) if args.config else None,
            approve_all=args.approve_all,
            dask_address=args.dask_address if args.task_runner == "dask" else None,
        )
    )
    print(f"compilation: {result}")
    if args.approve_all:  # the flow logged them too; the operator reads them here
        from processing.decisions import compile_order

        for note in compile_order(dest.root, approve_all=True)[1]:
            print(f"note: {note}")
    _print_links(dest, cfg.storage.presign_seconds, result.removeprefix(dest.uri))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve_deployments

    serve_deployments(args.config, wait_seconds=args.wait)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if not args.check:
        print(default_toml(), end="")
        return 0
    from processing.config_check import check_file

    problems = check_file(Path(args.check), trial_encode=not args.no_trial)
    for problem in problems:
        print(f"reel: error: {args.check}: {terminal_safe(problem)}", file=sys.stderr)
    if problems:
        return 2
    print(f"{args.check}: valid")
    from processing.social.post_text import placeholder_warnings

    for warning in placeholder_warnings(load_config(Path(args.check))):
        print(warning)
    return 0


def cmd_review_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from processing.web.accounts import load
    from processing.web.app import create_app

    cfg = load_config(args.config)
    dest = open_output(args.out, cfg)
    load(args.accounts)  # refuse to start without editors, in one line
    sender = None
    if not args.no_prefect:
        from flows.review_send import PrefectCutSender

        sender = PrefectCutSender(args.config)
    app = create_app(dest, args.accounts, cfg, sender=sender)
    print(f"review app for {dest.location('')} on http://{args.host}:{args.port}/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=True)
    return 0


def cmd_add_editor(args: argparse.Namespace) -> int:
    import getpass

    from processing.web.accounts import add_editor

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            print("reel: error: the two passwords differ", file=sys.stderr)
            return 2
    editor = add_editor(args.accounts, args.user, password, args.name)
    print(f"{editor.user} ({editor.name}) can sign in to the review app ({args.accounts})")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from processing import state

    cfg = load_config(args.config)
    dest = open_output(args.out, cfg)
    with state.campaign_lock(dest, f"reel review {args.action}", cfg):
        return _review(args, dest)


def _review(args: argparse.Namespace, dest: Output) -> int:
    from processing import publish
    from processing.decisions import approval_warnings
    from processing.report import read_report
    from processing.review import PAGE, apply_decisions
    from processing.sequences import review_page

    publish.stage_report(dest)
    out = dest.root
    if args.action == "apply":
        d = apply_decisions(Path(args.file), out, applied_by=args.by)
        dest.publish([publish.DECISIONS])
        print(
            f"recorded {len(d.order)} approved and {len(d.rejected)} rejected clips "
            f"by {d.applied_by} in {dest.location(publish.DECISIONS)}"
        )
        for warning in approval_warnings(out):
            print(f"warning: {warning}", file=sys.stderr)
    publish.stage_for_review(dest, read_report(out).entries)
    page = review_page(dest)
    dest.publish([PAGE])
    print(f"review page: {dest.url_for(PAGE) if dest.remote else page}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    target = str(args.target or cfg.upload.target)
    if args.action == "stats":
        from processing.upload.store import stats

        print(json.dumps(stats(target, cfg).as_dict()))
        return 0
    import uvicorn

    from processing.upload.app import create_app

    uvicorn.run(create_app(cfg, target), host=args.host, port=args.port, log_level="warning")
    return 0
