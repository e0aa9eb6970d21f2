"""API tokens: scopes, several at once, stored as hashes, rotated while a service keeps running."""

from __future__ import annotations

import json
import stat

import pytest

from opscore.access import tokens
from opscore.access.actors import Actor
from opscore.config import replace
from opscore.exceptions import (
    BadInputError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    Unauthenticated,
)

CLI = Actor("ann", "operator", "cli")
VIEWER = Actor("viewer", "viewer", "dashboard")


@pytest.fixture
def unconfigured(workspace):
    return replace(workspace, admin_token="")


def test_a_token_is_shown_once_and_stored_only_as_a_hash(unconfigured):
    value = tokens.add_token(unconfigured, CLI, "labeller", "feedback")
    path = unconfigured.secrets_path / "tokens.json"
    assert len(value) >= 32 and value not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [stored] = json.loads(path.read_text())["tokens"]
    assert (stored["name"], stored["scopes"], stored["created_by"]) == ("labeller", ["feedback"], "cli:ann")
    listed = {t.name: t for t in tokens.list_tokens(unconfigured)}
    assert listed["labeller"].scopes == ("feedback",)


def test_scopes_admin_implies_feedback_and_feedback_is_only_feedback(unconfigured):
    labeller = tokens.add_token(unconfigured, CLI, "labeller", "feedback")
    deployer = tokens.add_token(unconfigured, CLI, "deployer", "admin")
    book = tokens.TokenBook(unconfigured)
    assert book.authorize(labeller, "feedback") == Actor("labeller", "feedback", "http")
    assert book.authorize(deployer, "feedback") == Actor("deployer", "operator", "http")
    assert book.authorize(deployer, "admin") == Actor("deployer", "operator", "http")
    with pytest.raises(PermissionDenied, match="'labeller' has the feedback scope; this needs admin"):
        book.authorize(labeller, "admin")


def test_no_token_or_an_unknown_one_is_unauthenticated(unconfigured):
    tokens.add_token(unconfigured, CLI, "deployer", "admin")
    book = tokens.TokenBook(unconfigured)
    for presented in (None, "", "not-a-token"):
        with pytest.raises(Unauthenticated):
            book.authorize(presented, "feedback")


def test_the_environment_token_is_an_admin_token_named_env(workspace):
    assert tokens.TokenBook(workspace).authorize("test-token", "admin") == Actor("env", "operator", "http")
    assert [(t.name, t.scopes) for t in tokens.list_tokens(workspace)] == [("env", ("admin",))]
    with pytest.raises(BadInputError, match="OPSCORE_ADMIN_TOKEN"):
        tokens.revoke_token(workspace, CLI, "env")


def test_tokens_added_and_revoked_reach_a_running_book_without_a_restart(unconfigured):
    book = tokens.TokenBook(unconfigured)
    old = tokens.add_token(unconfigured, CLI, "deployer", "admin")
    assert book.authorize(old, "admin").name == "deployer"
    new = tokens.add_token(unconfigured, CLI, "deployer-2", "admin")
    tokens.revoke_token(unconfigured, CLI, "deployer")
    assert book.authorize(new, "admin").name == "deployer-2"
    with pytest.raises(Unauthenticated):
        book.authorize(old, "admin")


def test_the_first_start_generates_an_admin_token_once_unless_one_exists(unconfigured):
    generated = tokens.ensure_admin_token(unconfigured)
    assert generated.value and tokens.local_admin_token(unconfigured) == generated.value
    assert stat.S_IMODE(generated.path.stat().st_mode) == 0o600
    assert tokens.ensure_admin_token(unconfigured).value is None  # shown once only
    assert tokens.TokenBook(unconfigured).authorize(generated.value, "admin").name == "generated"
    tokens.add_token(unconfigured, CLI, "deployer", "admin")
    tokens.revoke_token(unconfigured, CLI, "generated")
    assert tokens.local_admin_token(unconfigured) is None
    assert tokens.ensure_admin_token(unconfigured).value is None  # an admin token exists: none generated
    with pytest.raises(Unauthenticated):
        tokens.TokenBook(unconfigured).authorize(generated.value, "admin")


def test_the_local_admin_token_is_the_environment_one_first(workspace):
    tokens.ensure_admin_token(replace(workspace, admin_token=""))
    assert tokens.local_admin_token(workspace) == "test-token"


@pytest.mark.parametrize(("name", "scope", "error", "message"), [
    ("bad name!", "admin", BadInputError, "letters, digits"),
    ("", "admin", BadInputError, "letters, digits"),
    ("env", "admin", BadInputError, "reserved"),
    ("generated", "feedback", BadInputError, "reserved"),
    ("ok", "root", BadInputError, "feedback or admin"),
])
def test_bad_names_and_scopes_are_refused(unconfigured, name, scope, error, message):
    with pytest.raises(error, match=message):
        tokens.add_token(unconfigured, CLI, name, scope)
    assert not (unconfigured.secrets_path / "tokens.json").exists()


def test_names_are_unique_and_revoking_an_unknown_one_says_so(unconfigured):
    tokens.add_token(unconfigured, CLI, "labeller", "feedback")
    with pytest.raises(ConflictError, match="already exists"):
        tokens.add_token(unconfigured, CLI, "labeller", "admin")
    with pytest.raises(NotFoundError, match="no token named 'nobody'"):
        tokens.revoke_token(unconfigured, CLI, "nobody")


def test_only_an_operator_manages_tokens(unconfigured):
    with pytest.raises(PermissionDenied, match="needs an operator"):
        tokens.add_token(unconfigured, VIEWER, "mine", "admin")
    tokens.add_token(unconfigured, CLI, "labeller", "feedback")
    with pytest.raises(PermissionDenied, match="needs an operator"):
        tokens.revoke_token(unconfigured, VIEWER, "labeller")
    assert [t.name for t in tokens.list_tokens(unconfigured)] == ["labeller"]


def test_a_damaged_tokens_file_is_named(unconfigured):
    path = unconfigured.secrets_path / "tokens.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(IntegrityError, match="tokens.json"):
        tokens.TokenBook(unconfigured).authorize("x", "admin")
