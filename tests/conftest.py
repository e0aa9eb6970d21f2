"""Shared fixtures: a throw-away workspace per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from opscore.access.actors import Actor
from opscore.config import Settings, load_settings
from opscore.demo.credit_data import credit_applications
from opscore.store import dispose_stores

PG_URL = os.environ.get("OPSCORE_TEST_PG_URL", "")
OPERATOR = Actor("tester", "operator", "cli")


def _fresh_pg_schema_url() -> str:
    """A PostgreSQL database of its own for one test (created, dropped afterwards)."""
    name = f"opscore_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A SQLite workspace in tmp_path, also exported through OPSCORE_* for subprocesses."""
    yield from _workspace(tmp_path, monkeypatch, "")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_workspace(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The same test on SQLite and on PostgreSQL (skipped without OPSCORE_TEST_PG_URL)."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("OPSCORE_TEST_PG_URL is not set; .ci/run starts PostgreSQL and sets it")
        url = _fresh_pg_schema_url()
        try:
            yield from _workspace(tmp_path, monkeypatch, url)
        finally:
            dispose_stores()
            _drop_pg(url)
    else:
        yield from _workspace(tmp_path, monkeypatch, "")


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Settings]:
    for key in list(os.environ):
        if key.startswith("OPSCORE_") and key != "OPSCORE_TEST_PG_URL":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OPSCORE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("OPSCORE_OPERATOR_PASSWORD", "test-operator")
    monkeypatch.setenv("OPSCORE_ADMIN_TOKEN", "test-token")
    # The same ensemble, smaller: tests exercise the code path, not the model's quality.
    monkeypatch.setenv("OPSCORE_FOREST_TREES", "20")
    monkeypatch.setenv("OPSCORE_BOOSTING_ROUNDS", "30")
    if db_url:
        monkeypatch.setenv("OPSCORE_DB_URL", db_url)
    monkeypatch.chdir(tmp_path)
    dispose_stores()
    yield load_settings()
    dispose_stores()


@pytest.fixture(scope="session")
def demo_frame():
    """A smaller demo data set: fast to train, same shape as the real one."""
    return credit_applications(n_rows=1_500, seed=7)


@pytest.fixture
def operator() -> Actor:
    return OPERATOR


@pytest.fixture
def trained(workspace: Settings, demo_frame) -> Settings:
    """A workspace with v1 (production) and v2 (candidate), trained on the demo data."""
    from opscore.models.training import train_version

    train_version(workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    train_version(workspace, "v2", credit_applications(n_rows=1_500, seed=8), "default", actor=OPERATOR, then="candidate")
    return workspace


def log_traffic(settings: Settings, rows: int, version: str | None = None, seed: int = 5) -> None:
    """Score demo rows through the real predictor and wait until telemetry has logged them."""
    from opscore.serving.predictor import load_version, score_frame
    from opscore.serving.telemetry_writer import TelemetryWriter

    frame = credit_applications(n_rows=rows, seed=seed).drop(columns="default")
    writer = TelemetryWriter(settings).start()
    loaded = load_version(settings, version) if version else None
    score_frame(settings, frame, source="api", telemetry=writer, loaded=loaded)
    assert writer.close()


@pytest.fixture
def served(trained: Settings) -> Settings:
    """v1 production with 120 logged predictions, v2 candidate with 80 (as shadow traffic would log them)."""
    log_traffic(trained, 120)
    log_traffic(trained, 80, version="v2", seed=6)
    return trained
