"""Generated secrets are created once, kept private and checked in constant time."""

from __future__ import annotations

import stat

import pytest

from opscore.access import credentials as auth
from opscore.config import replace
from opscore.exceptions import PermissionDenied


@pytest.fixture
def unconfigured(workspace):
    return replace(workspace, admin_token="", operator_password="")


def test_admin_token_is_generated_once_with_mode_0600(unconfigured):
    token, generated = auth.admin_token(unconfigured)
    assert generated.value == token and len(token) >= 32
    assert stat.S_IMODE(generated.path.stat().st_mode) == 0o600
    again, second = auth.admin_token(unconfigured)
    assert again == token and second.value is None  # shown once only
    assert auth.token_matches(token, token) and not auth.token_matches(token, token[:-1] + "x")
    assert not auth.token_matches(token, None)


def test_configured_token_wins(workspace):
    assert auth.admin_token(workspace)[0] == "test-token"


def test_operator_password_is_stored_only_as_a_hash(unconfigured):
    generated = auth.ensure_operator_password(unconfigured)
    assert generated.value and generated.value not in generated.path.read_text()
    assert stat.S_IMODE(generated.path.stat().st_mode) == 0o600
    assert auth.ensure_operator_password(unconfigured).value is None
    assert auth.operator_actor(unconfigured, "ann", generated.value).role == "operator"
    with pytest.raises(PermissionDenied, match="wrong operator password"):
        auth.operator_actor(unconfigured, "ann", generated.value + "x")


def test_configured_password_and_viewer(workspace):
    assert auth.check_operator_password(workspace, "test-operator")
    assert not auth.check_operator_password(workspace, "guess")
    assert auth.viewer_actor().role == "viewer"
