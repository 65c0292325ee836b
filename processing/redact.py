"""What a log or an error may show of an ffmpeg run: nothing of its inputs' tags.

ffmpeg prints every container, stream and chapter tag of every input (GPS
location, device, owner, dates) in its ``Metadata:`` blocks, and a command's
``-metadata`` values are tags too. :func:`redact_tags` and :func:`shown_command`
take them out of what :mod:`processing.runner` logs and keeps in its errors.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

#: What a log shows instead of a tag block or a ``-metadata`` value.
NOT_LOGGED = "(tags not logged)"
#: A tag value this long or longer is also removed wherever else it appears.
_ECHO_MIN_CHARS = 4
#: The ``[context @ 0x…] [level] `` prefixes av_log puts before a line.
_LOG_PREFIX = re.compile(r"^(?:\[[^\]\n]*\] )*")


def redact_tags(stderr: str) -> str:
    """``stderr`` without the tags ffmpeg printed for its inputs and outputs.

    ffmpeg's format dump (libavformat/dump.c) prints each tag dictionary as a
    ``Metadata:`` line followed by one more-indented ``key : value`` line per
    tag; a value with line breaks continues on further, still more indented,
    lines. Every such line is dropped and the header kept with
    :data:`NOT_LOGGED`, so the log still shows the inputs' format, duration and
    streams. The dump has no ``[context @ 0x…]`` prefix, so a line with one is
    another thread's message: it is kept and does not end the block. As a
    second guard, every tag value found is also removed wherever else it
    appears (such a message can split a tag line in two). Lines are split on
    ``\\n`` only: a tag may hold any other line separator.
    """
    kept: list[str] = []
    values: set[str] = set()
    block: int | None = None  # indentation of the Metadata: line whose tags are dropped
    for line in stderr.split("\n"):
        prefix = _LOG_PREFIX.match(line)
        body = line[prefix.end() if prefix else 0 :]
        indent = len(body) - len(body.lstrip(" "))
        if block is not None and body.strip() and " @ " not in line[: len(line) - len(body)]:
            if indent > block:
                _, sep, value = body.strip().partition(": ")
                values.update(v.strip() for v in (value, value.rpartition(": ")[2]) if sep)
                continue
            block = None
        if body.strip() == "Metadata:":
            block = indent
            line = f"{line.rstrip()} {NOT_LOGGED}"
        kept.append(line)
    text = "\n".join(kept)
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= _ECHO_MIN_CHARS:
            text = text.replace(value, "…")
    return text


def shown_command(cmd: Sequence[str]) -> str:
    """``cmd`` as a shell line for logs, with the values of ``-metadata`` options left out."""
    shown = list(cmd)
    for i, arg in enumerate(shown[:-1]):
        if arg == "-metadata" or arg.startswith("-metadata:"):
            shown[i + 1] = NOT_LOGGED
    return shlex.join(shown)
