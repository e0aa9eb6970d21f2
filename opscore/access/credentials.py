"""The operator password the dashboard checks, and the brake on guessing it.

With nothing configured, the first start generates the password, stores only its scrypt hash in the
secrets folder (mode 0600) and shows it once. Wrong passwords in a row slow every further attempt
in the process down, doubling the wait each time, so guessing costs hours instead of seconds.
API tokens for the HTTP service are in :mod:`opscore.access.tokens`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable

from opscore.access.actors import Actor
from opscore.access.private_files import PASSWORD_FILE, Generated, secrets_dir, write_private
from opscore.config import Settings
from opscore.exceptions import PermissionDenied, TooManyAttempts


def _hash(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()


def ensure_operator_password(settings: Settings) -> Generated:
    """Make sure an operator password exists; returns it once when generated here."""
    path = secrets_dir(settings) / PASSWORD_FILE
    if settings.operator_password or path.exists():
        return Generated(None, path)
    password = secrets.token_urlsafe(12)
    salt = secrets.token_bytes(16)
    # Two sessions starting at once: the first writer wins; the other shows nothing.
    wrote = write_private(path, json.dumps({"salt": salt.hex(), "scrypt": _hash(password, salt)}), overwrite=False)
    return Generated(password if wrote else None, path)


def check_operator_password(settings: Settings, password: str) -> bool:
    """True when ``password`` is the configured or stored operator password."""
    if settings.operator_password:
        return hmac.compare_digest(settings.operator_password.encode(), password.encode())
    path = secrets_dir(settings) / PASSWORD_FILE
    if not path.exists():
        return False
    stored = json.loads(path.read_text())
    return hmac.compare_digest(stored["scrypt"], _hash(password, bytes.fromhex(stored["salt"])))


class SignInThrottle:
    """After ``free_attempts`` wrong passwords in a row, each attempt waits twice as long as the last.

    One per process, shared by every session: a new browser session does not start a new count.
    The price is that someone guessing also delays the operator, for at most ``max_wait`` seconds.
    """

    def __init__(self, free_attempts: int = 5, first_wait: float = 1.0, max_wait: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free_attempts, self.first_wait, self.max_wait, self.clock = free_attempts, first_wait, max_wait, clock
        self._lock = threading.Lock()
        self._failures = 0
        self._next_allowed = 0.0

    def check(self) -> None:
        """Refuse an attempt made before the wait is over, saying how long is left."""
        with self._lock:
            remaining = self._next_allowed - self.clock()
        if remaining > 0:
            raise TooManyAttempts(f"too many attempts, wait {math.ceil(remaining)} s before trying the operator "
                                  "password again")

    def record(self, succeeded: bool) -> None:
        with self._lock:
            if succeeded:
                self._failures, self._next_allowed = 0, 0.0
                return
            self._failures += 1
            beyond = self._failures - self.free_attempts
            if beyond >= 0:
                self._next_allowed = self.clock() + min(self.first_wait * 2 ** min(beyond, 32), self.max_wait)


SIGN_IN_THROTTLE = SignInThrottle()


def operator_actor(settings: Settings, name: str, password: str, via: str = "dashboard",
                   throttle: SignInThrottle | None = None) -> Actor:
    """Sign an operator in, or refuse with a message that says why (wrong password, or wait)."""
    throttle = throttle or SIGN_IN_THROTTLE
    throttle.check()
    name = name.strip() or "operator"
    signed_in = check_operator_password(settings, password)
    throttle.record(signed_in)
    if not signed_in:
        raise PermissionDenied("wrong operator password")
    return Actor(name, "operator", via)


def viewer_actor(via: str = "dashboard") -> Actor:
    return Actor("viewer", "viewer", via)
