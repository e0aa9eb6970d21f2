"""Micro-batching: answers reach the right callers, versions never mix, one bad request fails alone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest

from opscore.data.features import FeatureSchema, FeatureSpec
from opscore.demo.credit_data import TARGET, credit_applications
from opscore.serving.batching import MicroBatcher
from opscore.serving.predictor import LoadedVersion, Scores, load_version

SCHEMA = FeatureSchema([FeatureSpec("marker", "numeric", "float64"), FeatureSpec("colour", "categorical", "str")],
                       target="y", task="regression")


class EchoModel:
    """Predicts each row's marker times ``factor``; remembers every call; fails on a poison marker."""

    schema = SCHEMA

    def __init__(self, factor: float, poison: float | None = None, gate: threading.Event | None = None) -> None:
        self.factor = factor
        self.poison = poison
        self.gate = gate
        self.calls: list[list[float]] = []
        self.lock = threading.Lock()

    def predict_frame(self, frame: pd.DataFrame) -> Scores:
        if self.gate is not None:
            self.gate.wait(10)
        markers = frame["marker"].tolist()
        with self.lock:
            self.calls.append(markers)
        if self.poison is not None and self.poison in markers:
            raise ValueError(f"cannot score marker {self.poison}")
        return Scores([m * self.factor for m in markers], None, None)


def rows(*markers: float) -> list[dict]:
    return [{"marker": m, "colour": "red"} for m in markers]


async def _answer(batcher: MicroBatcher, model: EchoModel, records: list[dict]) -> list[float]:
    outcome = await batcher.predict(model, records)
    assert not outcome.errors
    return outcome.scores.predictions[outcome.start:outcome.stop]


def _burst(batcher: MicroBatcher, jobs: list[tuple[EchoModel, list[dict]]]) -> list[object]:
    """Submit every job concurrently on one event loop; results (or exceptions) in order."""

    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(batcher.predict(model, records)) for model, records in jobs]
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)

    return asyncio.run(main())


@pytest.fixture
def gated():
    """A batcher whose first model call waits for a gate, so a burst queues up behind it."""
    gate = threading.Event()
    batcher = MicroBatcher(max_rows=64, max_wait_seconds=0.0)
    yield batcher, gate
    gate.set()
    batcher.close()


def test_each_caller_gets_its_own_rows_back_from_a_shared_call(gated):
    batcher, gate = gated
    model = EchoModel(2.0, gate=gate)
    jobs = [(model, rows(i, i + 0.5)) for i in range(40)]
    threading.Timer(0.2, gate.set).start()
    results = _burst(batcher, jobs)
    for i, outcome in enumerate(results):
        assert outcome.scores.predictions[outcome.start:outcome.stop] == [2.0 * i, 2.0 * i + 1.0]
    # The burst really was batched: far fewer model calls than requests, none over the row limit.
    assert len(model.calls) < len(jobs)
    assert max(len(c) for c in model.calls) <= 64
    assert sorted(m for call in model.calls for m in call) == sorted(m for _, r in jobs for m in (x["marker"] for x in r))


class GatedVersion:
    """A real loaded version whose calls wait for a gate and are counted, so a burst forms batches."""

    def __init__(self, version: LoadedVersion, gate: threading.Event) -> None:
        self.version, self.gate, self.calls = version, gate, []

    @property
    def schema(self) -> FeatureSchema:
        return self.version.schema

    def predict_frame(self, frame: pd.DataFrame) -> Scores:
        self.gate.wait(10)
        self.calls.append(len(frame))
        return self.version.predict_frame(frame)


def test_batched_answer_equals_an_unbatched_one(trained, gated):
    batcher, gate = gated
    version = load_version(trained, "v1")
    features = credit_applications(n_rows=60, seed=11).drop(columns=TARGET)
    requests = [features.iloc[i:i + 1 + i % 3].to_dict("records") for i in range(0, 57, 3)]
    gated_version = GatedVersion(version, gate)
    threading.Timer(0.2, gate.set).start()
    results = _burst(batcher, [(gated_version, records) for records in requests])
    assert len(gated_version.calls) < len(requests), "the burst never formed a batch"
    for records, outcome in zip(requests, results, strict=True):
        alone = version.predict_frame(pd.DataFrame(records))
        assert outcome.scores.predictions[outcome.start:outcome.stop] == alone.predictions
        batched = np.asarray(outcome.scores.probabilities[outcome.start:outcome.stop])
        np.testing.assert_allclose(batched, np.asarray(alone.probabilities), rtol=0, atol=1e-12)


def test_a_malformed_request_in_a_burst_is_refused_alone(gated):
    batcher, gate = gated
    model = EchoModel(1.0, gate=gate)
    jobs = [(model, rows(i)) for i in range(64)]
    jobs[17] = (model, [{"marker": "seventeen", "colour": "red"}, {"colour": "blue"}])
    threading.Timer(0.2, gate.set).start()
    results = _burst(batcher, jobs)
    bad = results[17]
    assert bad.scores is None
    assert [(p.row, p.column) for p in bad.errors] == [(0, "marker"), (1, "marker")]
    assert "expected a number" in bad.errors[0].message and bad.errors[1].message == "missing column"
    good = [r for i, r in enumerate(results) if i != 17]
    assert all(not r.errors for r in good)
    assert [r.scores.predictions[r.start:r.stop] for r in good] == [[float(i)] for i in range(64) if i != 17]
    assert all("seventeen" not in call for call in model.calls)


def test_a_model_error_is_retried_alone_so_only_the_culprit_fails(gated):
    batcher, gate = gated
    model = EchoModel(1.0, poison=13.0, gate=gate)
    jobs = [(model, rows(i)) for i in range(30)]
    threading.Timer(0.2, gate.set).start()
    results = _burst(batcher, jobs)
    assert isinstance(results[13], ValueError)
    assert [r.scores.predictions[r.start:r.stop] for i, r in enumerate(results) if i != 13] == [
        [float(i)] for i in range(30) if i != 13]
    # The poisoned batch was retried request by request.
    assert [13.0] in model.calls


def test_a_batch_never_mixes_versions(gated):
    batcher, gate = gated
    old, new = EchoModel(1.0, gate=gate), EchoModel(-1.0, gate=gate)
    # Interleaved, as when the alias moves in the middle of a burst.
    jobs = [(old if i % 3 else new, rows(i)) for i in range(60)]
    threading.Timer(0.2, gate.set).start()
    results = _burst(batcher, jobs)
    old_markers = {float(i) for i in range(60) if i % 3}
    assert all(set(call) <= old_markers for call in old.calls)
    assert all(not (set(call) & old_markers) for call in new.calls)
    for i, outcome in enumerate(results):
        expected = float(i) if i % 3 else -float(i)
        assert outcome.scores.predictions[outcome.start:outcome.stop] == [expected]


def test_rows_are_capped_per_call_and_a_large_request_goes_alone(gated):
    batcher, gate = gated
    model = EchoModel(1.0, gate=gate)
    jobs = [(model, rows(*range(i * 10, i * 10 + 10))) for i in range(9)] + [(model, rows(*range(1000, 1100)))]
    threading.Timer(0.2, gate.set).start()
    results = _burst(batcher, jobs)
    assert all(not r.errors for r in results)
    assert [len(c) for c in model.calls if 1000.0 in c] == [100]
    assert all(len(c) <= 64 for c in model.calls if 1000.0 not in c)


def test_a_lone_request_is_not_held_for_the_wait():
    # A minute of max wait: the test would time out (wait_for, 30 s) if a lone request waited for it.
    batcher = MicroBatcher(max_rows=64, max_wait_seconds=60.0)
    try:
        results = _burst(batcher, [(EchoModel(1.0), rows(5))])
        assert results[0].scores.predictions == [5.0]
        assert results[0].batch_requests == 1
    finally:
        batcher.close()


def test_a_forming_batch_waits_for_a_request_known_to_be_arriving():
    batcher = MicroBatcher(max_rows=64, max_wait_seconds=30.0)
    model = EchoModel(1.0)

    async def main() -> list[object]:
        with batcher.arriving() as late:
            first = asyncio.ensure_future(batcher.predict(model, rows(1)))
            await asyncio.sleep(0.3)  # the batch has formed and is waiting for the arriving request
            second = asyncio.ensure_future(batcher.predict(model, rows(2), late))
            return await asyncio.wait_for(asyncio.gather(first, second), 30)

    try:
        first, second = asyncio.run(main())
        assert model.calls == [[1.0, 2.0]]
        assert first.batch_requests == second.batch_requests == 2
    finally:
        batcher.close()


def test_observer_sees_rows_and_waits_of_each_call():
    seen: list[tuple[int, int]] = []
    batcher = MicroBatcher(max_rows=64, max_wait_seconds=0.0,
                           observe=lambda n_rows, waits: seen.append((n_rows, len(waits))))
    gate = threading.Event()
    model = EchoModel(1.0, gate=gate)
    threading.Timer(0.2, gate.set).start()
    try:
        _burst(batcher, [(model, rows(i, i)) for i in range(10)])
    finally:
        batcher.close()
    assert sum(n for n, _ in seen) == 20 and sum(k for _, k in seen) == 10
    assert [n for n, _ in seen] == [len(c) for c in model.calls]


def test_after_a_batch_of_several_the_next_one_waits_for_as_many_callers():
    batcher = MicroBatcher(max_rows=64, max_wait_seconds=1.0)
    gate = threading.Event()
    model = EchoModel(1.0, gate=gate)

    async def main() -> None:
        threading.Timer(0.2, gate.set).start()
        await asyncio.wait_for(asyncio.gather(*(batcher.predict(model, rows(i)) for i in range(10))), 30)
        # Concurrency was evident: the next request waits (at most a second) for company.
        first = asyncio.ensure_future(batcher.predict(model, rows(100)))
        await asyncio.sleep(0.3)
        await asyncio.wait_for(asyncio.gather(first, batcher.predict(model, rows(101))), 30)

    try:
        asyncio.run(main())
    finally:
        batcher.close()
    assert model.calls[-1] == [100.0, 101.0]
