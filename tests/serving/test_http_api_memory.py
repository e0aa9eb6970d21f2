"""Memory of a serving process across hot swaps: what a swap lets go of must be given back.

Measured in a subprocess of its own, so the test runner's heap does not blur the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# The service (TestClient, the real app) swaps production between v1 and v2 through the promote
# route, which loads each version once more for its pre-flight check, and reports its RSS after
# 2 and after 100 swaps. opscore's own pipelines hold no reference cycle, so reference counting
# frees a model let go of even when it sits in the frozen heap; this gives every loaded model one
# (a back-reference) and 4 MB of weights, as any model whose object graph has a cycle would have.
SWAPS = textwrap.dedent("""
    import gc, json, sys
    import numpy as np
    import psutil
    from fastapi.testclient import TestClient
    from opscore.config import load_settings
    from opscore.demo.credit_data import credit_applications
    from opscore.models import artifacts
    from opscore.serving.http_api import create_app

    real_load = artifacts.load_model

    def load_with_cycle(*args, **kwargs):
        model = real_load(*args, **kwargs)
        model.opscore_test_self = model
        model.opscore_test_weights = np.ones(500_000)
        return model

    artifacts.load_model = load_with_cycle
    settings = load_settings()
    frame = credit_applications(n_rows=3, seed=3).drop(columns="default")
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    auth = {"Authorization": "Bearer test-token"}
    rss = {}
    with TestClient(create_app(settings)) as client:
        for swap in range(1, 101):
            target = "v2" if swap % 2 else "v1"
            moved = client.post(f"/versions/{target}/promote", json={"reason": "swap"}, headers=auth)
            assert moved.status_code == 200, moved.text
            answer = client.post("/predict", json={"instances": rows})
            assert answer.status_code == 200 and answer.json()["version"] == target, answer.text
            if swap in (2, 100):
                rss[swap] = psutil.Process().memory_info().rss
    print(json.dumps(rss))
""")


@pytest.mark.slow
def test_rss_after_100_swaps_stays_near_rss_after_2(trained):
    done = subprocess.run([sys.executable, "-c", SWAPS], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rss = json.loads(done.stdout.strip().splitlines()[-1])
    after_2, after_100 = rss["2"], rss["100"]
    assert after_100 <= 1.5 * after_2, f"RSS grew from {after_2 / 1e6:.0f} MB to {after_100 / 1e6:.0f} MB"
