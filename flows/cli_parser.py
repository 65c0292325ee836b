"""The argument parser of ``reel``: every command, its options and its help text.

Kept apart from the commands themselves so each stays short; ``flows.cli`` re-exports
:func:`build_parser`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .commands import (
    cmd_add_editor,
    cmd_compile,
    cmd_config,
    cmd_process,
    cmd_review,
    cmd_review_serve,
    cmd_run,
    cmd_serve,
    cmd_upload,
)


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
    """The ``reel`` parser: one subcommand per job, each with its own --help."""
    p = argparse.ArgumentParser(
        prog="reel",
        description="supportreel: safe, normalized, captioned clips for #100forJustice.",
        epilog="Each command has its own help: reel COMMAND --help",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every ffmpeg command")
    sub = p.add_subparsers(dest="command", required=True)
    _add_process(sub)
    _add_compile(sub)
    _add_run(sub)
    _add_serve(sub)
    _add_config(sub)
    _add_review(sub)
    _add_upload(sub)
    return p


def _add_process(sub: Any) -> None:
    """Add ``reel process`` and its options."""
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


def _add_compile(sub: Any) -> None:
    """Add ``reel compile`` and its options."""
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


def _add_run(sub: Any) -> None:
    """Add ``reel run`` and its options."""
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


def _add_serve(sub: Any) -> None:
    """Add ``reel serve`` and its options."""
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


def _add_config(sub: Any) -> None:
    """Add ``reel config`` and its options."""
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


def _add_review(sub: Any) -> None:
    """Add ``reel review`` and its subcommands (build, apply, serve, add-editor)."""
    rv = _sub(
        sub, "review", "the editors' review page and their decisions",
        "Build the offline review page, or record a decisions.json exported from it.",
        "  reel review build --out /srv/renders\n"
        "  reel review apply decisions.json --out /srv/renders --by Lena",
    )  # fmt: skip
    rv_sub = rv.add_subparsers(dest="action", required=True)
    _add_review_build(rv_sub)
    _add_review_apply(rv_sub)
    _add_review_serve(rv_sub)
    _add_review_add_editor(rv_sub)


def _add_review_build(rv_sub: Any) -> None:
    """Add ``reel review build`` and its options."""
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


def _add_review_apply(rv_sub: Any) -> None:
    """Add ``reel review apply`` and its options."""
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


def _add_review_serve(rv_sub: Any) -> None:
    """Add ``reel review serve`` and its options."""
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


def _add_review_add_editor(rv_sub: Any) -> None:
    """Add ``reel review add-editor`` and its options."""
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


def _add_upload(sub: Any) -> None:
    """Add ``reel upload`` and its subcommands (serve, stats)."""
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
