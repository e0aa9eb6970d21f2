"""Backups under live traffic, restored into an empty workspace; refused when a checksum fails or data would be lost."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from opscore.config import Settings, replace
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import BadInputError, ConflictError, IntegrityError, PermissionDenied
from opscore.models import registry
from opscore.operations.backup import MANIFEST, backup, restore, verify_backup
from opscore.serving.predictor import score_frame
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import dispose_stores, open_store, predictions
from tests.conftest import OPERATOR


def _state(settings: Settings) -> tuple[list, dict, list]:
    store = open_store(settings)
    versions = [(v.version_id, v.artifact_sha256) for v in registry.list_versions(store)]
    aliases = {name: target for name, (target, _generation) in registry.alias_state(store).items()}
    ledger = [(e.at, e.alias, e.from_version, e.to_version, e.actor, e.reason)
              for e in registry.ledger_entries(store, newest_first=False)]
    return versions, aliases, ledger


def _request_ids(settings: Settings) -> set[str]:
    with open_store(settings).read() as conn:
        return set(conn.execute(select(predictions.c.request_id)).scalars())


def _empty_workspace(tmp_path: Path, settings: Settings) -> Settings:
    return replace(settings, workspace=tmp_path / "restored", model_store=Path("model_store"), db_url="")


def test_a_backup_under_live_traffic_restores_versions_aliases_ledger_and_every_earlier_prediction(served, tmp_path):
    registry.promote(served, "v2", OPERATOR, "planted promotion for the ledger")
    registry.rollback(served, OPERATOR, "planted rollback for the ledger")
    writer = TelemetryWriter(served).start()
    frame = credit_applications(n_rows=40, seed=11).drop(columns="default")
    stop, logged_rounds = threading.Event(), []

    def live_traffic() -> None:
        while not stop.is_set():
            score_frame(served, frame, source="api", telemetry=writer)
            writer.flush()
            logged_rounds.append(1)

    thread = threading.Thread(target=live_traffic)
    thread.start()
    try:
        while len(logged_rounds) < 2:
            stop.wait(0.05)
        before = _request_ids(served)
        expected_state = _state(served)
        manifest = backup(served, tmp_path / "backup", OPERATOR)
        rounds_at_end = len(logged_rounds)
    finally:
        stop.set()
        thread.join()
        assert writer.close()
    assert len(_request_ids(served)) > len(before), "traffic kept being logged while the backup ran"
    assert rounds_at_end >= 2
    assert manifest.versions == 2 and manifest.database == "sqlite"

    empty = _empty_workspace(tmp_path, served)
    outcome = restore(empty, tmp_path / "backup", OPERATOR)
    dispose_stores()
    assert _state(empty) == expected_state
    assert before <= _request_ids(empty)
    # The restored versions load: their artifacts came back with checksums the registry accepts.
    store = open_store(empty)
    assert registry.load_version_model(empty, registry.get_version(store, "v2")) is not None
    assert outcome.replaced_model_store is None


def test_a_backup_never_copies_the_wal_file_and_lists_every_file_with_its_checksum(served, tmp_path):
    manifest = backup(served, tmp_path / "b", OPERATOR)
    names = set(manifest.files)
    assert "store.sqlite" in names and not any(n.endswith(("-wal", "-shm")) for n in names)
    assert any(n.startswith("model_store/v1/") for n in names)
    assert json.loads((tmp_path / "b" / MANIFEST).read_text())["files"] == manifest.files


def test_a_tampered_backup_is_refused_naming_the_file(served, tmp_path):
    backup(served, tmp_path / "b", OPERATOR)
    artifact = next((tmp_path / "b" / "model_store" / "v1").glob("model.*"))
    artifact.write_bytes(artifact.read_bytes() + b"x")
    with pytest.raises(IntegrityError, match="model_store/v1/model.joblib"):
        verify_backup(tmp_path / "b")
    with pytest.raises(IntegrityError, match="model_store/v1/model.joblib"):
        restore(_empty_workspace(tmp_path, served), tmp_path / "b", OPERATOR)


def test_a_workspace_with_data_is_replaced_only_with_force_and_its_model_store_kept(served, tmp_path):
    backup(served, tmp_path / "b", OPERATOR)
    registry.promote(served, "v2", OPERATOR, "after the backup")
    with pytest.raises(ConflictError, match="--force"):
        restore(served, tmp_path / "b", OPERATOR)
    outcome = restore(served, tmp_path / "b", OPERATOR, force=True)
    assert outcome.replaced_model_store is not None and (outcome.replaced_model_store / "v1").is_dir()
    reasons = [e.reason for e in registry.ledger_entries(open_store(served))]
    assert "after the backup" not in reasons


def test_backups_refuse_a_viewer_and_a_non_empty_target(served, tmp_path):
    from opscore.access.actors import Actor

    with pytest.raises(PermissionDenied):
        backup(served, tmp_path / "b", Actor("v", "viewer", "cli"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConflictError, match="not an empty folder"):
        backup(served, tmp_path / "full", OPERATOR)
    with pytest.raises(BadInputError, match="no manifest.json"):
        restore(served, tmp_path / "full", OPERATOR)


def test_cli_backup_and_restore(served, tmp_path, capsys):
    from opscore.cli.main import main

    assert main(["backup", "--to", str(tmp_path / "b"), "--quiet"]) == 0
    assert "2 versions" in capsys.readouterr().out
    assert main(["restore", "--from", str(tmp_path / "b"), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["restore", "--from", str(tmp_path / "b"), "--force", "--quiet"]) == 0


def test_a_postgresql_store_is_dumped_and_restored_into_an_empty_database(any_workspace, demo_frame, tmp_path):
    from opscore.models.training import train_version
    from tests.conftest import _drop_pg, _fresh_pg_schema_url, log_traffic

    if any_workspace.database_url.startswith("sqlite"):
        pytest.skip("the SQLite path is covered above")
    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    log_traffic(any_workspace, 30)
    before, state = _request_ids(any_workspace), _state(any_workspace)
    manifest = backup(any_workspace, tmp_path / "b", OPERATOR)
    assert manifest.database == "postgresql" and "store.pgdump" in manifest.files
    url = _fresh_pg_schema_url()
    try:
        empty = replace(any_workspace, workspace=tmp_path / "restored", model_store=Path("model_store"), db_url=url)
        restore(empty, tmp_path / "b", OPERATOR)
        assert _state(empty) == state and _request_ids(empty) == before
        with pytest.raises(BadInputError, match="postgresql store"):
            restore(_empty_workspace(tmp_path / "other", any_workspace), tmp_path / "b", OPERATOR)
    finally:
        dispose_stores()
        _drop_pg(url)
