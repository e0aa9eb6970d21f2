"""Runs the alert evaluation every ``alert_evaluation_seconds``, on one replica at a time.

Replicas sharing a store race for one lease row; the holder evaluates and renews it, the others
wait and take over once it lapses (or at once when its holder ran on this host and is gone, see
:mod:`opscore.models.leases`). ``opscore serve`` starts :class:`AlertEvaluator` with its lifespan.
Each evaluation is followed by the triggers (:mod:`opscore.operations.triggers`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import delete, insert, select, update

from opscore.config import Settings
from opscore.models.leases import Holder, hold_lapsed
from opscore.operations.alerts import Evaluation, evaluate
from opscore.operations.triggers import open_tasks
from opscore.store import Store, open_store, work_leases

log = logging.getLogger(__name__)
LEASE_NAME = "alert-evaluator"


def hold_lease(store: Store, name: str, token: str, seconds: float, now: float) -> bool:
    """Take or renew the lease ``name`` for ``token`` until ``now + seconds``; False while another holds it."""
    me = Holder.me()
    with store.write() as conn:
        row = conn.execute(select(work_leases).where(work_leases.c.name == name).with_for_update()).first()
        if row is None:
            conn.execute(insert(work_leases).values(name=name, token=token, host=me.host, pid=me.pid,
                                                    expires_at=now + seconds))
            return True
        if row.token != token and not hold_lapsed(Holder(row.host, row.pid), row.expires_at, now):
            return False
        conn.execute(update(work_leases).where(work_leases.c.name == name).values(
            token=token, host=me.host, pid=me.pid, expires_at=now + seconds))
        return True


def release_lease(store: Store, name: str, token: str) -> None:
    with store.write() as conn:
        conn.execute(delete(work_leases).where(work_leases.c.name == name, work_leases.c.token == token))


def evaluate_once(settings: Settings, *, now: float | None = None, telemetry_dropped: Callable[[], int] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> Evaluation:
    """One evaluation, then the triggers: every firing alert that calls for work gets its one task."""
    result = evaluate(settings, now=now, sleep=sleep, telemetry_dropped=telemetry_dropped)
    result.tasks = [opened.task.id for opened in open_tasks(settings, now=result.at)]
    return result


class AlertEvaluator:
    """A daemon thread evaluating alerts while this process holds the evaluator lease."""

    def __init__(self, settings: Settings, *, telemetry_dropped: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.token = uuid.uuid4().hex
        self._telemetry_dropped = telemetry_dropped
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opscore-alerts", daemon=True)
        self.last: Evaluation | None = None

    def start(self) -> AlertEvaluator:
        self._thread.start()
        return self

    def run_once(self) -> Evaluation | None:
        """Evaluate once if this process holds (or takes) the lease; None when another replica does."""
        interval = self.settings.alert_evaluation_seconds
        now = self._clock()
        if not hold_lease(open_store(self.settings), LEASE_NAME, self.token, 3 * interval, now):
            return None
        self.last = evaluate_once(self.settings, now=now, telemetry_dropped=self._telemetry_dropped)
        return self.last

    def _run(self) -> None:
        while not self._stop.wait(self.settings.alert_evaluation_seconds):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - one failed evaluation must not stop the next
                log.exception("alert evaluation failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        release_lease(open_store(self.settings), LEASE_NAME, self.token)
