"""Parse JSON that someone else wrote (sidecars, editors' decisions) without surprises.

:func:`json.loads` alone lets hostile input escape as exceptions nobody
expects: ``[[[[…`` nested a few thousand deep raises :class:`RecursionError`,
an integer of 5,000 digits a plain :class:`ValueError` (Python's limit on
int parsing), and a structure a few hundred levels deep parses fine but breaks
later code that walks it. :func:`load` turns every one of these into a
:class:`BadJSON` with a one-line reason, and checks size and depth before
anything else sees the data.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deeper than any sidecar or decisions file needs (they are 2-3 levels deep).
MAX_DEPTH = 16
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadJSON(ValueError):
    """The text is not usable JSON; the message is one line saying why."""


def load(
    raw: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH, surrogates: bool = False
) -> Any:
    """Parse ``raw`` as UTF-8 JSON (a byte-order mark is allowed).

    Args:
        raw: The file's bytes (or text).
        max_bytes: Larger input is refused unread.
        max_depth: Containers nested deeper than this are refused.
        surrogates: Accept strings holding an unpaired surrogate (JSON can
            spell ``"\\ud800"``; no UTF-8 file can hold it, so writing it out
            again fails). Only for callers that clean every string they keep.

    Raises:
        BadJSON: Too large, not UTF-8, not JSON, nested too deep, or (unless
            ``surrogates``) holding a string that is not valid Unicode text.
    """
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise BadJSON(f"{size} bytes is over the {max_bytes}-byte limit")
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadJSON(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadJSON(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise BadJSON(f"nested deeper than {max_depth} levels") from exc
    except ValueError as exc:  # an integer with more digits than Python parses
        raise BadJSON("not usable JSON (a number too long to read)") from exc
    _check(data, max_depth, surrogates)
    return data


def _check(data: Any, max_depth: int, surrogates: bool) -> None:
    """Walk ``data`` without recursion: refuse deep nesting and (unless allowed) surrogates."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = [*item, *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, str) and not surrogates and _SURROGATE.search(item):
                raise BadJSON("a string holds an unpaired surrogate (\\ud800-\\udfff): not text")
            continue
        if level >= max_depth:
            raise BadJSON(f"nested deeper than {max_depth} levels")
        stack.extend((child, level + 1) for child in children)
