"""``reel``: the command line.

``reel process`` needs no Prefect server and imports no Prefect; the commands
that orchestrate (``run``, ``serve``) import it when they are used.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from processing.config import default_toml, load_config
from processing.errors import FFmpegInterrupted, ReelError
from processing.pipeline import process_batch
from processing.storage import Output, check_separate, open_output, open_source

from .terminal import BarProgress, SafeFormatter, terminal_safe

log = logging.getLogger("reel")


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
    from processing import publish, state
    from processing.decisions import approval_warnings
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
    publish.stage_for_review(dest, state.submissions(state.load_report(out)))
    page = review_page(dest)
    dest.publish([PAGE])
    print(f"review page: {dest.url_for(PAGE) if dest.remote else page}")
    return 0


#: Errors that mean "no room to write": a full disk, a full quota, a file-size limit.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_full_message(exc: OSError) -> str:
    """One line for a write that found no room: what happened, where, and what to do."""
    where = f" writing {exc.filename}" if exc.filename else ""
    what = (
        "a file-size limit (ulimit -f) was reached"
        if exc.errno == errno.EFBIG
        else "the disk (or your quota) is full"
    )
    return (
        f"{what}{where} ({exc.strerror}): free some space or use --out on a bigger disk, "
        "then run again; finished clips are kept and partial files are removed"
    )


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


def _sub(
    sub: Any, name: str, summary: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and shows how it is typed."""
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="example:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reel",
        description="supportreel: safe, normalized, captioned clips for #100forJustice.",
        epilog="Each command has its own help: reel COMMAND --help",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every ffmpeg command")
    sub = p.add_subparsers(dest="command", required=True)

    pr = _sub(
        sub, "process", "health-check, normalize and caption every upload",
        "Render every upload in SOURCE into a safe, normalized, captioned clip in OUT "
        "(clips/, logs/, report.json, review/). No Prefect server needed; clips already "
        "rendered with the same settings are reused.",
        "  reel process uploads/ --out /srv/renders --config campaign.toml",
    )  # fmt: skip
    pr.add_argument(
        "source", help="folder or s3://bucket/prefix of uploads (optional <stem>.json sidecars)"
    )
    pr.add_argument(
        "--out", required=True,
        help="output folder or s3://bucket/prefix (clips/, logs/, report.json)",
    )  # fmt: skip
    pr.add_argument("--config", type=Path, help="campaign TOML (see `reel config`)")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_process)

    co = _sub(
        sub, "compile", "assemble the March 29 compilation from accepted clips",
        "Assemble OUT/compilation/ from the clips `reel process` accepted, in the editors' "
        "order when they decided (clips without consent stay out).",
        "  reel compile --out /srv/renders",
    )  # fmt: skip
    co.add_argument(
        "--out", required=True, help="the output folder or s3:// prefix `reel process` wrote"
    )
    co.add_argument("--config", type=Path, help="campaign TOML (see `reel config`)")
    co.set_defaults(func=cmd_compile)

    rn = _sub(
        sub, "run", "the whole campaign: process, editors' approval, compile (Prefect flow)",
        "Run the remembrance-campaign Prefect flow here: process SOURCE into OUT, pause "
        "for the editors' decision (needs PREFECT_API_URL; resume from the review app or "
        "the Prefect UI), then compile.",
        "  reel run uploads/ --out /srv/renders --approve-all\n"
        "  PREFECT_API_URL=http://127.0.0.1:4200/api reel run uploads/ --out /srv/renders",
    )  # fmt: skip
    rn.add_argument("source", help="folder or s3://bucket/prefix of uploads")
    rn.add_argument("--out", required=True, help="output folder or s3://bucket/prefix")
    rn.add_argument("--config", type=Path, help="campaign TOML (see `reel config`)")
    rn.add_argument(
        "--approve-all", action="store_true",
        help="skip the editors' approval step (unattended runs)",
    )  # fmt: skip
    rn.add_argument("--task-runner", choices=("threads", "dask"), default="threads")
    rn.add_argument("--dask-address", help="scheduler of an existing Dask cluster, tcp://HOST:PORT")
    rn.set_defaults(func=cmd_run)

    sv = _sub(
        sub, "serve", "serve the scheduled and on-demand Prefect deployments",
        "Register the deployments with the Prefect server at PREFECT_API_URL and run what "
        "it schedules: on-demand processing and campaign runs, and, when [schedules] source "
        "and out are set, nightly processing and the March 29 build.",
        "  PREFECT_API_URL=http://127.0.0.1:4200/api reel serve --config campaign.toml",
    )  # fmt: skip
    sv.add_argument("--config", type=Path, help="campaign TOML (schedules come from it)")
    sv.add_argument(
        "--wait", type=float, default=60, metavar="SECONDS",
        help="how long to wait for the Prefect server to answer (default 60)",
    )  # fmt: skip
    sv.set_defaults(func=cmd_serve)

    cf = _sub(
        sub, "config", "print every setting with its default, or check a file",
        "Print every setting with its default and a comment, or with --check list every "
        "problem of a campaign file at once: unknown keys (with the likely one), wrong "
        "types, out-of-range values, cron strings, time zones, and the encoder settings "
        "(tried on a few frames).",
        "  reel config > campaign.toml\n  reel config --check campaign.toml",
    )  # fmt: skip
    cf.add_argument("--check", metavar="FILE", help="validate FILE instead of printing defaults")
    cf.add_argument("--no-trial", action="store_true", help="with --check, skip the trial encode")
    cf.set_defaults(func=cmd_config)

    rv = _sub(
        sub, "review", "the editors' review page and their decisions",
        "Build the offline review page, or record a decisions.json exported from it.",
        "  reel review build --out /srv/renders\n"
        "  reel review apply decisions.json --out /srv/renders --by Lena",
    )  # fmt: skip
    rv_sub = rv.add_subparsers(dest="action", required=True)
    rb = _sub(
        rv_sub, "build", "(re)build OUT/review/index.html",
        "(Re)build the static review page OUT/review/index.html (works offline).",
        "  reel review build --out /srv/renders",
    )  # fmt: skip
    rb.add_argument(
        "--out", required=True, help="the output folder or s3:// prefix `reel process` wrote"
    )
    rb.add_argument("--config", type=Path, help="campaign TOML (storage settings for s3://)")
    rb.set_defaults(func=cmd_review)
    ra = _sub(
        rv_sub, "apply", "record a decisions.json exported from the review page (keeps history)",
        "Check a decisions.json exported from the review page against OUT and record it in "
        "OUT/decisions.json, keeping the history of who decided what and when.",
        "  reel review apply ~/Downloads/decisions.json --out /srv/renders --by Lena",
    )  # fmt: skip
    ra.add_argument("file", help="decisions.json downloaded from the review page")
    ra.add_argument("--out", required=True, help="the output folder the decisions are for")
    ra.add_argument("--by", help="who applies them (default: the editor named in the file)")
    ra.add_argument("--config", type=Path, help="campaign TOML (storage settings for s3://)")
    ra.set_defaults(func=cmd_review)
    rs = _sub(
        rv_sub, "serve", "serve the review app: editors sign in, decide, and send the cut",
        "Serve the review page of one output to signed-in editors; every change is saved at "
        "once, and Send the cut resumes the paused campaign run.",
        "  reel review serve --out /srv/reel/out --accounts /srv/reel/editors.json",
    )  # fmt: skip
    rs.add_argument("--out", required=True, help="the output folder or s3:// prefix")
    rs.add_argument("--accounts", required=True, type=Path, help="editors' accounts file")
    rs.add_argument("--config", type=Path, help="campaign TOML (storage settings for s3://)")
    rs.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    rs.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    rs.add_argument(
        "--no-prefect", action="store_true",
        help="no Send the cut button (no Prefect server to reach)",
    )  # fmt: skip
    rs.set_defaults(func=cmd_review_serve)
    ae = _sub(
        rv_sub, "add-editor", "add an editor account (or set a new password)",
        "Add an editor who may sign in to the review app; the password is asked for (or read "
        "from standard input) and stored as a scrypt hash.",
        "  reel review add-editor ada --name 'Ada L.' --accounts /srv/reel/editors.json",
    )  # fmt: skip
    ae.add_argument("user", help="account name: lower-case letters, digits, '.', '_', '-'")
    ae.add_argument("--accounts", required=True, type=Path, help="editors' accounts file")
    ae.add_argument("--name", help="name recorded with their decisions (default: the account)")
    ae.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    ae.set_defaults(func=cmd_add_editor)

    up = _sub(
        sub, "upload", "the contributors' upload page",
        "Serve the public page where supporters upload a video with their consent, or count "
        "what arrived.",
        "  reel upload serve --target /srv/reel/uploads\n  reel upload stats",
    )  # fmt: skip
    up_sub = up.add_subparsers(dest="action", required=True)
    us = _sub(
        up_sub, "serve", "serve the upload page (put HTTPS in front of it)",
        "Serve the contributors' upload page: resumable uploads, consent and anonymity "
        "recorded with each video in a sidecar.",
        "  reel upload serve --target /srv/reel/uploads --port 8470",
    )  # fmt: skip
    us.add_argument("--host", default="127.0.0.1", help="address to listen on")
    us.add_argument("--port", type=int, default=8470)
    ut = _sub(
        up_sub, "stats", "how many uploads arrived and when the last did (JSON)",
        "Print the number of finished uploads and the time of the last one, as JSON.",
        "  reel upload stats --target /srv/reel/uploads",
    )  # fmt: skip
    for cmd in (us, ut):
        cmd.add_argument(
            "--target", help="uploads folder or s3://bucket/prefix (default: upload.target)"
        )
        cmd.add_argument("--config", type=Path, help="campaign TOML (texts, limits)")
        cmd.set_defaults(func=cmd_upload)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    level = logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=level, handlers=[handler])
    try:
        return int(args.func(args))
    except FFmpegInterrupted as exc:
        print(f"reel: interrupted: {terminal_safe(str(exc))}", file=sys.stderr)
        return 130
    except (ReelError, FileNotFoundError) as exc:
        print(f"reel: error: {terminal_safe(str(exc), lines=True)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        print(f"reel: error: {terminal_safe(disk_full_message(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reel: interrupted; finished clips are kept, run again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
