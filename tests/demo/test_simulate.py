"""The traffic simulator: its schedule and population, and a short run against a live service."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from opscore.access import tokens
from opscore.access.actors import Actor
from opscore.cli import main as cli
from opscore.demo.simulate import NEW_CATEGORY, Population, TrafficPlan, simulate
from opscore.exceptions import BadInputError
from opscore.store import open_store, predictions
from tests.local_servers import live_server


def test_a_plan_that_cannot_run_is_refused_naming_the_setting():
    with pytest.raises(BadInputError, match="rate must be above 0"):
        TrafficPlan(rate=0).check()
    with pytest.raises(BadInputError, match="malformed-share must be between 0 and 1"):
        TrafficPlan(malformed_share=1.5).check()
    with pytest.raises(BadInputError, match="drift must be one of"):
        TrafficPlan(drift="sideways").check()
    with pytest.raises(BadInputError, match="no column"):
        TrafficPlan(drift_features=("shoe_size",)).check()
    TrafficPlan(drift="gradual", drift_features=("credit_score",)).check()


def test_drift_schedules():
    none = TrafficPlan(duration=100, drift="none")
    sudden = TrafficPlan(duration=100, drift="sudden", drift_start=0.4, drift_strength=0.6)
    gradual = TrafficPlan(duration=100, drift="gradual", drift_start=0.5, drift_strength=1.0)
    assert [none.shift_at(t) for t in (0, 50, 99)] == [0, 0, 0]
    assert [sudden.shift_at(t) for t in (0, 39.9, 40, 99)] == [0, 0, 0.6, 0.6]
    assert [gradual.shift_at(t) for t in (0, 50, 75, 100)] == pytest.approx([0, 0, 0.5, 1.0])


def test_shifted_population_moves_and_drift_features_limit_what_moves():
    plain = Population(TrafficPlan(seed=3), pool_rows=2_000)
    calm = [plain.draw(0.0)[0] for _ in range(2_000)]
    stressed = [plain.draw(1.0)[0] for _ in range(2_000)]

    def mean(rows, column):
        return np.nanmean([np.nan if r[column] is None else r[column] for r in rows])

    assert mean(stressed, "credit_score") < mean(calm, "credit_score") - 15
    assert mean(stressed, "debt_to_income") > mean(calm, "debt_to_income") + 2

    only_score = Population(TrafficPlan(seed=3, drift_features=("credit_score",)), pool_rows=2_000)
    _ = [only_score.draw(0.0) for _ in range(2_000)]
    limited = [only_score.draw(1.0)[0] for _ in range(2_000)]
    assert [r["annual_income"] for r in limited] == [r["annual_income"] for r in calm]
    assert [r["credit_score"] for r in limited] == [r["credit_score"] for r in stressed]

    unseen = Population(TrafficPlan(seed=3, new_category_share=0.3), pool_rows=500)
    assert not any(unseen.draw(0.0)[0]["employment_type"] == NEW_CATEGORY for _ in range(300))
    share = np.mean([unseen.draw(0.5)[0]["employment_type"] == NEW_CATEGORY for _ in range(1_000)])
    assert 0.2 < share < 0.4


def test_every_malformed_request_is_refused_by_the_service(trained):
    population = Population(TrafficPlan(seed=5), pool_rows=100)
    with live_server(trained) as url, httpx.Client(base_url=url) as client:
        for _ in range(30):
            response = client.post("/predict", content=population.malformed(), headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500 and response.json()["detail"]
    with open_store(trained).read() as conn:
        assert conn.execute(select(predictions.c.id)).first() is None




def test_a_short_run_drifts_refuses_what_is_malformed_and_labels_what_it_answered(trained):
    plan = TrafficPlan(rate=40, duration=3, drift="sudden", drift_start=0.5, new_category_share=0.3,
                       malformed_share=0.2, burst_every=1.0, burst_size=15, label_delay=0.3, label_share=1.0, seed=9)
    seen: list[float] = []
    labeller = tokens.add_token(trained, Actor("tester", "operator", "cli"), "labeller", "feedback")
    with live_server(trained) as url:  # labels need only the feedback scope
        report = simulate(url, plan, token=labeller, progress=lambda elapsed, _report: seen.append(elapsed))
    assert report.failed == 0 and report.first_error is None, report.summary()
    assert report.malformed_accepted == 0 and report.unexpected_refusals == 0
    assert report.refused > 0 and report.answered + report.refused == report.sent
    assert report.sent > plan.rate * plan.duration  # the bursts came on top of the steady rate
    assert report.labels_sent == report.answered == report.labels_joined and report.labels_pending == 0
    assert report.versions == {"v1": report.answered}
    assert seen and seen[-1] == plan.duration

    with open_store(trained).read() as conn:
        logged = conn.execute(select(predictions.c.at, predictions.c.features, predictions.c.label)).all()
    assert len(logged) == report.answered
    assert all(row.label is not None for row in logged)
    first = min(row.at for row in logged)
    unseen = [row.at - first for row in logged if json.loads(row.features)["employment_type"] == NEW_CATEGORY]
    assert unseen and min(unseen) > 1.0  # only once the sudden drift had begun (half way through 3 s)


def test_cli_simulate_prints_a_summary(trained, capsys):
    with live_server(trained) as url:
        code = cli.main(["simulate", "--url", url, "--rate", "20", "--duration", "1", "--label-delay", "0", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "answered" in out and "labels sent" in out
    assert cli.main(["simulate", "--url", "http://127.0.0.1:9", "--duration", "1", "--quiet"]) == 2
    assert "cannot reach the service" in capsys.readouterr().err
