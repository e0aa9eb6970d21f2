"""Weekly security audit: artifacts against the registry, secrets' permissions, sign-in, the dashboard's address.

Each check reads the workspace as it is: the sha256 of every artifact on disk against what the
registry recorded (a mismatch means the file changed after it was registered, and the version would
be refused at its next load), the mode of the secret files and the database (owner-only expected),
whether an admin token and an operator password are configured, and the address the dashboard binds
to in ``.streamlit/config.toml`` (Streamlit listens on every interface when it is not set).
"""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from opscore.access.private_files import PASSWORD_FILE, exposed_files, secrets_dir
from opscore.access.tokens import ADMIN, list_tokens
from opscore.config import Settings
from opscore.exceptions import OpscoreError
from opscore.models import artifacts, registry
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure
from opscore.store import open_store

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def artifact_mismatches(settings: Settings) -> list[str]:
    """One line per version whose artifact is missing or does not match the registry's sha256."""
    problems = []
    root = settings.model_store_path
    for info in registry.list_versions(open_store(settings)):
        try:
            path = artifacts.artifact_path(root, info.version_id)
        except OpscoreError as exc:
            problems.append(str(exc))
            continue
        actual = artifacts.sha256_bytes(path.read_bytes())
        if actual != info.artifact_sha256:
            problems.append(f"version {info.version_id}: {path.name} has sha256 {actual[:12]}…, the registry "
                            f"recorded {info.artifact_sha256[:12]}…")
    return problems


def dashboard_config(settings: Settings) -> Path | None:
    """The Streamlit config the dashboard reads: the workspace's, else the one beside dashboard.py."""
    for folder in (settings.workspace, Path(__file__).resolve().parents[3]):
        path = folder / ".streamlit" / "config.toml"
        if path.is_file():
            return path
    return None


def dashboard_address(settings: Settings) -> tuple[str | None, Path | None]:
    path = dashboard_config(settings)
    if path is None:
        return None, None
    try:
        return tomllib.loads(path.read_text()).get("server", {}).get("address"), path
    except tomllib.TOMLDecodeError:
        return None, path


@procedure("security_audit", title="Security audit: checksums, secrets, sign-in, dashboard address",
           maintenance_set="weekly", estimated_seconds=15)
def security_audit(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    findings: list[Finding] = []
    recommendations: list[str] = []
    checkpoint("artifact checksums", 0.0)
    mismatches = artifact_mismatches(settings)
    findings += [Finding(f"artifact does not match the registry: {line}", "critical", follow_up="corrective")
                 for line in mismatches]
    checkpoint("file permissions", 0.5)
    exposed = exposed_files(settings)
    for path in exposed:
        mode = stat.filemode(path.stat().st_mode)
        findings.append(Finding(f"{path} can be read by other users ({mode}); fix it with: chmod 600 {path}",
                                "high", follow_up="corrective"))
    folder = secrets_dir(settings)
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        findings.append(Finding(f"the secrets folder {folder} is open to other users "
                                f"({stat.filemode(folder.stat().st_mode)}); fix it with: chmod 700 {folder}", "high",
                                follow_up="corrective"))
    checkpoint("authentication", 0.7)
    admin_tokens = [t.name for t in list_tokens(settings) if ADMIN in t.scopes]
    password = bool(settings.operator_password) or (folder / PASSWORD_FILE).is_file()
    oidc = _auth_configured(settings)
    if not admin_tokens:
        findings.append(Finding("no admin token is configured: the service generates one at its next start; "
                                "until then no mutating route can be used", "medium"))
    if not password and not oidc:
        findings.append(Finding("no operator password and no [auth] sign-in are configured: the dashboard "
                                "generates a password at its first start and shows it to the first visitor", "medium"))
    checkpoint("dashboard address", 0.9)
    address, config = dashboard_address(settings)
    if address is None or address not in LOOPBACK:
        where = f"{config}" if config else "no .streamlit/config.toml"
        findings.append(Finding(f"the dashboard listens on {address or 'every interface'} ({where}); operators "
                                "sign in over it, so put it behind TLS or bind it to 127.0.0.1", "medium"))
    if not findings:
        recommendations.append("nothing to fix; rotate the admin token now and then with `opscore tokens`")
    return ProcedureResult(
        figures={"versions_checked": len(registry.list_versions(open_store(settings))),
                 "checksum_mismatches": len(mismatches), "exposed_files": [str(p) for p in exposed],
                 "admin_tokens": admin_tokens, "operator_password": password, "oidc": oidc,
                 "dashboard_address": address, "dashboard_config": str(config) if config else None},
        findings=findings, recommendations=recommendations)


def _auth_configured(settings: Settings) -> bool:
    path = settings.workspace / "opscore.toml"
    try:
        return bool(tomllib.loads(path.read_text()).get("auth")) if path.is_file() else False
    except tomllib.TOMLDecodeError:
        return False
