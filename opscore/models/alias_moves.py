"""Alias moves an operator asks for and then confirms: rollback, promote, discard.

A move is prepared first (the pre-flight check runs, nothing changes) and carried out only when an
operator confirms with a reason; carrying out refuses when production moved since it was prepared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, NotFoundError
from opscore.models import registry
from opscore.models.registry import LedgerEntry
from opscore.store import open_store

MOVES = ("rollback", "promote", "discard")


@dataclass(frozen=True)
class PendingMove:
    """An alias move an operator asked for and must confirm, with its pre-flight result."""

    action: str
    version_id: str
    from_version: str | None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    # Production's generation when the check ran: confirming refuses if production moved since, even
    # if it came back to the same version.
    generation: int | None = None

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)

    @property
    def summary(self) -> str:
        if self.action == "discard":
            return f"Discard candidate {self.version_id} (the version stays in the registry)"
        verb = "Roll back" if self.action == "rollback" else "Promote"
        return f"{verb} production: {self.from_version or '(none)'} → {self.version_id}"


def prepare_move(settings: Settings, action: str, version_id: str) -> PendingMove:
    """Describe a move and run its pre-flight check (checksum, load, predict, schema) without moving."""
    if action not in MOVES:
        raise BadInputError(f"unknown action {action!r}; expected one of {', '.join(MOVES)}")
    store = open_store(settings)
    registry.get_version(store, version_id)
    if action == "discard":
        if registry.alias_target(store, "candidate") != version_id:
            raise NotFoundError(f"{version_id!r} is not the candidate any more; nothing to discard")
        return PendingMove(action, version_id, version_id)
    report = registry.preflight(settings, version_id)
    production, generation = report.production
    return PendingMove(action, version_id, production, list(report.checks), generation)


def carry_out(settings: Settings, move: PendingMove, actor: Actor, reason: str) -> LedgerEntry | None:
    """Make a confirmed move; refuses if production moved meanwhile, or without an operator and a reason."""
    actor.require_operator(f"{move.action} of {move.version_id}")
    if not reason.strip():
        raise BadInputError("a reason is required: the ledger records why every alias moved")
    if move.action == "discard":
        return registry.clear_candidate(settings, actor, reason)
    return registry.move_alias(
        settings, move.version_id, actor, reason, action=move.action, expected_from=move.from_version,
        expected_generation=move.generation,
    )
