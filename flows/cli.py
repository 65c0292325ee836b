"""``reel``: the command line.

``reel process`` needs no Prefect server and imports no Prefect; the commands
that orchestrate (``run``, ``serve``) import it when they are used.
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from processing.config import default_toml, load_config
from processing.errors import FFmpegInterrupted, ReelError
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import Output, check_separate, open_output, open_source

log = logging.getLogger("reel")

#: What a terminal obeys rather than shows: C0/C1 controls (ESC starts colour,
#: cursor and title sequences; CR and BS overwrite), DEL, line and paragraph
#: separators, and bidi controls that reorder the rest of the line.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"
)


def terminal_safe(text: str, *, lines: bool = False) -> str:
    """``text`` with everything a terminal would obey written as a visible escape.

    Upload names are chosen by contributors: a name holding ``ESC[2J`` or a
    carriage return must reach the operator's screen as ``\\x1b[2J``, not as a
    cleared screen or an overwritten line. ``lines`` keeps line breaks (for a
    message of several lines, such as a traceback).
    """
    if lines:
        return "\n".join(_UNPRINTABLE.sub(_escape, line) for line in text.split("\n"))
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class _SafeFormatter(logging.Formatter):
    """Log lines with the message's controls escaped (a traceback keeps its line breaks)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = terminal_safe(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return terminal_safe(super().formatException(ei), lines=True)


class BarProgress:
    """A terminal progress bar: one step per clip, moving inside a clip as ffmpeg reports."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.index = 0

    def clip_started(self, key: str, index: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=total, unit="clip", dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} clips [{elapsed}<{remaining}]",
            )  # fmt: skip
        self.index = index
        self.bar.set_description(_short(terminal_safe(key)), refresh=False)
        self.bar.n = index
        self.bar.refresh()

    def clip_progress(self, fraction: float) -> None:
        if self.bar is not None:
            self.bar.n = self.index + fraction
            self.bar.refresh()

    def clip_finished(self, entry: Entry) -> None:
        if self.bar is not None:
            self.bar.n = self.index + 1
            self.bar.refresh()
            if entry.status != "accepted":
                self.bar.write(terminal_safe(f"  {entry.status}: {entry.source}: {entry.reason}"))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _short(key: str, width: int = 28) -> str:
    return key if len(key) <= width else "…" + key[-(width - 1) :]


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
    if args.check:
        load_config(Path(args.check))
        print(f"{args.check}: valid")
    else:
        print(default_toml(), end="")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reel",
        description="supportreel: safe, normalized, captioned clips for #100forJustice.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every ffmpeg command")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("process", help="health-check, normalize and caption every upload")
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

    co = sub.add_parser("compile", help="assemble the March 29 compilation from accepted clips")
    co.add_argument(
        "--out", required=True, help="the output folder or s3:// prefix `reel process` wrote"
    )
    co.add_argument("--config", type=Path, help="campaign TOML (see `reel config`)")
    co.set_defaults(func=cmd_compile)

    rn = sub.add_parser(
        "run", help="the whole campaign: process, editors' approval, compile (Prefect flow)"
    )
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

    sv = sub.add_parser("serve", help="serve the scheduled and on-demand Prefect deployments")
    sv.add_argument("--config", type=Path, help="campaign TOML (schedules come from it)")
    sv.add_argument(
        "--wait", type=float, default=60, metavar="SECONDS",
        help="how long to wait for the Prefect server to answer (default 60)",
    )  # fmt: skip
    sv.set_defaults(func=cmd_serve)

    cf = sub.add_parser("config", help="print every setting with its default, or check a file")
    cf.add_argument("--check", metavar="FILE", help="validate FILE instead of printing defaults")
    cf.set_defaults(func=cmd_config)

    rv = sub.add_parser("review", help="the editors' review page and their decisions")
    rv_sub = rv.add_subparsers(dest="action", required=True)
    rb = rv_sub.add_parser("build", help="(re)build OUT/review/index.html")
    rb.add_argument(
        "--out", required=True, help="the output folder or s3:// prefix `reel process` wrote"
    )
    rb.add_argument("--config", type=Path, help="campaign TOML (storage settings for s3://)")
    rb.set_defaults(func=cmd_review)
    ra = rv_sub.add_parser(
        "apply", help="record a decisions.json exported from the review page (keeps history)"
    )
    ra.add_argument("file", help="decisions.json downloaded from the review page")
    ra.add_argument("--out", required=True, help="the output folder the decisions are for")
    ra.add_argument("--by", help="who applies them (default: the editor named in the file)")
    ra.add_argument("--config", type=Path, help="campaign TOML (storage settings for s3://)")
    ra.set_defaults(func=cmd_review)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
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
