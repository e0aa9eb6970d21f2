"""Who holds a piece of work in progress, and when another process may take it back.

A holder is a host and a process; its hold lasts until an expiry it keeps pushing forward. Work is
taken back only when the hold has lapsed, or at once when its holder ran on this very host and that
process is gone. A process id alone proves nothing: the model store and the database may be shared by
several hosts, where pid 4242 here says nothing about pid 4242 there.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache


@cache
def this_host() -> str:
    return socket.gethostname() or "unknown-host"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int

    @classmethod
    def me(cls) -> Holder:
        return cls(this_host(), os.getpid())

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def process_gone(pid: int) -> bool:
    """True when no process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def hold_lapsed(holder: Holder, expires_at: float, now: float) -> bool:
    """Whether work held by ``holder`` until ``expires_at`` may be taken back at ``now``."""
    if now >= expires_at:
        return True
    if holder.host != this_host() or holder.pid == os.getpid():
        return False
    return process_gone(holder.pid)
