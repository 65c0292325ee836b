"""The campaign file's text tables (``[cards.<lang>]``, ``[upload_text.<lang>]``) and value types.

Split from :mod:`processing.config`, which re-exports :class:`CardText`.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class CardText:
    """What the title and end cards say in one language."""

    title: str
    subtitle: str
    end_title: str
    end_lines: tuple[str, ...]
    title_chapter: str
    end_chapter: str
    anonymous: str
    hashtag_line: str
    remembrance_line: str
    petition_call: str
    petition_link: str
    donate_line: str
    donate_link: str
    part_label: str
    petition_qr_label: str = ""
    """Under the petition's QR code on the end card (a campaign file may leave it out)."""
    donate_qr_label: str = ""
    """Under the donation's QR code."""


def card_texts(tables: dict[str, Any]) -> dict[str, CardText]:
    """Every ``[cards.<lang>]`` as :class:`CardText`, each with exactly its fields.

    Raises:
        ConfigError: A table misses a field, has an unknown one, or a value is not text.
    """
    cards = {}
    for lang, text in tables.items():
        # Keys added after campaigns wrote their own languages have defaults: optional.
        required = [f for f in fields(CardText) if f.default is MISSING]
        missing = [f.name for f in required if f.name not in text]
        unknown = [k for k in text if k not in {f.name for f in fields(CardText)}]
        if missing or unknown:
            raise ConfigError(
                f"[cards.{lang}]: missing {', '.join(missing) or 'nothing'}; "
                f"unknown {', '.join(unknown) or 'nothing'}"
            )
        cards[lang] = CardText(
            **{
                f.name: coerce(f"cards.{lang}.{f.name}", text[f.name], str(f.type))
                for f in fields(CardText)
                if f.name in text
            }
        )
    return cards


def upload_texts(tables: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every ``[upload_text.<lang>]`` with exactly the keys of the English one, all text."""
    keys = set(tables["en"])
    for lang, text in tables.items():
        missing, unknown = keys - set(text), set(text) - keys
        if missing or unknown:
            raise ConfigError(
                f"[upload_text.{lang}]: missing {', '.join(sorted(missing)) or 'nothing'}; "
                f"unknown {', '.join(sorted(unknown)) or 'nothing'}"
            )
        for key, value in text.items():
            coerce(f"upload_text.{lang}.{key}", value, "str")
    return {lang: dict(text) for lang, text in tables.items()}


def coerce(key: str, value: Any, type_name: str) -> Any:
    """``value`` as ``type_name`` (an int is a float too, a list a tuple).

    Raises:
        ConfigError: ``value`` is of another type; the message names ``key``.
    """
    ok: bool
    if type_name == "bool":
        ok = isinstance(value, bool)
    elif type_name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_name == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif type_name == "str":
        ok = isinstance(value, str)
    elif type_name.startswith("tuple"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a new field type needs a branch here
        raise AssertionError(f"no coercion for {type_name}")
    if not ok:
        raise ConfigError(f"{key} must be a {type_name}, got {value!r}")
    return value
