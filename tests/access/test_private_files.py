"""Private files: owner-only folders and files, written whole, moved out of metrics/, warned about."""

from __future__ import annotations

import logging
import stat
import threading

import pytest

from opscore.access import private_files
from opscore.config import replace


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_secrets_folder_is_created_owner_only(workspace):
    folder = private_files.secrets_dir(workspace)
    assert folder == workspace.workspace / ".opscore" and mode(folder) == 0o700


@pytest.mark.parametrize("overwrite", [False, True], ids=["first-wins", "replace"])
def test_threads_writing_one_private_file_never_corrupt_it(tmp_path, overwrite):
    path = tmp_path / "secrets" / "admin_token"
    texts = [str(i) * 200_000 for i in range(8)]
    start, errors = threading.Barrier(len(texts)), []

    def write(text: str) -> None:
        start.wait()
        try:
            private_files.write_private(path, text, overwrite=overwrite)
        except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
            errors.append(exc)

    for _ in range(5):
        path.unlink(missing_ok=True)
        threads = [threading.Thread(target=write, args=(t,)) for t in texts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert path.read_text() in texts and mode(path) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["admin_token"]  # no temporary file left behind


def test_first_writer_wins_unless_told_to_replace(tmp_path):
    path = tmp_path / "token"
    assert private_files.write_private(path, "first", overwrite=False)
    assert not private_files.write_private(path, "second", overwrite=False)
    assert path.read_text() == "first"
    assert private_files.write_private(path, "third", overwrite=True) and path.read_text() == "third"


def test_secrets_left_in_metrics_by_an_older_opscore_move_to_their_folder(workspace):
    legacy = workspace.workspace / "metrics"
    legacy.mkdir()
    (legacy / "admin_token").write_text("old-token")
    (legacy / "operator_password.json").write_text('{"salt": "00", "scrypt": "11"}')
    (legacy / "demo_workspace.json").write_text('{"versions": ["v1", "v2"]}')
    (legacy / "opscore.db").write_text("")
    folder = private_files.secrets_dir(workspace)
    assert (folder / "admin_token").read_text() == "old-token"
    assert (folder / "operator_password.json").exists() and (folder / "demo_workspace.json").exists()
    assert all(mode(p) == 0o600 for p in folder.iterdir())
    assert sorted(p.name for p in legacy.iterdir()) == ["opscore.db"]  # the database stays where it is


def test_a_configured_secrets_dir_is_used_as_it_is(workspace, tmp_path):
    legacy = workspace.workspace / "metrics"
    legacy.mkdir()
    (legacy / "admin_token").write_text("old-token")
    settings = replace(workspace, secrets_dir=tmp_path / "elsewhere")
    assert private_files.secrets_dir(settings) == tmp_path / "elsewhere"
    assert (legacy / "admin_token").exists() and not (tmp_path / "elsewhere" / "admin_token").exists()


def test_a_secret_others_can_read_is_warned_about_once(workspace, caplog, capsys):
    folder = private_files.secrets_dir(workspace)
    exposed, kept = folder / "admin_token", folder / "operator_password.json"
    exposed.write_text("t")
    exposed.chmod(0o644)
    private_files.write_private(kept, "{}", overwrite=True)
    with caplog.at_level(logging.WARNING, logger="opscore.access.private_files"):
        assert private_files.warn_exposed_files(workspace) == [exposed]
    err = capsys.readouterr().err
    assert f"{exposed} can be read by other users" in err and f"chmod 600 {exposed}" in err
    assert str(kept) not in err
    assert any(str(exposed) in r.getMessage() for r in caplog.records)
    assert private_files.warn_exposed_files(workspace) == [exposed]
    assert capsys.readouterr().err == ""  # once per process


def test_a_database_others_can_read_is_warned_about(workspace, capsys):
    from opscore.store import open_store

    open_store(workspace)
    database = workspace.workspace / "metrics" / "opscore.db"
    database.chmod(0o644)
    assert database in private_files.warn_exposed_files(workspace)
    assert f"{database} can be read by other users" in capsys.readouterr().err
