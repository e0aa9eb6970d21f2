"""The dashboard shell: navigation, sign-in, the first-start password, errors shown as messages."""

from __future__ import annotations

from app_under_test import DASHBOARD, run_page
from streamlit.testing.v1 import AppTest

from opscore.access import credentials
from opscore.access.actors import Actor


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="operator_name").input(name)
    at.text_input(key="operator_password").input(password)
    return at.button(key="sign_in").click().run()


def test_operator_signs_in_with_the_password_and_out_again(demo_workspace):
    at = run_page("pages/versions.py")
    assert at.button(key="rollback").disabled
    sign_in(at, "alice", "test-operator")
    assert not at.exception
    assert at.session_state["actor"] == Actor("alice", "operator", "dashboard")
    assert any("Signed in as **alice**" in m.value for m in at.sidebar.markdown)
    assert not at.button(key="rollback").disabled
    at.button(key="sign_out").click().run()
    assert "actor" not in at.session_state
    assert at.button(key="rollback").disabled


def test_a_wrong_password_is_refused_with_a_message(demo_workspace):
    at = sign_in(run_page("pages/versions.py"), "mallory", "guess")
    assert not at.exception
    assert any("wrong operator password" in e.value for e in at.sidebar.error)
    assert "actor" not in at.session_state
    assert at.button(key="rollback").disabled


def test_failed_sign_ins_make_the_next_attempt_wait(demo_workspace, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(credentials, "SIGN_IN_THROTTLE",
                        credentials.SignInThrottle(free_attempts=2, first_wait=5.0, clock=lambda: clock[0]))
    at = run_page("pages/versions.py")
    for _ in range(2):
        sign_in(at, "mallory", "guess")
    sign_in(at, "alice", "test-operator")  # the right password, but too soon
    assert not at.exception
    assert any("too many attempts, wait 5 s" in e.value for e in at.sidebar.error)
    assert "actor" not in at.session_state
    clock[0] += 5
    sign_in(at, "alice", "test-operator")
    assert at.session_state["actor"].name == "alice"


def test_first_start_generates_the_operator_password_and_shows_it_once(workspace, monkeypatch, capfd):
    monkeypatch.delenv("OPSCORE_OPERATOR_PASSWORD")
    at = run_page()
    shown = [i.value for i in at.info if "First start" in i.value]
    assert len(shown) == 1
    password = shown[0].split("**`")[1].split("`**")[0]
    assert password in capfd.readouterr().err  # and in the terminal log
    assert (workspace.workspace / ".opscore" / "operator_password.json").exists()
    at.run()
    assert any("First start" in i.value for i in at.info)  # still there for this person until noted
    at.button(key="dismiss_password").click().run()
    assert not any("First start" in i.value for i in at.info)
    sign_in(at, "root", password)
    assert at.session_state["actor"].role == "operator"
    later = AppTest.from_file(DASHBOARD, default_timeout=60)
    later.run()
    assert not any("First start" in i.value for i in later.info)  # never shown to anyone else


def test_an_unreachable_store_is_a_message_not_a_traceback(workspace, monkeypatch):
    monkeypatch.setenv("OPSCORE_DB_URL", "postgresql+psycopg://nobody:nothing@127.0.0.1:9/none?connect_timeout=1")
    at = run_page()
    assert not at.exception
    assert any("unavailable" in e.value for e in at.error)


def test_a_secret_others_can_read_is_warned_about_at_start(workspace, capfd):
    exposed = workspace.workspace / ".opscore" / "admin_token"
    exposed.parent.mkdir()
    exposed.write_text("token")
    exposed.chmod(0o644)
    at = run_page()
    assert not at.exception
    assert f"{exposed} can be read by other users" in capfd.readouterr().err
