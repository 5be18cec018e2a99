"""Web login: an operator pastes one of `api_tokens:` once; the browser then holds
a signed session cookie (HttpOnly, SameSite=Strict), never the token itself.

The cookie carries the token's name, an expiry and a random session ID, signed
with a key derived from central's secret (state_dir/web-secret, made on first
use) and the token's current value: rotating a token ends its sessions, and
deleting the secret file ends all of them. Forms carry a CSRF token derived
from the session ID. Nothing secret is ever rendered into a page.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

COOKIE = "checkd_session"
SECRET_FILE = "web-secret"
DEFAULT_LIFETIME = 12 * 3600.0


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    name: str               # the api_tokens entry: the author of what this session does
    sid: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, state_dir: Path, tokens: Callable[[], Mapping[str, str]],
                 lifetime: Callable[[], float] = lambda: DEFAULT_LIFETIME):
        self.path = state_dir / SECRET_FILE
        self._tokens = tokens           # read at every use: a reload may change api_tokens
        self._lifetime = lifetime
        self._secret: bytes | None = None

    @property
    def tokens(self) -> Mapping[str, str]:
        return self._tokens()

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
        """The api_tokens name of `token`; every entry is compared, in constant time."""
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
        return f"{_b64(name.encode())}.{expires}.{sid}.{sig}"

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
        return Session(name, parts[2], expires)

    def csrf(self, session: Session) -> str:
        return _b64(hmac.new(self.secret(), f"csrf\0{session.sid}".encode(), hashlib.sha256).digest()[:18])

    def csrf_ok(self, session: Session, value: str) -> bool:
        return hmac.compare_digest(self.csrf(session).encode(), value.encode())
