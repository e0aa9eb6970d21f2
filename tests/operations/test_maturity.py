"""The scorecard climbs with what the workspace really did, and says which capabilities do not exist yet."""

from __future__ import annotations

from opscore.models import registry
from opscore.models.retraining import retrain
from opscore.operations.backup import backup, verify_by_restoring
from opscore.operations.maturity import AREAS, maturity_scorecard
from tests.conftest import OPERATOR, log_traffic


def test_an_empty_workspace_is_basic_everywhere_with_a_next_step(any_workspace):
    card = maturity_scorecard(any_workspace)
    frame = card.to_df()
    assert list(frame["area"]) == list(AREAS) and set(frame["level"]) == {"basic"}
    assert frame["next_step"].str.len().min() > 10
    # Alerting exists now, so an empty workspace is told to define its first rule.
    assert card.to_dict()["areas"]["alerting"]["next_step"] == "define an alert rule"
    assert card.to_dict()["areas"]["alerting"]["evidence"] == ["nothing yet"]


def test_levels_follow_promotions_rollbacks_retraining_traffic_and_backups(trained, tmp_path):
    card = maturity_scorecard(trained)
    assert card.level_of("deployment") == "basic" and card.level_of("monitoring") == "basic"
    registry.promote(trained, "v2", OPERATOR, "better holdout")
    registry.rollback(trained, OPERATOR, "p95 doubled after the promotion")
    log_traffic(trained, 30)
    retrain(trained, "v1", actor=OPERATOR, version_id="v3")
    backup(trained, tmp_path / "b", OPERATOR)
    card = maturity_scorecard(trained)
    assert card.level_of("deployment") == "advanced"
    assert "canary" in next(a for a in card.areas if a.area == "deployment").next_step
    assert card.level_of("incident response") == "standard"
    assert card.level_of("monitoring") == "standard"
    assert card.level_of("retraining") == "standard"
    assert card.level_of("data management") == "standard"
    assert verify_by_restoring(trained, tmp_path / "b", tmp_path / "scratch").ok
    assert maturity_scorecard(trained).level_of("data management") == "advanced"


def test_monitoring_needs_health_checks_a_schedule_ran_not_a_schedule_edit(trained):
    import time

    from opscore.operations.schedules import edit_schedule
    from opscore.operations.tasks import create_task
    from opscore.operations.worker import run_one
    from opscore.store import open_store, predictions

    log_traffic(trained, 30)
    with open_store(trained).write() as conn:
        conn.execute(predictions.update().values(label=1, labelled_at=time.time()))
    assert maturity_scorecard(trained).level_of("monitoring") == "advanced"  # logged and labelled
    edit_schedule(trained, "daily", cron="0 4 * * *", actor=OPERATOR)
    assert maturity_scorecard(trained).level_of("monitoring") == "advanced"  # an edit is not a run
    create_task(trained, procedure="health_checks", created_by="schedule:daily")
    assert run_one(trained).status == "success"
    assert maturity_scorecard(trained).level_of("monitoring") == "expert"
