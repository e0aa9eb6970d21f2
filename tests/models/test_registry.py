"""Registry: versions, aliases and the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

import opscore
from opscore.access.actors import Actor
from opscore.exceptions import ConflictError, IntegrityError, NotFoundError, PermissionDenied, PreflightError
from opscore.models import registry
from opscore.models.training import train_version
from opscore.store import open_store


@pytest.fixture
def three_versions(any_workspace, demo_frame, operator):
    for version_id in ("v1", "v2", "v3"):
        train_version(any_workspace, version_id, demo_frame, "default", actor=operator, then="promote")
    return any_workspace


def test_first_version_takes_production_and_later_ones_follow_then(any_workspace, demo_frame, operator):
    first = train_version(any_workspace, "a", demo_frame, "default", actor=operator, then="candidate")
    assert first.promoted and first.version.aliases == ("production",)
    second = train_version(any_workspace, "b", demo_frame, "default", actor=operator, then="candidate")
    assert not second.promoted and second.version.aliases == ("candidate",)
    store = open_store(any_workspace)
    assert registry.alias_target(store, "production") == "a"
    assert [e.action for e in registry.ledger_entries(store, newest_first=False)] == ["initial", "candidate"]


def test_rollback_walks_back_through_history(three_versions, operator):
    store = open_store(three_versions)
    assert registry.alias_target(store) == "v3"
    assert registry.rollback(three_versions, operator, "bad p95").to_version == "v2"
    assert registry.rollback(three_versions, operator, "still bad").to_version == "v1"
    with pytest.raises(NotFoundError, match="only version"):
        registry.rollback(three_versions, operator, "nothing left")
    entries = registry.ledger_entries(store, newest_first=False)
    assert [(e.action, e.from_version, e.to_version) for e in entries] == [
        ("initial", None, "v1"),
        ("promote", "v1", "v2"),
        ("promote", "v2", "v3"),
        ("rollback", "v3", "v2"),
        ("rollback", "v2", "v1"),
    ]
    assert entries[3].actor == "cli:tester" and entries[3].reason == "bad p95"


def test_rollback_to_named_version_and_served_at(three_versions, operator):
    store = open_store(three_versions)
    before = time.time()
    time.sleep(0.01)
    registry.rollback(three_versions, operator, "pin", to="v1")
    assert registry.alias_target(store) == "v1"
    assert registry.served_at(store, before) == "v3"
    assert registry.served_at(store, time.time()) == "v1"
    assert registry.served_at(store, 0) is None
    periods = registry.production_periods(store)
    assert [p[0] for p in periods] == ["v1", "v2", "v3", "v1"] and periods[-1][2] is None


def test_moves_need_an_operator_and_a_reason(three_versions):
    viewer = Actor("ann", "viewer", "dashboard")
    with pytest.raises(PermissionDenied, match="needs an operator"):
        registry.rollback(three_versions, viewer, "because")
    with pytest.raises(PreflightError, match="reason"):
        registry.promote(three_versions, "v1", Actor("op", "operator", "cli"), "  ")
    assert registry.alias_target(open_store(three_versions)) == "v3"


def test_promote_refuses_unknown_current_and_stale_expectations(three_versions, operator):
    with pytest.raises(NotFoundError):
        registry.promote(three_versions, "nope", operator, "x")
    with pytest.raises(ConflictError, match="already production"):
        registry.promote(three_versions, "v3", operator, "x", skip_preflight=True)
    with pytest.raises(ConflictError, match="moved to 'v3' meanwhile"):
        registry.move_alias(three_versions, "v1", operator, "x", expected_from="v2")


def test_tampered_artifact_is_refused_everywhere(three_versions, operator):
    path = three_versions.model_store_path / "v1" / "model.joblib"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    store = open_store(three_versions)
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        registry.load_version_model(three_versions, registry.get_version(store, "v1"))
    with pytest.raises(PreflightError, match="checksum mismatch"):
        registry.promote(three_versions, "v1", operator, "x")
    with pytest.raises(PreflightError, match="checksum mismatch"):
        registry.rollback(three_versions, operator, "x", to="v1")
    assert registry.alias_target(store) == "v3"
    assert len(registry.ledger_entries(store)) == 3


def test_preflight_reports_schema_incompatibility(any_workspace, demo_frame, operator):
    train_version(any_workspace, "wide", demo_frame, "default", actor=operator)
    narrow = demo_frame.drop(columns=["credit_score"]).assign(extra_signal=1.0)
    train_version(any_workspace, "other", narrow, "default", actor=operator, then="none")
    report = registry.preflight(any_workspace, "other")
    assert not report.ok
    assert any("new required column 'extra_signal'" in f for f in report.failures())
    with pytest.raises(PreflightError, match="extra_signal"):
        registry.promote(any_workspace, "other", operator, "try")


def test_candidate_can_be_discarded(any_workspace, demo_frame, operator):
    train_version(any_workspace, "p", demo_frame, "default", actor=operator)
    train_version(any_workspace, "c", demo_frame, "default", actor=operator, then="candidate")
    store = open_store(any_workspace)
    entry = registry.clear_candidate(any_workspace, operator, "worse than production")
    assert entry is not None and entry.from_version == "c"
    assert registry.alias_target(store, "candidate") is None
    assert registry.clear_candidate(any_workspace, operator, "again") is None
    assert registry.version_exists(store, "c")


def test_promoting_the_candidate_clears_it(any_workspace, demo_frame, operator):
    train_version(any_workspace, "p", demo_frame, "default", actor=operator)
    train_version(any_workspace, "c", demo_frame, "default", actor=operator, then="candidate")
    registry.promote(any_workspace, "c", operator, "better")
    state = registry.alias_state(open_store(any_workspace))
    assert state["production"][0] == "c" and state["candidate"][0] is None


def test_malformed_version_ids_are_refused(any_workspace):
    store = open_store(any_workspace)
    for bad in ["..", ".", "a/b", "x" * 65, "", "../etc", ".hidden", "sp ace"]:
        with pytest.raises(Exception, match="malformed|may not start"):
            registry.get_version(store, bad)


def _move_during_preflight(monkeypatch, settings, to: str, operator) -> None:
    """Make the next pre-flight check end with another operator moving production to ``to``."""
    real = registry.preflight
    fired = []

    def preflight_then_someone_else_moves(*args, **kwargs):
        report = real(*args, **kwargs)
        if not fired:
            fired.append(to)
            registry.move_alias(settings, to, Actor("bob", "operator", "cli"), "bob was faster", skip_preflight=True)
        return report

    monkeypatch.setattr(registry, "preflight", preflight_then_someone_else_moves)


def test_a_move_made_while_preflight_ran_is_not_overridden(three_versions, operator, monkeypatch):
    store = open_store(three_versions)
    _move_during_preflight(monkeypatch, three_versions, "v2", operator)
    with pytest.raises(ConflictError, match="production moved from 'v3' to 'v2' while the pre-flight check"):
        registry.promote(three_versions, "v1", operator, "v1 was better")
    assert registry.alias_target(store) == "v2"
    last = registry.ledger_entries(store)[0]
    assert (last.from_version, last.to_version, last.actor) == ("v3", "v2", "cli:bob")


def test_the_same_version_back_in_production_still_counts_as_a_move(three_versions, operator, monkeypatch):
    # v3 -> v2 -> v3 while the check ran: same version, but history moved under the check (generation).
    real = registry.preflight
    fired = []

    def preflight_then_two_moves(*args, **kwargs):
        report = real(*args, **kwargs)
        if not fired:
            fired.append(True)
            bob = Actor("bob", "operator", "cli")
            registry.move_alias(three_versions, "v2", bob, "try v2", skip_preflight=True)
            registry.move_alias(three_versions, "v3", bob, "back to v3", skip_preflight=True)
        return report

    monkeypatch.setattr(registry, "preflight", preflight_then_two_moves)
    with pytest.raises(ConflictError, match="while the pre-flight check"):
        registry.rollback(three_versions, operator, "pin v1", to="v1")
    assert registry.alias_target(open_store(three_versions)) == "v3"


def test_a_caller_can_name_what_it_expects_to_replace(three_versions, operator):
    store = open_store(three_versions)
    _, generation = registry.alias_state(store)["production"]
    with pytest.raises(ConflictError, match="moved to 'v3' meanwhile"):
        registry.promote(three_versions, "v1", operator, "x", expected_from="v2")
    with pytest.raises(ConflictError, match="moved to 'v3' meanwhile"):
        registry.rollback(three_versions, operator, "x", expected_from="v1")
    with pytest.raises(ConflictError, match="generation"):
        registry.promote(three_versions, "v1", operator, "x", expected_generation=generation - 1)
    assert registry.alias_target(store) == "v3"
    entry = registry.promote(three_versions, "v1", operator, "x", expected_from="v3", expected_generation=generation)
    assert (entry.from_version, entry.to_version) == ("v3", "v1")


# -- the registry owns its tables --------------------------------------------------------------------
OWNED = ("aliases", "ledger")
WRITES = ("insert", "update", "delete")
RAW_SQL_WRITE = re.compile(r"\b(insert\s+into|update|delete\s+from)\s+[\"'`]?(aliases|ledger)\b", re.IGNORECASE)
# The store creates the two empty alias rows with the schema: no alias moves and no ledger row is written.
ALLOWED = {("opscore/store.py", "_ensure_schema", "insert", "aliases")}


def _named_table(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def registry_table_writes(path: Path, relative: str) -> list[str]:
    """Every insert/update/delete on ``aliases`` or ``ledger`` in one source file, as "file:line what"."""
    found = []
    tree = ast.parse(path.read_text(), filename=relative)
    functions = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]

    loops = [f for f in ast.walk(tree) if isinstance(f, ast.For) and isinstance(f.target, ast.Name)
             and isinstance(f.iter, (ast.Tuple, ast.List))]

    def enclosing(line: int) -> str:
        inside = [f for f in functions if f.lineno <= line <= (f.end_lineno or f.lineno)]
        return max(inside, key=lambda f: f.lineno).name if inside else "<module>"

    def tables(name: str | None, line: int) -> list[str | None]:
        """``name``, or the tables a ``for name in (a, b): ...`` loop around ``line`` gives it."""
        for loop in loops:
            if loop.target.id == name and loop.lineno <= line <= (loop.end_lineno or loop.lineno):
                return [_named_table(element) for element in loop.iter.elts]
        return [name]

    for node in ast.walk(tree):
        write = table = None
        if isinstance(node, ast.Call):
            called = node.func
            if isinstance(called, ast.Name) and called.id in WRITES and node.args:
                write, table = called.id, _named_table(node.args[0])  # insert(ledger), update(aliases)
            elif isinstance(called, ast.Attribute) and called.attr in WRITES:
                if node.args:  # sqlalchemy.insert(ledger), postgresql.insert(aliases)
                    write, table = called.attr, _named_table(node.args[0])
                else:  # ledger.insert(), aliases.update()
                    write, table = called.attr, _named_table(called.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = RAW_SQL_WRITE.search(node.value)
            if match:
                write, table = match.group(1).split()[0].lower(), match.group(2).lower()
        for written in tables(table, getattr(node, "lineno", 0)):
            if written in OWNED and (relative, enclosing(node.lineno), write, written) not in ALLOWED:
                found.append(f"{relative}:{node.lineno} {write} {written}")
    return found


def test_only_the_registry_writes_the_alias_and_ledger_tables():
    package = Path(opscore.__file__).parent
    outside = [p for p in sorted(package.rglob("*.py")) if p != package / "models" / "registry.py"]
    found = [hit for p in outside for hit in registry_table_writes(p, str(p.relative_to(package.parent)))]
    assert found == [], "aliases and the ledger move only through opscore/models/registry.py"
    # The scan sees the registry's own writes, so an empty list above is not for want of looking.
    own = registry_table_writes(package / "models" / "registry.py", "opscore/models/registry.py")
    assert {hit.split(" ", 1)[1] for hit in own} >= {"insert ledger", "update aliases", "delete ledger"}
