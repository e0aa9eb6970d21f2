"""The HTTP service through FastAPI's TestClient: contracts, bad bodies, auth, telemetry, metrics."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opscore.access import tokens
from opscore.access.actors import Actor
from opscore.config import replace
from opscore.data.features import validate_records
from opscore.exceptions import StoreUnavailable
from opscore.models.registry import ledger_entries
from opscore.serving import predictor
from opscore.serving.http_api import create_app
from opscore.serving.predictor import load_version
from opscore.store import open_store, predictions
from opscore.views import latency, live, overview
from tests.local_servers import demo_rows

AUTH = {"Authorization": "Bearer test-token"}
CLI = Actor("ann", "operator", "cli")




def logged(settings, status: str | None = None) -> int:
    query = select(func.count()).select_from(predictions)
    if status:
        query = query.where(predictions.c.status == status)
    with open_store(settings).read() as conn:
        return conn.execute(query).scalar_one()


def flush(client: TestClient) -> None:
    assert client.app.state.serving.writer.flush(10)


@pytest.fixture(params=[True, False], ids=["batched", "unbatched"])
def client(request, trained):
    settings = replace(trained, batching=request.param)
    with TestClient(create_app(settings)) as c:
        yield c


def test_predict_answers_with_version_probabilities_and_request_ids(client, trained):
    rows = demo_rows(5)
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == "v1"
    assert len(body["predictions"]) == len(body["probabilities"]) == len(body["request_ids"]) == 5
    assert len(set(body["request_ids"])) == 5
    v1 = load_version(trained, "v1")
    expected = v1.predict_frame(validate_records(v1.schema, rows).frame)
    assert body["predictions"] == expected.predictions
    assert body["probabilities"] == expected.probabilities
    single = client.post("/predict", json={"features": rows[2]}).json()
    assert single["predictions"] == [expected.predictions[2]]
    flush(client)
    assert logged(trained) == 6


def test_null_values_are_imputed_and_extra_columns_warned_and_counted(client, trained):
    row = dict(demo_rows(1)[0], annual_income=None, employment_type=None, customer_note="vip")
    response = client.post("/predict", json={"instances": [row]})
    assert response.status_code == 200, response.text
    assert any("customer_note" in w for w in response.json()["warnings"])
    metrics = client.get("/metrics").text
    assert 'opscore_schema_warnings_total{model_version="v1"} 1.0' in metrics


BAD_BODIES = {
    "not json": (b"instances: all of them", "not valid JSON"),
    "empty body": (b"", "empty"),
    "top-level array": (b"[1, 2]", "expected a JSON object"),
    "instances not a list": (b'{"instances": "age=40"}', "must be a list"),
    "row not an object": (b'{"instances": [[40, 50000]]}', "expected an object"),
    "neither key": (b'{"rows": []}', "neither"),
    "empty instances": (b'{"instances": []}', "empty"),
    "NaN literal": (b'{"features": {"age": NaN}}', "NaN is not valid JSON"),
    "Infinity literal": (b'{"features": {"age": Infinity}}', "Infinity is not valid JSON"),
    "deep nesting": (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    "not utf-8": (b'{"features": {"age": "\xff\xfe"}}', "not UTF-8"),
}


def test_bad_bodies_get_a_4xx_with_a_message_and_nothing_is_logged(trained):
    # Bodies are read and parsed before the batching and non-batching paths part, so one app covers both.
    with TestClient(create_app(trained)) as client:
        for name, (body, words) in BAD_BODIES.items():
            response = client.post("/predict", content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, name
            assert words in response.json()["detail"], name
        assert client.post("/predict", json={"instances": demo_rows(1)}).status_code == 200
        flush(client)
    assert logged(trained) == 1


def _cell_cases() -> dict[str, tuple[dict, str, str]]:
    row = demo_rows(1)[0]
    without_age = {k: v for k, v in row.items() if k != "age"}
    return {
        "missing column": (without_age, "age", "missing column"),
        "NaN string": (dict(row, credit_score="NaN"), "credit_score", "finite number"),
        "inf string": (dict(row, loan_amount="inf"), "loan_amount", "finite number"),
        "text in a number": (dict(row, age="forty"), "age", "expected a number"),
        "boolean number": (dict(row, age=True), "age", "boolean"),
        "nested junk": (dict(row, debt_to_income={"a": [1, {"b": 2}]}), "debt_to_income", "expected a number"),
        "list as category": (dict(row, home_ownership=["rent"]), "home_ownership", "expected a category"),
        "unicode column names": ({"âge": 40, "収入": 50_000, **without_age}, "age", "missing column"),
    }


@pytest.mark.parametrize("name", list(_cell_cases()))
def test_bad_cells_name_row_and_column(client, trained, name):
    bad, column, words = _cell_cases()[name]
    good = demo_rows(3)
    response = client.post("/predict", json={"instances": [good[0], good[1], bad, good[2]]})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(e["row"], e["column"]) for e in errors} == {(2, column)}
    assert words in errors[0]["message"] and "row 2" in response.json()["detail"]
    flush(client)
    assert logged(trained) == 0


def test_limits_refuse_large_requests_before_predicting(trained):
    settings = replace(trained, max_instances_per_request=10, max_request_bytes=50_000)
    with TestClient(create_app(settings)) as c:
        too_many = c.post("/predict", json={"instances": demo_rows(11)})
        assert too_many.status_code == 413 and "limit is 10" in too_many.json()["detail"]
        # A million instances: refused from the declared size, before the body is parsed.
        huge = b'{"instances": [' + b",".join([b'{"age": 40}'] * 1_000_000) + b"]}"
        response = c.post("/predict", content=huge, headers={"content-type": "application/json"})
        assert response.status_code == 413 and "max_request_bytes" in response.json()["detail"]
        row = json.dumps(demo_rows(1)[0]).encode() + b","

        def chunks():  # no Content-Length: the stream is cut off once it passes the limit
            yield b'{"instances": ['
            for _ in range(2_000):
                yield row

        streamed = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert c.post("/predict", json={"instances": demo_rows(10)}).status_code == 200
        c.app.state.serving.writer.flush(10)
    assert logged(trained) == 10


def test_a_model_failure_answers_500_and_is_logged_as_an_error(client, trained, monkeypatch):
    original = predictor.LoadedVersion.predict_frame

    def fails_on_old_applicants(self, frame):
        if (frame["age"] > 80).any():
            raise ValueError("the model cannot score this row")
        return original(self, frame)

    monkeypatch.setattr(predictor.LoadedVersion, "predict_frame", fails_on_old_applicants)
    response = client.post("/predict", json={"features": dict(demo_rows(1)[0], age=85)})
    assert response.status_code == 500
    assert "cannot score this row" in response.json()["detail"]
    assert client.post("/predict", json={"features": demo_rows(1)[0]}).status_code == 200
    flush(client)
    assert logged(trained, "error") == 1 and logged(trained, "ok") == 1


def test_mutating_routes_need_a_token_with_the_right_scope(client, trained):
    labeller = {"Authorization": f"Bearer {tokens.add_token(trained, CLI, 'labeller', 'feedback')}"}
    admin_routes = [("/versions/v2/promote", {"reason": "better"}), ("/rollback", {"reason": "bad"})]
    for path, body in [*admin_routes, ("/feedback", {"request_id": "x", "label": 1})]:
        missing = client.post(path, json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in missing.json()["detail"]
        unknown = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
        assert unknown.status_code == 401 and "not one this service knows" in unknown.json()["detail"]
    for path, body in admin_routes:
        wrong_scope = client.post(path, json=body, headers=labeller)
        assert wrong_scope.status_code == 403, wrong_scope.text
        assert "'labeller' has the feedback scope; this needs admin" in wrong_scope.json()["detail"]
    assert client.post("/feedback", json={"request_id": "x", "label": 1}, headers=labeller).status_code == 200
    assert [e.action for e in ledger_entries(open_store(trained), alias="production")] == ["initial"]


def test_tokens_rotate_while_serving_and_the_ledger_names_the_token(client, trained):
    first = {"Authorization": f"Bearer {tokens.add_token(trained, CLI, 'deployer', 'admin')}"}
    assert client.post("/versions/v2/promote", json={"reason": "better"}, headers=first).status_code == 200
    second = {"Authorization": f"Bearer {tokens.add_token(trained, CLI, 'deployer-2', 'admin')}"}
    tokens.revoke_token(trained, CLI, "deployer")
    assert client.post("/rollback", json={"reason": "old token"}, headers=first).status_code == 401
    assert client.post("/rollback", json={"reason": "regressed"}, headers=second).status_code == 200
    moves = ledger_entries(open_store(trained), alias="production", newest_first=False)
    assert [(e.action, e.actor) for e in moves[1:]] == [("promote", "http:deployer"), ("rollback", "http:deployer-2")]
    assert not any(first["Authorization"][7:] in e.actor + e.reason for e in moves)


def test_promote_and_rollback_over_http_are_ledgered_and_served_at_once(client, trained):
    promoted = client.post("/versions/v2/promote", json={"reason": "better holdout"}, headers=AUTH)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["to_version"] == "v2"
    assert client.post("/predict", json={"features": demo_rows(1)[0]}).json()["version"] == "v2"
    back = client.post("/rollback", json={"reason": "p95 regressed"}, headers=AUTH)
    assert back.status_code == 200 and back.json()["to_version"] == "v1"
    assert client.post("/predict", json={"features": demo_rows(1)[0]}).json()["version"] == "v1"
    latest = ledger_entries(open_store(trained), alias="production")[0]
    assert (latest.action, latest.actor, latest.reason) == ("rollback", "http:env", "p95 regressed")
    versions = client.get("/versions").json()
    assert {v["version_id"]: v["aliases"] for v in versions} == {"v1": ["production"], "v2": []}


def test_a_move_naming_what_it_replaces_is_refused_once_production_is_something_else(client, trained):
    stale = client.post("/versions/v2/promote", json={"reason": "better", "expected_version": "v2"}, headers=AUTH)
    assert stale.status_code == 409 and "moved to 'v1'" in stale.json()["detail"]
    promoted = client.post("/versions/v2/promote", json={"reason": "better", "expected_version": "v1"}, headers=AUTH)
    assert promoted.status_code == 200 and promoted.json()["from_version"] == "v1"
    stale = client.post("/rollback", json={"reason": "bad", "expected_version": "v1"}, headers=AUTH)
    assert stale.status_code == 409 and "moved to 'v2'" in stale.json()["detail"]
    back = client.post("/rollback", json={"reason": "bad", "expected_version": "v2"}, headers=AUTH)
    assert back.status_code == 200 and back.json()["to_version"] == "v1"
    assert [e.action for e in ledger_entries(open_store(trained), alias="production")] == ["rollback", "promote",
                                                                                          "initial"]


def test_a_committed_move_answers_what_happened_even_if_this_replica_cannot_load_it_yet(client, trained, monkeypatch):
    serving = client.app.state.serving

    def store_blip() -> bool:
        raise StoreUnavailable("the store at sqlite:///x is unavailable: disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(serving.production, "refresh", store_blip)
        promoted = client.post("/versions/v2/promote", json={"reason": "better"}, headers=AUTH)
    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert (body["from_version"], body["to_version"], body["action"]) == ("v1", "v2", "promote")
    assert "this replica" in body["note"] and "disk I/O error" in body["note"]
    latest = ledger_entries(open_store(trained), alias="production")[0]
    assert (latest.id, latest.to_version) == (body["id"], "v2")
    # Its poller catches up on its own once the store answers again.
    deadline = time.monotonic() + 30
    while serving.loaded_version().version_id != "v2" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.post("/predict", json={"features": demo_rows(1)[0]}).json()["version"] == "v2"

    with monkeypatch.context() as patched:
        patched.setattr(serving.production, "refresh", store_blip)
        back = client.post("/rollback", json={"reason": "bad"}, headers=AUTH)
    assert back.status_code == 200 and back.json()["to_version"] == "v1" and "this replica" in back.json()["note"]


def test_registry_errors_map_to_their_status(client):
    missing = client.post("/versions/v9/promote", json={"reason": "x"}, headers=AUTH)
    assert missing.status_code == 404 and "v9" in missing.json()["detail"]
    no_reason = client.post("/versions/v2/promote", json={}, headers=AUTH)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    not_json = client.post("/rollback", content=b"{", headers={**AUTH, "content-type": "application/json"})
    assert not_json.status_code == 422


def test_feedback_joins_labels_to_logged_predictions(client, trained):
    ids = client.post("/predict", json={"instances": demo_rows(3)}).json()["request_ids"]
    response = client.post("/feedback", json=[{"request_id": ids[0], "label": 1}, {"request_id": ids[2], "label": 0},
                                              {"request_id": "never-seen", "label": 1}], headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"joined": 2, "unknown": ["never-seen"]}
    one = client.post("/feedback", json={"request_id": ids[1], "label": 0}, headers=AUTH)
    assert one.json() == {"joined": 1, "unknown": []}
    bad = client.post("/feedback", json=[{"label": 1}], headers=AUTH)
    assert bad.status_code == 422 and "request_id" in bad.json()["detail"]
    with open_store(trained).read() as conn:
        labels = dict(conn.execute(select(predictions.c.request_id, predictions.c.label)).all())
    assert labels == {ids[0]: "1", ids[1]: "0", ids[2]: "0"}


def test_health_and_metrics(client):
    client.post("/predict", json={"instances": demo_rows(4)})
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["ready"] and body["model"]["version"] == "v1"
    assert body["store"]["reachable"] and body["telemetry"]["submitted"] == 4
    text = client.get("/metrics").text
    assert 'opscore_predictions_total{model_version="v1"} 4.0' in text
    assert 'opscore_prediction_latency_seconds_count{model_version="v1"} 1.0' in text
    assert "opscore_telemetry_dropped_total 0.0" in text
    for name in ("opscore_prediction_errors_total", "opscore_batch_size", "opscore_batch_wait_seconds"):
        assert f"# TYPE {name.removesuffix('_total')}" in text
    if client.app.state.serving.batcher is not None:
        assert "opscore_batch_size_sum 4.0" in text
    assert client.get("/docs").status_code == 200


def refused_in_metrics(client: TestClient) -> dict[str, float]:
    """opscore_requests_refused_total of version v1 per reason, as Prometheus scrapes it."""
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('opscore_requests_refused_total{model_version="v1",reason="'):
            out[line.split('reason="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return out


def test_a_64_row_request_counts_as_one_request_and_64_rows(client, trained):
    assert client.post("/predict", json={"instances": demo_rows(64)}).status_code == 200
    flush(client)
    assert logged(trained) == 64
    report = latency.latency_report(trained, "Last hour")
    assert (report.estimated["count"], report.estimated["rows"]) == (1, 64)
    assert (report.exact["count"], report.exact["rows"]) == (1, 64)
    assert report.per_version[["requests", "rows"]].values.tolist() == [[1, 64]]
    assert (report.series["count"].sum(), report.series["rows"].sum()) == (1, 64)
    view = overview.overview(trained, "Last hour")
    assert (view.requests, view.rows) == (1, 64)
    feed = live.live_feed(trained)
    assert (feed.stats["requests"], feed.stats["count"]) == (1, 64)
    text = client.get("/metrics").text
    assert 'opscore_prediction_latency_seconds_count{model_version="v1"} 1.0' in text
    assert 'opscore_predictions_total{model_version="v1"} 64.0' in text


def test_a_flood_of_malformed_requests_shows_as_refused(client, trained):
    for _ in range(1_000):
        response = client.post("/predict", content=b"instances: all of them", headers={"content-type": "application/json"})
        assert response.status_code == 422
    flush(client)
    assert logged(trained) == 0
    assert refused_in_metrics(client) == {"malformed_body": 1_000.0}
    report = latency.latency_report(trained, "Last hour")
    assert report.refused_total == 1_000
    assert report.refused[["reason", "requests"]].values.tolist() == [["malformed_body", 1_000]]
    assert report.refused_series["count"].sum() == 1_000
    assert report.estimated["count"] == 0  # nothing was predicted: no request figures, but not invisible
    assert overview.overview(trained, "Last hour").refused == 1_000


def test_each_refusal_is_counted_under_its_reason(trained):
    settings = replace(trained, max_instances_per_request=10)
    with TestClient(create_app(settings)) as c:
        bad_row = dict(demo_rows(1)[0], age="forty")
        assert c.post("/predict", json={"instances": [bad_row, *demo_rows(3)]}).status_code == 422
        assert c.post("/predict", json={"instances": demo_rows(11)}).status_code == 413
        assert c.post("/predict", content=b"", headers={"content-type": "application/json"}).status_code == 422
        assert c.post("/predict", json={"instances": demo_rows(2)}).status_code == 200
        assert refused_in_metrics(c) == {"invalid_rows": 1.0, "too_large": 1.0, "malformed_body": 1.0}
        flush(c)
    report = latency.latency_report(trained, "Last hour")
    assert dict(report.refused[["reason", "requests"]].values.tolist()) == {
        "invalid_rows": 1, "too_large": 1, "malformed_body": 1}
    assert (report.estimated["count"], report.estimated["rows"]) == (1, 2)


def test_without_a_production_version_predict_and_health_say_so(workspace):
    with TestClient(create_app(workspace)) as c:
        response = c.post("/predict", json={"features": demo_rows(1)[0]})
        assert response.status_code == 503 and "no production version" in response.json()["detail"]
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["ready"] is False


def test_a_missing_admin_token_is_generated_once_private_and_printed_once(trained, monkeypatch, capsys):
    monkeypatch.delenv("OPSCORE_ADMIN_TOKEN")
    settings = replace(trained, admin_token="")
    with TestClient(create_app(settings)) as c:
        printed = capsys.readouterr().err
        token_file = settings.workspace / ".opscore" / "admin_token"
        token = token_file.read_text().strip()
        assert token in printed
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(token_file.parent).st_mode) == 0o700
        ok = c.post("/rollback", json={"reason": "x"}, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 404  # authorised; nothing to roll back to
    with TestClient(create_app(settings)):
        assert token not in capsys.readouterr().err


def test_no_token_is_generated_when_an_admin_token_was_added(trained, monkeypatch, capsys):
    monkeypatch.delenv("OPSCORE_ADMIN_TOKEN")
    settings = replace(trained, admin_token="")
    tokens.add_token(settings, CLI, "deployer", "admin")
    with TestClient(create_app(settings)):
        assert "generated an admin token" not in capsys.readouterr().err
    assert not (settings.workspace / ".opscore" / "admin_token").exists()


def test_serve_warns_at_start_about_a_secret_others_can_read(trained, capsys):
    exposed = trained.workspace / ".opscore" / "tokens.json"
    tokens.add_token(trained, CLI, "labeller", "feedback")
    exposed.chmod(0o644)
    with TestClient(create_app(trained)):
        assert f"{exposed} can be read by other users" in capsys.readouterr().err


def test_retrain_over_http_registers_a_candidate_from_production_and_never_promotes_it(trained):
    with TestClient(create_app(trained)) as client:
        assert client.post("/retrain", json={}).status_code == 401
        feedback_only = tokens.add_token(trained, CLI, "labeller", "feedback")
        refused = client.post("/retrain", json={}, headers={"Authorization": f"Bearer {feedback_only}"})
        assert refused.status_code == 403
        answer = client.post("/retrain", json={"version_id": "v3"}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["candidate"]["version_id"] == "v3" and body["candidate"]["parent_version"] == "v1"
        assert body["candidate"]["aliases"] == ["candidate"] and body["production"] == "v1"
        assert body["sources"] == {"rows of v1's training data": 1_500}
        assert {row["metric"] for row in body["comparison"]} and all("v3" in row for row in body["comparison"])
        assert client.post("/predict", json={"features": demo_rows(1)[0]}).json()["version"] == "v1"
        unknown = client.post("/retrain", json={"from": "nope"}, headers=AUTH)
        assert unknown.status_code == 404
    mover = ledger_entries(open_store(trained), alias="candidate")[0]
    assert (mover.to_version, mover.actor) == ("v3", "http:env")
def test_drift_route_answers_the_cli_contract_for_live_traffic(client, trained):
    for _ in range(3):
        assert client.post("/predict", json={"instances": demo_rows(20)}).status_code == 200
    flush(client)
    answer = client.get("/drift", params={"window": "1h"})
    assert answer.status_code == 200
    body = answer.json()
    assert list(body)[:5] == ["dataset_drift", "drift_share", "threshold_share", "columns", "window"]
    assert body["window"]["rows"] == 60 and body["version"] == "v1"
    assert client.get("/drift", params={"window": "1h", "version": "v2"}).json()["window"]["rows"] == 0
    bad = client.get("/drift", params={"window": "yesterday"})
    assert bad.status_code == 422 and "90m, 24h or 7d" in bad.json()["detail"]
    assert client.get("/drift", params={"version": "v9"}).status_code == 404


def test_rejected_rows_are_counted_by_column_and_reason(client, trained):
    from opscore.monitoring.data_quality import data_quality

    rows = demo_rows(3)
    rows[0]["age"] = "forty"
    rows[1].pop("credit_score")
    assert client.post("/predict", json={"instances": rows}).status_code == 422
    flush(client)
    report = data_quality(trained, time.time() - 60, time.time() + 60)
    assert report.rejected == {("age", "not_a_number"): 1, ("credit_score", "missing_column"): 1}
