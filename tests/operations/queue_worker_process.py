"""A worker process for the queue tests: the real worker loop, with the probe procedures registered.

Run as ``python tests/operations/queue_worker_process.py [--until-idle]`` with the workspace in the
``OPSCORE_*`` environment; without ``--until-idle`` it runs until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from opscore.config import load_settings  # noqa: E402
from opscore.operations.worker import run_worker  # noqa: E402
from tests.operations import queue_probes  # noqa: E402, F401 - registers the probes


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ran = run_worker(load_settings(), stop=stop, poll_seconds=0.05, until_idle="--until-idle" in sys.argv)
    print(f"ran {ran}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
