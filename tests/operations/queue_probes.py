"""Procedures the queue tests run: each leaves a trace a test (or another process) can check.

Imported by the queue tests and by the worker processes they start, so every process registers the
same probes. ``OPSCORE_PROBE_LOG`` names a file each run appends one line to (O_APPEND keeps lines
whole across processes).
"""

from __future__ import annotations

import os
import time

from opscore.operations.procedures import Finding, ProcedureResult, TaskSkipped, procedure

RUNS: list[str] = []
FAIL_TIMES: dict[str, int] = {}


def _trace(params: dict, what: str) -> None:
    RUNS.append(params.get("label", "?"))
    path = os.environ.get("OPSCORE_PROBE_LOG")
    if path:
        line = f"{params.get('label', '?')} {os.getpid()} {what}\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


@procedure("probe_record", title="Record that it ran")
def probe_record(settings, params, checkpoint) -> ProcedureResult:
    _trace(params, f"start {time.time():.6f}")
    steps = int(params.get("steps", 1))
    for step in range(steps):
        checkpoint(f"step {step + 1} of {steps}", (step + 1) / steps)
        time.sleep(float(params.get("step_seconds", 0.0)))
    _trace(params, f"end {time.time():.6f}")
    return ProcedureResult(figures={"steps": steps})


@procedure("probe_flaky", title="Fail a given number of times, then succeed")
def probe_flaky(settings, params, checkpoint) -> ProcedureResult:
    label = params["label"]
    FAIL_TIMES[label] = FAIL_TIMES.get(label, 0) + 1
    if FAIL_TIMES[label] <= int(params.get("failures", 1)):
        raise RuntimeError(f"{label}: planted failure {FAIL_TIMES[label]}")
    return ProcedureResult(figures={"runs": FAIL_TIMES[label]})


@procedure("probe_finder", title="Find what the parameters plant")
def probe_finder(settings, params, checkpoint) -> ProcedureResult:
    _trace(params, "find")
    findings = [Finding(summary, severity, follow_up=follow_up)
                for summary, severity, follow_up in params.get("plant", [])]
    return ProcedureResult(findings=findings, recommendations=["look at the findings"])


@procedure("probe_skipper", title="Find nothing to do")
def probe_skipper(settings, params, checkpoint) -> ProcedureResult:
    raise TaskSkipped("no backup to drill")
