"""Feature rollups at ingestion: written with the rows, summed exactly, off when the setting says so."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from opscore.config import replace
from opscore.demo.credit_data import credit_applications
from opscore.serving.feature_rollups import FEATURE, PREDICTION, window_sums
from opscore.serving.predictor import score_frame
from opscore.serving.telemetry_writer import TelemetryWriter, apply_rollup_retention
from opscore.store import feature_rollups, multivariate_rollups, open_store
from tests.conftest import OPERATOR


@pytest.fixture
def live(any_workspace, demo_frame):
    from opscore.models.training import train_version

    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    return any_workspace


def _score(settings, frame) -> None:
    writer = TelemetryWriter(settings).start()
    score_frame(settings, frame, source="api", telemetry=writer)
    assert writer.close()


def test_rollups_count_every_logged_row_once_per_column_and_category(live):
    frame = credit_applications(n_rows=700, seed=31).drop(columns="default")
    frame.loc[:9, "employment_type"] = "astronaut"
    start = time.time() - 1
    _score(live, frame)
    _score(live, frame.head(300))
    sums = window_sums(open_store(live), "v1", start, time.time() + 1)
    income = sums.columns[(FEATURE, "annual_income")]
    assert income.rows == 1_000
    assert income.missing == frame["annual_income"].isna().sum() + frame["annual_income"].head(300).isna().sum()
    assert income.counts.sum() + income.below + income.above + income.missing == 1_000
    job = sums.columns[(FEATURE, "employment_type")]
    assert job.unseen == 20 and dict(job.unseen_names) == {"astronaut": 20}
    assert job.counts.sum() + job.unseen + job.missing == 1_000
    assert sums.columns[(PREDICTION, "score")].rows == 1_000
    assert sums.errors is not None and sums.errors.count == 1_000 and sums.errors.histogram.sum() == 1_000

    removed = apply_rollup_retention(open_store(live), 0)  # zero days: every rollup row is past it
    assert removed > 0
    with open_store(live).read() as conn:
        assert conn.execute(select(func.count()).select_from(feature_rollups)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(multivariate_rollups)).scalar() == 0


def test_feature_rollups_off_writes_predictions_only(live):
    settings = replace(live, feature_rollups=False)
    _score(settings, credit_applications(n_rows=50, seed=32).drop(columns="default"))
    with open_store(settings).read() as conn:
        assert conn.execute(select(func.count()).select_from(feature_rollups)).scalar() == 0


def test_a_failed_rollup_write_keeps_the_rows_out_too(live, monkeypatch):
    """Rows and their rollups share one transaction: a failing rollup merge writes neither."""
    from opscore.serving import feature_rollups as module
    from opscore.store import predictions

    def broken(*_args, **_kwargs):
        raise RuntimeError("rollup merge failed")

    monkeypatch.setattr(module, "merge", broken)
    writer = TelemetryWriter(live)
    score_frame(live, credit_applications(n_rows=20, seed=33).drop(columns="default"), source="api", telemetry=writer)
    assert not writer.flush(timeout=0.3)
    with open_store(live).read() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar() == 0
