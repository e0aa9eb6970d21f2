"""Registry benchmark: promote and rollback time, and training time on the demo data set.

Baselines run in the same process: an alias move is compared with the bare transaction it wraps
(alias UPDATE + ledger INSERT, no pre-flight), training with one gradient-boosting fit on the same
rows. Run: ``.venv/bin/python bench/registry.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from bench.common import markdown_table, write_section  # noqa: E402
from opscore.access.actors import Actor  # noqa: E402
from opscore.config import load_settings  # noqa: E402
from opscore.demo.credit_data import credit_applications  # noqa: E402
from opscore.models import registry  # noqa: E402
from opscore.models.training import train_version  # noqa: E402
from opscore.store import aliases, ledger, open_store  # noqa: E402

ROUNDS = 20
OPERATOR = Actor("bench", "operator", "cli")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(Path(folder), env={})
        frame = credit_applications(seed=settings.seed)

        started = time.perf_counter()
        HistGradientBoostingClassifier(random_state=0).fit(
            frame.drop(columns=["default", "employment_type", "home_ownership", "loan_purpose"]), frame["default"]
        )
        baseline_fit = time.perf_counter() - started
        train_times = []
        for version_id in ("v1", "v2"):
            started = time.perf_counter()
            train_version(settings, version_id, frame, "default", actor=OPERATOR, then="none")
            train_times.append(time.perf_counter() - started)

        store = open_store(settings)
        bare = []
        for i in range(ROUNDS):
            started = time.perf_counter()
            with store.write() as conn:
                conn.execute(update(aliases).where(aliases.c.name == "candidate").values(version_id=f"v{i % 2 + 1}", updated_at=time.time()))
                conn.execute(insert(ledger).values(at=time.time(), alias="candidate", action="bench", actor="bench", reason="bare"))
            bare.append(time.perf_counter() - started)
        promote_times, rollback_times = [], []
        for _ in range(ROUNDS // 2):
            started = time.perf_counter()
            registry.promote(settings, "v2", OPERATOR, "bench")
            promote_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            registry.rollback(settings, OPERATOR, "bench")
            rollback_times.append(time.perf_counter() - started)

    bare_ms = _median_ms(bare)
    rows = [
        ["bare alias transaction (baseline)", f"{bare_ms:.2f} ms", "1.0"],
        ["promote (pre-flight + transaction)", f"{_median_ms(promote_times):.1f} ms", f"{_median_ms(promote_times) / bare_ms:.0f}"],
        ["rollback (pre-flight + transaction)", f"{_median_ms(rollback_times):.1f} ms", f"{_median_ms(rollback_times) / bare_ms:.0f}"],
        ["one HistGradientBoosting fit (baseline)", f"{baseline_fit:.2f} s", "1.0"],
        ["train_version, demo set (6,000 rows)", f"{statistics.median(train_times):.2f} s", f"{statistics.median(train_times) / baseline_fit:.1f}"],
    ]
    body = markdown_table(["operation", "median", "× baseline"], rows)
    body += (
        "\n\nPromote and rollback are dominated by the pre-flight check (verify sha256, unpickle the "
        "artifact, predict the stored input example); the transaction itself is the baseline row. "
        "Training covers the ensemble fit, holdout metrics, the reference profile and the atomic artifact write."
    )
    print(body)
    write_section("Registry", body)


if __name__ == "__main__":
    main()
