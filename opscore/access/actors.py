"""The actor behind every state change: who, in which role, through which shell.

Every function that changes state takes an :class:`Actor` and checks the role itself, so a page or
a route that forgets to check cannot let a viewer through.
"""

from __future__ import annotations

from dataclasses import dataclass

from opscore.exceptions import PermissionDenied


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, in which role, through which shell."""

    name: str
    role: str  # "operator" | "viewer" | "system" | "feedback" (an API token that may only send labels)
    via: str

    def __str__(self) -> str:
        return f"{self.via}:{self.name}"

    def require_operator(self, action: str) -> None:
        if self.role not in {"operator", "system"}:
            raise PermissionDenied(f"{action} needs an operator; {self} is signed in as {self.role}")


SYSTEM = Actor("opscore", "system", "system")
