"""The operator password: generated once, stored as a hash, checked in constant time, slow to guess."""

from __future__ import annotations

import stat

import pytest

from opscore.access import credentials as auth
from opscore.config import replace
from opscore.exceptions import PermissionDenied, TooManyAttempts


@pytest.fixture
def unconfigured(workspace):
    return replace(workspace, admin_token="", operator_password="")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_operator_password_is_stored_only_as_a_hash(unconfigured):
    generated = auth.ensure_operator_password(unconfigured)
    assert generated.path == unconfigured.workspace / ".opscore" / "operator_password.json"
    assert generated.value and generated.value not in generated.path.read_text()
    assert stat.S_IMODE(generated.path.stat().st_mode) == 0o600
    assert auth.ensure_operator_password(unconfigured).value is None
    throttle = auth.SignInThrottle()
    assert auth.operator_actor(unconfigured, "ann", generated.value, throttle=throttle).role == "operator"
    with pytest.raises(PermissionDenied, match="wrong operator password"):
        auth.operator_actor(unconfigured, "ann", generated.value + "x", throttle=throttle)


def test_configured_password_and_viewer(workspace):
    assert auth.check_operator_password(workspace, "test-operator")
    assert not auth.check_operator_password(workspace, "guess")
    assert auth.viewer_actor().role == "viewer"


def test_wrong_passwords_in_a_row_make_each_next_attempt_wait_longer(workspace):
    clock = Clock()
    throttle = auth.SignInThrottle(free_attempts=3, first_wait=2.0, max_wait=30.0, clock=clock)
    for _ in range(3):
        with pytest.raises(PermissionDenied, match="wrong operator password"):
            auth.operator_actor(workspace, "mallory", "guess", throttle=throttle)
    # The third failure started a 2 s wait: even the right password is refused until it is over.
    with pytest.raises(TooManyAttempts, match="too many attempts, wait 2 s"):
        auth.operator_actor(workspace, "ann", "test-operator", throttle=throttle)
    clock.now += 1.5
    with pytest.raises(TooManyAttempts, match="wait 1 s"):
        auth.operator_actor(workspace, "mallory", "guess", throttle=throttle)
    waits = []
    for _ in range(6):
        clock.now += 1_000
        with pytest.raises(PermissionDenied, match="wrong operator password"):
            auth.operator_actor(workspace, "mallory", "guess", throttle=throttle)
        with pytest.raises(TooManyAttempts) as refused:
            auth.operator_actor(workspace, "mallory", "guess", throttle=throttle)
        waits.append(int(str(refused.value).split("wait ")[1].split(" s")[0]))
    assert waits == [4, 8, 16, 30, 30, 30]  # doubling, up to the cap
    clock.now += 30
    assert auth.operator_actor(workspace, "ann", "test-operator", throttle=throttle).name == "ann"
    with pytest.raises(PermissionDenied, match="wrong operator password"):
        auth.operator_actor(workspace, "ann", "typo", throttle=throttle)  # a success starts the count again


def test_the_process_wide_throttle_is_the_default(workspace, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(auth, "SIGN_IN_THROTTLE", auth.SignInThrottle(free_attempts=1, clock=clock))
    with pytest.raises(PermissionDenied, match="wrong operator password"):
        auth.operator_actor(workspace, "mallory", "guess")
    with pytest.raises(TooManyAttempts, match="too many attempts, wait 1 s"):
        auth.operator_actor(workspace, "mallory", "guess")
