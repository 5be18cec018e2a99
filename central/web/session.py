"""Web login: an operator pastes one of `api_tokens:` (or, to read only, one of
`read_tokens:`) once; the browser then holds a signed session cookie (HttpOnly,
SameSite=Strict), never the token itself.

The cookie carries the token's name, an expiry and a random session ID, signed
with a key derived from central's secret (state_dir/web-secret, made on first
use) and the token's current value: rotating a token ends its sessions, and
deleting the secret file ends all of them. The session IDs in force are kept in
state_dir/web-sessions, so logging out ends that session for good (a copy of the
cookie is refused too), across restarts of central. Forms carry a CSRF token
derived from the session ID. Nothing secret is ever rendered into a page.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

COOKIE = "checkd_session"
SECRET_FILE = "web-secret"
SESSIONS_FILE = "web-sessions"
DEFAULT_LIFETIME = 12 * 3600.0
MAX_SESSIONS = 10_000           # in force at once; beyond it the ones that end soonest go first
READER = "read:"                # prefix of a read_tokens login's name inside the cookie
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    name: str               # the api_tokens entry (the author of what this session does), or read:NAME
    sid: str
    expires: float

    @property
    def can_act(self) -> bool:
        """A read_tokens login sees the pages; only an api_tokens one may press buttons."""
        return not self.name.startswith(READER)

    @property
    def who(self) -> str:
        return self.name.removeprefix(READER)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, state_dir: Path, tokens: Callable[[], Mapping[str, str]],
                 lifetime: Callable[[], float] = lambda: DEFAULT_LIFETIME,
                 readers: Callable[[], Mapping[str, str]] = dict):
        self.path = state_dir / SECRET_FILE
        self.store_path = state_dir / SESSIONS_FILE
        self._tokens = tokens           # read at every use: a reload may change api_tokens
        self._readers = readers         # ... and read_tokens
        self._lifetime = lifetime
        self._secret: bytes | None = None
        self._live: dict[str, tuple[str, float]] | None = None     # sid -> (name, expires)

    @property
    def tokens(self) -> Mapping[str, str]:
        """Every token that may log in, by its name in a cookie (read_tokens' as read:NAME)."""
        return {**self._tokens(), **{READER + k: v for k, v in self._readers().items()}}

    @property
    def lifetime(self) -> float:
        return self._lifetime()

    @property
    def enabled(self) -> bool:
        """Without api_tokens there is nobody to log in: the pages are read-only."""
        return bool(self.tokens)

    def secret(self) -> bytes:
        """32 random bytes kept in state_dir, so sessions survive a restart of central."""
        if self._secret is None:
            try:
                self._secret = bytes.fromhex(self.path.read_text().strip())
            except (OSError, ValueError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
                self._secret = bytes.fromhex(self.path.read_text().strip())
        return self._secret

    def operator(self, token: str) -> str | None:
        """The name of `token` (read:NAME for read_tokens); every entry is compared, in constant time."""
        found, given = None, token.strip().encode()
        for name, value in self.tokens.items():
            if hmac.compare_digest(given, value.encode()):
                found = name
        return found

    def _sign(self, name: str, expires: int, sid: str) -> str | None:
        token = self.tokens.get(name)
        if token is None:
            return None
        key = hmac.new(self.secret(), b"session\0" + token.encode(), hashlib.sha256).digest()
        return _b64(hmac.new(key, f"{name}\0{expires}\0{sid}".encode(), hashlib.sha256).digest())

    def issue(self, name: str, now: float | None = None) -> str:
        """The cookie value for a fresh session of `name`."""
        expires = int((time.time() if now is None else now) + self.lifetime)
        sid = secrets.token_urlsafe(16)
        sig = self._sign(name, expires, sid)
        assert sig is not None
        live = self._sessions()
        live[sid] = (name, expires)
        self._save(time.time() if now is None else now)
        return f"{_b64(name.encode())}.{expires}.{sid}.{sig}"

    def end(self, session: Session) -> None:
        """Log out: the session ID is no longer in force (a copy of the cookie is refused too)."""
        if self._sessions().pop(session.sid, None) is not None:
            self._save(time.time())

    def _sessions(self) -> dict[str, tuple[str, float]]:
        if self._live is None:
            try:
                doc = json.loads(self.store_path.read_text())
                self._live = {str(sid): (str(v[0]), float(v[1])) for sid, v in doc.items()}
            except FileNotFoundError:
                self._live = {}
            except (OSError, ValueError, TypeError, IndexError, AttributeError) as e:
                log.warning("%s cannot be read (%s): every web session ends; people log in again", self.store_path, e)
                self._live = {}
        return self._live

    def _save(self, now: float) -> None:
        """The sessions in force, written whole (small; written at a login or logout only)."""
        live = self._sessions()
        for sid in [sid for sid, (_, expires) in live.items() if expires < now]:
            del live[sid]
        for sid, _ in sorted(live.items(), key=lambda i: i[1][1])[:max(0, len(live) - MAX_SESSIONS)]:
            del live[sid]
        self.store_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.store_path.with_name(SESSIONS_FILE + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({sid: [name, expires] for sid, (name, expires) in live.items()}, f)
        os.replace(tmp, self.store_path)

    def load(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie value, or None when absent, forged, expired or its token is gone."""
        if not cookie or len(cookie) > 1024:
            return None
        parts = cookie.split(".")
        if len(parts) != 4:
            return None
        try:
            name, expires = _unb64(parts[0]).decode(), int(parts[1])
        except (ValueError, UnicodeDecodeError):
            return None
        sig = self._sign(name, expires, parts[2])
        if sig is None or not hmac.compare_digest(sig, parts[3]):
            return None
        if expires < (time.time() if now is None else now):
            return None
        if self._sessions().get(parts[2]) != (name, expires):
            return None                 # logged out (or from before sessions were kept)
        return Session(name, parts[2], expires)

    def csrf(self, session: Session) -> str:
        return _b64(hmac.new(self.secret(), f"csrf\0{session.sid}".encode(), hashlib.sha256).digest()[:18])

    def csrf_ok(self, session: Session, value: str) -> bool:
        return hmac.compare_digest(self.csrf(session).encode(), value.encode())
