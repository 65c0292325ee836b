"""Editors' accounts: a JSON file staff manage with ``reel review add-editor``.

::

    {"version": 1,
     "accounts": {"ada": {"name": "Ada Lovelace", "added_at": "2027-03-01T10:00:00+00:00",
                          "scrypt": "16384$8$1$<salt b64>$<hash b64>"}}}

Passwords are stored only as ``hashlib.scrypt`` hashes (a slow, memory-hard
hash) with a random salt each. The file is written atomically and readable
by its owner only. Removing an account is deleting its entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ReelError
from ..sidecar import clean_text

VERSION = 1
#: scrypt cost: about 50 ms and 16 MiB per check on a small server.
N, R, P = 1 << 14, 8, 1
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
MAX_NAME = 100


class AccountsError(ReelError):
    """The accounts file or a new account is unusable; the message says why."""


@dataclass(frozen=True)
class Editor:
    user: str
    name: str


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``n$r$p$salt$hash`` for ``password`` (base64 salt and hash)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    b64 = base64.b64encode
    return f"{N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored`` (constant-time comparison)."""
    try:
        n, r, p, salt, digest = stored.split("$")
        want = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=256 << 20,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


#: Checked when the account does not exist: a wrong name costs as long as a wrong password.
_DUMMY = hash_password("not a password", salt=b"0" * 16)


def load(path: Path) -> dict[str, dict[str, Any]]:
    """Every account in ``path``, by account name.

    Raises:
        AccountsError: The file is missing or not an accounts file.
    """
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise AccountsError(
            f"{path} does not exist: add an editor first (reel review add-editor NAME "
            f"--accounts {path})"
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AccountsError(f"{path} is not a readable accounts file: {str(exc)[:120]}") from exc
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict):
        raise AccountsError(f'{path} is not an accounts file (no "accounts" object)')
    return {k: v for k, v in accounts.items() if isinstance(v, dict)}


def add_editor(path: Path, user: str, password: str, name: str | None = None) -> Editor:
    """Add ``user`` to the accounts file (or set a new password), creating the file if needed.

    Raises:
        AccountsError: The name or password is unusable, or the file is damaged.
    """
    if not USERNAME.match(user):
        raise AccountsError(
            f"account name {user!r}: use 1 to 40 lower-case letters, digits, '.', '_' or '-'"
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountsError(f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    accounts = load(path) if path.exists() else {}
    display = clean_text(name or user, MAX_NAME) or user
    accounts[user] = {
        "name": display,
        "added_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scrypt": hash_password(password),
    }
    text = json.dumps({"version": VERSION, "accounts": accounts}, ensure_ascii=False, indent=2)
    _write_private(path, text + "\n")
    return Editor(user, display)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read (hashes are slow
    to crack, not impossible); mkstemp creates it 0600 and it stays so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check(path: Path, user: str, password: str) -> Editor | None:
    """The editor ``user`` when ``password`` is theirs, else None (same cost either way).

    The file is read on every sign-in, so staff's changes apply at once.

    Raises:
        AccountsError: The accounts file is missing or damaged.
    """
    entry = load(path).get(user) if len(password) <= MAX_PASSWORD else None
    stored = entry.get("scrypt") if entry else None
    ok = password_matches(password[:MAX_PASSWORD], stored if isinstance(stored, str) else _DUMMY)
    if not ok or entry is None or not isinstance(stored, str):
        return None
    return Editor(user, clean_text(str(entry.get("name") or user), MAX_NAME) or user)
