"""``reel``: the command line.

``reel process`` needs no Prefect server and imports no Prefect; the commands
that orchestrate (``run``, ``serve``) import it when they are used. The parser
lives in ``flows.cli_parser``, the commands in ``flows.commands``.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

from processing.errors import FFmpegInterrupted, ReelError

from .cli_parser import build_parser
from .terminal import SafeFormatter, terminal_safe

__all__ = ["DISK_FULL", "build_parser", "disk_full_message", "main"]

log = logging.getLogger("reel")


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


#: Seconds ``reel run`` waits for its temporary Prefect server (Prefect's default, 20 s,
#: is too short on a busy 2-core machine); a value in the environment wins.
STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
EPHEMERAL_STARTUP_SECONDS = "120"


def _server_did_not_start(exc: RuntimeError) -> bool:
    return "ephemeral Prefect API server" in str(exc)


def main(argv: list[str] | None = None) -> int:
    # Before Prefect is imported (the commands import it when used): it reads its settings then.
    os.environ.setdefault(STARTUP_SETTING, EPHEMERAL_STARTUP_SECONDS)
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
    except RuntimeError as exc:
        if not _server_did_not_start(exc):
            raise
        wait = os.environ[STARTUP_SETTING]
        print(
            f"reel: error: the temporary Prefect server did not start within {wait} s (the "
            f"machine is busy): run again, or raise {STARTUP_SETTING}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("reel: interrupted; finished clips are kept, run again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
