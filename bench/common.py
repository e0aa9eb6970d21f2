"""Shared by the benchmarks: machine description and writing one section of bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    memory = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores{memory}, {platform.machine()}, Python {platform.python_version()}"


def write_section(title: str, body: str, keep_subsections: bool = False) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md, stamped with date and machine.

    With ``keep_subsections``, the section's ``### `` parts (written by other scripts through
    :func:`write_subsection`) stay after the new body.
    """
    stamp = f"_{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}_\n\n"
    section = f"## {title}\n\n{stamp}{body.strip()}\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# opscore benchmark results\n\nWritten by the scripts in bench/; each section says when and where it was measured.\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    if found and keep_subsections:
        parts = re.findall(r"^### .*?(?=^### |\Z)", found.group(0), re.S | re.M)
        section += "".join("\n" + part.strip() + "\n" for part in parts)
    text = pattern.sub(lambda _: section + "\n", text) if found else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def write_subsection(section: str, title: str, body: str) -> None:
    """Replace (or add at the end) the ``### title`` part of the ``## section`` section, stamped with the date."""
    stamp = f"_{datetime.now(UTC):%Y-%m-%d %H:%M} UTC_\n\n"
    part = f"### {title}\n\n{stamp}{body.strip()}\n"
    text = RESULTS.read_text()
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    if found is None:
        raise ValueError(f"{RESULTS} has no '## {section}' section to add '### {title}' to")
    old = found.group(0)
    inner = re.compile(rf"^### {re.escape(title)}\n.*?(?=^### |\Z)", re.S | re.M)
    new = inner.sub(lambda _: part + "\n", old) if inner.search(old) else old.rstrip() + "\n\n" + part + "\n"
    text = text[:found.start()] + new + text[found.end():]
    RESULTS.write_text(text)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
