"""What ``reel`` writes to a terminal: escaped contributor text, safe log lines, a progress bar."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from tqdm import tqdm

from processing.report import Entry

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


class SafeFormatter(logging.Formatter):
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
