"""Two trainings of one version id at once: exactly one version, whole, and the other refused by name."""

from __future__ import annotations

import threading

import pytest

from opscore.config import replace
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import ConflictError
from opscore.models import claims, registry
from opscore.models.training import STAGES, train_version
from opscore.store import open_store

ROUNDS = 50
# The second training starts when the first announces one of these stages; "registering" comes after
# the first one's folder is renamed into place and before its registry row exists, the window where a
# second training used to take that folder for an orphan and delete it.
START_SECOND_AT = STAGES[:5]


def _race(settings, frames, version_id: str, start_at: str, operator) -> dict[str, object]:
    """Train ``version_id`` twice (on different data), the second starting at the first's ``start_at`` stage."""
    start_second, second_past_claim = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first_progress(stage: str, _fraction: float) -> None:
        if stage == start_at:
            start_second.set()
            if stage == "registering":
                # Hold the first training in its window until the second has claimed (or been refused).
                second_past_claim.wait(timeout=60)

    def second_progress(_stage: str, _fraction: float) -> None:
        second_past_claim.set()

    def run(name: str, progress) -> None:
        try:
            if name == "second":
                start_second.wait(timeout=60)
            results[name] = train_version(settings, version_id, frames[name], "default", actor=operator, then="none",
                                          progress=progress)
        except Exception as exc:  # noqa: BLE001 - what each training raised is what the test checks
            results[name] = exc
        finally:
            start_second.set()
            if name == "second":
                second_past_claim.set()

    threads = [threading.Thread(target=run, args=("first", first_progress)),
               threading.Thread(target=run, args=("second", second_progress))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def test_two_trainings_of_one_id_leave_exactly_one_valid_version(any_workspace, operator):
    settings = replace(any_workspace, forest_trees=2, boosting_rounds=2)
    # Two operators, two uploads: the trainings' artifacts differ byte for byte.
    frames = {"first": credit_applications(n_rows=300, seed=3), "second": credit_applications(n_rows=300, seed=4)}
    store = open_store(settings)
    for i in range(ROUNDS):
        version_id = f"race{i}"
        start_at = START_SECOND_AT[i % len(START_SECOND_AT)]
        results = _race(settings, frames, version_id, start_at, operator)
        won = [r for r in results.values() if not isinstance(r, Exception)]
        lost = [r for r in results.values() if isinstance(r, Exception)]
        assert len(won) == 1 and len(lost) == 1, (i, start_at, results)
        assert isinstance(lost[0], ConflictError) and version_id in str(lost[0]), (i, start_at, lost[0])
        info = registry.get_version(store, version_id)
        assert info.artifact_sha256 == won[0].version.artifact_sha256
        # The registered checksum matches the bytes in the model store: the version loads.
        assert registry.load_version_model(settings, info) is not None, (i, start_at)
    assert claims.claimed_ids(store) == set()
    staging = settings.model_store_path / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_a_version_id_being_trained_is_not_suggested_again(workspace, operator):
    from opscore.models.retraining import suggest_version_id

    store = open_store(workspace)
    train_version(workspace, "v1", credit_applications(n_rows=300, seed=3), "default", actor=operator)
    with claims.held(store, "v2"):
        assert suggest_version_id(store) == "v3"
        with pytest.raises(ConflictError, match="'v2' is being trained"):
            claims.take(store, "v2")
    assert suggest_version_id(store) == "v2"
