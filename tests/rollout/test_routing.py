"""The split: sticky, proportional, monotone in its weight, and followed through the store."""

from __future__ import annotations

import pytest

from opscore.exceptions import BadInputError
from opscore.rollout.routing import CANDIDATE, PRODUCTION, RoutingFollower, Split, read_split, write_split
from opscore.store import open_store


def test_the_same_key_always_meets_the_same_version():
    split = Split("d-1", candidate="v2", weight=0.3)
    for key in (f"user-{i}" for i in range(200)):
        assert len({split.role_for(key) for _ in range(5)}) == 1


def test_the_candidate_gets_its_weight_of_keys():
    keys = [f"user-{i}" for i in range(20_000)]
    for weight in (0.05, 0.25, 0.5):
        share = sum(Split("d-1", candidate="v2", weight=weight).role_for(k) == CANDIDATE for k in keys) / len(keys)
        assert abs(share - weight) < 0.015, (weight, share)
    assert all(Split("d-1", candidate="v2", weight=1.0).role_for(k) == CANDIDATE for k in keys[:500])
    assert all(Split("d-1").role_for(k) == PRODUCTION for k in keys[:500])


def test_a_key_on_the_candidate_stays_there_as_the_weight_grows():
    keys = [f"user-{i}" for i in range(5_000)]
    at_5 = {k for k in keys if Split("d-1", candidate="v2", weight=0.05).role_for(k) == CANDIDATE}
    at_25 = {k for k in keys if Split("d-1", candidate="v2", weight=0.25).role_for(k) == CANDIDATE}
    assert at_5 and at_5 < at_25


def test_shadow_share_and_canary_weight_are_drawn_independently():
    keys = [f"user-{i}" for i in range(10_000)]
    split = Split("d-1", candidate="v2", weight=0.5, shadow="v3", share=0.5)
    both = sum(split.role_for(k) == CANDIDATE and split.shadows(k) for k in keys) / len(keys)
    assert abs(both - 0.25) < 0.02


def test_deployments_draw_different_keys():
    keys = [f"user-{i}" for i in range(2_000)]
    first = {k for k in keys if Split("d-1", candidate="v2", weight=0.2).role_for(k) == CANDIDATE}
    second = {k for k in keys if Split("d-2", candidate="v2", weight=0.2).role_for(k) == CANDIDATE}
    assert first != second


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_a_weight_outside_0_1_is_refused(weight):
    with pytest.raises(BadInputError, match="weight"):
        Split("d-1", candidate="v2", weight=weight)


def test_the_follower_applies_a_new_generation_with_its_versions_loaded(any_workspace):
    store = open_store(any_workspace)
    loaded = []

    def load(version_id):
        loaded.append(version_id)
        return f"model {version_id}"

    follower = RoutingFollower(any_workspace, load=load, poll=False)
    assert follower.current().generation == 0 and follower.current().candidate is None
    with store.write() as conn:
        write_split(conn, Split("d-1", candidate="v2", weight=0.05, shadow="v3", share=1.0), now=1.0)
    assert read_split(store)[1] == 1
    assert follower.refresh()
    route = follower.current()
    assert (route.generation, route.candidate, route.shadow) == (1, "model v2", "model v3")
    assert not follower.refresh()  # same generation: nothing reloaded
    assert loaded == ["v2", "v3"]


def test_a_version_that_fails_to_load_sends_its_share_to_production(workspace):
    def load(version_id):
        raise RuntimeError("checksum mismatch")

    follower = RoutingFollower(workspace, load=load, poll=False)
    with open_store(workspace).write() as conn:
        write_split(conn, Split("d-1", candidate="v2", weight=0.5), now=1.0)
    follower.refresh()
    assert follower.current().candidate is None and "checksum mismatch" in follower.last_error
