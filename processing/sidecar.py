"""Sidecar metadata: ``<stem>.json`` next to an upload.

Sidecar text is contributor data, never markup: it is cleaned of control
characters here and escaped where it is rendered.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from . import untrusted_json

KNOWN_FIELDS = ("name", "consent", "language", "message", "anonymize")
#: Recorded by the upload page for the campaign's records (which consent wording, when,
#: and later changes through the contributor's private link); not used in rendering.
RECORDED_FIELDS = ("consent_version", "consent_time", "changed", "via")
MAX_TEXT = {"name": 200, "message": 1000, "language": 35}

# Surrogates too: JSON can spell an unpaired one (\ud800), which no UTF-8 file can hold.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: Format characters that are visible marks, not invisible controls (Arabic number signs).
_VISIBLE_FORMAT = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u08e2")
_ZWNJ, _ZWJ, _VS16 = "\u200c", "\u200d", "\ufe0f"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


@dataclass(frozen=True)
class Sidecar:
    """What a contributor told us about their upload. Every field is optional."""

    name: str | None = None
    consent: bool | None = None
    language: str | None = None
    message: str | None = None
    anonymize: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: What an unreadable sidecar stands for: it may have asked for anonymity and may have
#: withheld consent, so the clip is anonymized and, without consent, left out.
UNREADABLE = Sidecar(anonymize=True)
_PROTECTED = "the clip is anonymized and has no consent until the sidecar is fixed"


def clean_text(value: str, limit: int) -> str:
    """Normalize to NFC, drop invisible format characters, turn controls into spaces, trim."""
    text = strip_invisible(unicodedata.normalize("NFC", value))
    text = _CONTROL.sub(" ", text)
    text = " ".join(text.split())
    return text[:limit].strip()


def strip_invisible(text: str) -> str:
    """Drop bidirectional controls and zero-width characters from ``text``.

    A right-to-left override (U+202E) or an isolate reorders what follows it in
    the credits, chapters and captions, and zero-width characters make two
    names that look the same differ: a name is shown as the letters it has.
    Every format character (Unicode category ``Cf``) goes, except where it is
    part of the writing: a zero-width joiner inside an emoji sequence (🏳️‍🌈),
    a joiner or non-joiner between letters of a script that uses them (Persian
    می‌خواهم, Devanagari), tag characters of a subdivision flag, and the
    visible Arabic number signs.
    """
    kept: list[str] = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) != "Cf" or ch in _VISIBLE_FORMAT:
            kept.append(ch)
            continue
        prev = kept[-1] if kept else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        emoji_joiner = ch == _ZWJ and _emoji(prev) and _emoji(nxt)
        letter_joiner = ch in (_ZWJ, _ZWNJ) and _joining_letter(prev) and _joining_letter(nxt)
        if emoji_joiner or letter_joiner:
            kept.append(ch)
        elif 0xE0020 <= ord(ch) <= 0xE007F and (prev == "\U0001f3f4" or _is_tag(prev)):
            kept.append(ch)  # 🏴 + tags + cancel tag: the flags of England, Scotland, Wales
    return "".join(kept)


def _emoji(ch: str) -> bool:
    # Pictographs, dingbats and their modifiers; VS16 ends the 🏳️ of 🏳️‍🌈.
    return bool(ch) and (
        ch == _VS16 or unicodedata.category(ch) in ("So", "Sk") or ord(ch) >= 0x1F000
    )


def _joining_letter(ch: str) -> bool:
    # Hebrew onwards (Arabic, Syriac, Indic …) use ZWJ/ZWNJ in spelling; Latin,
    # Greek and Cyrillic do not, so there they can only hide a difference.
    return bool(ch) and ord(ch) >= 0x0590 and unicodedata.category(ch)[0] in "LM"


def _is_tag(ch: str) -> bool:
    return bool(ch) and 0xE0020 <= ord(ch) <= 0xE007F


def parse_sidecar(raw: bytes | None, *, max_bytes: int) -> tuple[Sidecar, list[str]]:
    """Parse sidecar bytes leniently; never raises.

    A bad sidecar never costs the clip, nor the batch: the clip is processed
    with defaults and the problem is returned as a warning for the report.
    Whatever the bytes (too large, not UTF-8, not JSON, nested thousands deep,
    numbers too long to parse, wrong types), the answer is a warning.

    Returns:
        The sidecar and a list of human-readable warnings.
    """
    if raw is None:
        return Sidecar(), []
    try:
        data = untrusted_json.load(raw, max_bytes=max_bytes, surrogates=True)
    except untrusted_json.BadJSON as exc:
        return UNREADABLE, [f"sidecar ignored: {exc}; {_PROTECTED}"]
    if not isinstance(data, dict):
        return UNREADABLE, [f"sidecar ignored: expected a JSON object; {_PROTECTED}"]

    warnings: list[str] = []
    unknown = sorted(str(k) for k in data if k not in KNOWN_FIELDS + RECORDED_FIELDS)
    if unknown:
        warnings.append(f"sidecar fields ignored: {', '.join(unknown)[:200]}")
    values: dict[str, Any] = {}
    for key in ("name", "message", "language"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            warnings.append(f"sidecar {key} ignored: expected text")
            continue
        text = clean_text(value, MAX_TEXT[key])
        if key == "language" and text and not _LANGUAGE.match(text):
            warnings.append(f"sidecar language {text[:35]!r} ignored: not a language tag")
            continue
        values[key] = text or None
    for key in ("consent", "anonymize"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            values[key] = value
        elif key == "anonymize":  # whatever it says, the contributor asked about hiding
            values[key] = True
            warnings.append("sidecar anonymize is not true or false: the clip is anonymized")
        else:
            warnings.append(f"sidecar {key} ignored: expected true or false")
    return Sidecar(**values), warnings
